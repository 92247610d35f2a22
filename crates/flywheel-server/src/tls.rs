//! Direct TLS and mTLS for `flywheel serve` (`--tls-cert`, `--tls-key`,
//! `--client-ca`).
//!
//! - [`server_config`] reads the operator's PEM files into a rustls
//!   configuration (ring, ALPN `h2` and `http/1.1`). With a client CA, a
//!   client certificate is *optional*: a client without one is simply not
//!   identified by mTLS (the other authentication methods still apply), a
//!   client with an invalid one is refused at the handshake.
//! - [`TlsListener`] accepts TCP connections on a background task and runs
//!   every handshake on its own task with a timeout, so a slow or silent
//!   client cannot hold up anyone else. Finished connections reach axum as
//!   `(TlsStream, Peer)`; the [`Peer`] carries `tls: true` and the identity of
//!   the verified client certificate ([`client_identity`]).
//! - [`serve_tls`] runs a router on it with graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::Peer;

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Finished handshakes waiting for the server to pick them up.
const ACCEPTED_QUEUE: usize = 128;

/// The longest client identity accepted (bytes).
pub const MAX_IDENTITY_LEN: usize = 256;

/// The operator's TLS files (`--tls-cert`, `--tls-key`, `--client-ca`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, end-entity certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1; unencrypted) of the
    /// end-entity certificate.
    pub key: PathBuf,
    /// PEM CA certificate(s) that sign client certificates (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// The crypto stack of the server: ring, named explicitly so the server
/// never depends on which provider happens to be the process default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls server configuration from the operator's files.
///
/// Errors name the file and what is wrong with it; they never contain the
/// file's contents.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = read_certificates(&files.cert, "--tls-cert")?;
    let key = read_private_key(&files.key)?;
    let provider = provider();

    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: the crypto provider cannot be used: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for (i, ca) in read_certificates(path, "--client-ca")?
                .into_iter()
                .enumerate()
            {
                roots.add(ca).map_err(|e| {
                    format!(
                        "--client-ca {}: certificate #{} is not usable as a CA: {e}",
                        path.display(),
                        i + 1
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("--client-ca {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };

    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| key_error(files, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn key_error(files: &TlsFiles, e: rustls::Error) -> String {
    let (cert, key) = (files.cert.display(), files.key.display());
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
            "--tls-key {key} does not match the certificate in --tls-cert {cert} \
             (the key is not the key of the first certificate)"
        ),
        rustls::Error::InvalidCertificate(_) => {
            format!("--tls-cert {cert}: the first certificate is not a valid X.509 certificate")
        }
        rustls::Error::General(_) => format!(
            "--tls-key {key}: the private key cannot be used \
             (not an RSA, ECDSA or Ed25519 key, or damaged)"
        ),
        other => format!("--tls-cert {cert} / --tls-key {key}: {other}"),
    }
}

/// Reads a file the operator named; the error says which and why, not what
/// it contains.
fn read_file(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "the file is missing".to_string(),
            io::ErrorKind::PermissionDenied => {
                "the file is not readable (permission denied)".into()
            }
            io::ErrorKind::IsADirectory => "this is a directory, not a file".into(),
            _ => format!("cannot read the file: {e}"),
        };
        format!("{flag} {}: {why}", path.display())
    })
}

/// What is wrong with a PEM file, without echoing any of it (the
/// `pem::Error` display can quote lines of the file).
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64",
        pem::Error::SectionTooLarge => "a PEM section is too large",
        _ => "the file is not valid PEM",
    }
}

fn read_certificates(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_file(path, flag)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {}: {}", path.display(), pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no certificate in it (expected a PEM \"BEGIN CERTIFICATE\" section)",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let flag = "--tls-key";
    let bytes = read_file(path, flag)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) if contains(&bytes, b"ENCRYPTED PRIVATE KEY") => {
            Err(format!(
                "{flag} {}: the private key is encrypted; give flywheel an unencrypted key \
             (readable only by the server's user)",
                path.display()
            ))
        }
        Err(pem::Error::NoItemsFound) => Err(format!(
            "{flag} {}: no private key in it (expected a PEM \"BEGIN PRIVATE KEY\", \
             \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" section)",
            path.display()
        )),
        Err(e) => Err(format!("{flag} {}: {}", path.display(), pem_problem(&e))),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The identity of a verified end-entity client certificate: its first SAN
/// email (rfc822Name), else its first subject CN.
///
/// `None` when the certificate cannot be parsed, has neither, or the name
/// is empty, longer than [`MAX_IDENTITY_LEN`] bytes or contains control
/// characters. A certificate whose first SAN email is unacceptable is not
/// identified by its CN instead.
pub fn client_identity(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;

    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let san = parsed.subject_alternative_name().ok()?;
    let email = san.and_then(|san| {
        san.value.general_names.iter().find_map(|name| match name {
            GeneralName::RFC822Name(email) => Some(*email),
            _ => None,
        })
    });
    let name = match email {
        Some(email) => email,
        None => parsed.subject().iter_common_name().next()?.as_str().ok()?,
    };
    acceptable_identity(name).then(|| name.to_string())
}

fn acceptable_identity(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_IDENTITY_LEN && !name.chars().any(char::is_control)
}

/// A TLS listener for `axum::serve`: handshakes run concurrently on their
/// own tasks, each bounded by a timeout; only finished connections are
/// handed to the server.
///
/// Dropping it (axum does at shutdown) stops accepting, closes the socket
/// and abandons handshakes in flight.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, Peer)>,
    local_addr: SocketAddr,
    handshake_failures: Arc<AtomicU64>,
}

impl TlsListener {
    /// Starts accepting on `listener` with [`HANDSHAKE_TIMEOUT`].
    ///
    /// Must be called inside a Tokio runtime (it spawns the accept task).
    pub fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<TlsListener> {
        TlsListener::with_handshake_timeout(listener, config, HANDSHAKE_TIMEOUT)
    }

    /// [`TlsListener::new`] with another handshake timeout.
    pub fn with_handshake_timeout(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        timeout: Duration,
    ) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let handshake_failures = Arc::new(AtomicU64::new(0));
        tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(config),
            tx,
            timeout,
            handshake_failures.clone(),
        ));
        Ok(TlsListener {
            accepted,
            local_addr,
            handshake_failures,
        })
    }

    /// Handshakes that failed or timed out so far (plain HTTP on the TLS
    /// port, a refused client certificate, a silent client, ...). Keep the
    /// `Arc` to read it after handing the listener to `axum::serve`.
    pub fn handshake_failures(&self) -> Arc<AtomicU64> {
        self.handshake_failures.clone()
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(conn) => conn,
            // The accept task only ends when this receiver is dropped (or
            // if it panicked): nothing more will arrive.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.local_addr,
            tls: true,
            client_identity: None,
        })
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Peer {
        stream.remote_addr().clone()
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, Peer)>,
    timeout: Duration,
    failures: Arc<AtomicU64>,
) {
    // Owning the handshake tasks here means they are aborted when this
    // loop ends (the listener was dropped).
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    handshakes.spawn(handshake(
                        acceptor.clone(),
                        tcp,
                        addr,
                        tx.clone(),
                        timeout,
                        failures.clone(),
                    ));
                }
                Err(e) => accept_error(e).await,
            },
            // Reap finished handshake tasks so the set does not grow.
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            () = tx.closed() => return,
        }
    }
}

/// As axum does for plain TCP: a peer that went away is not an error; on
/// anything else (out of file descriptors, ...) back off for a second.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    eprintln!("flywheel serve: TLS listener: accept failed: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
    tx: mpsc::Sender<(TlsStream<TcpStream>, Peer)>,
    timeout: Duration,
    failures: Arc<AtomicU64>,
) {
    let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        // Not logged: any client can cause these, as often as it likes.
        Ok(Err(_)) | Err(_) => {
            failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    // With a client CA, rustls only completes the handshake after the
    // verifier accepted the chain: the first certificate is verified.
    let client_identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(client_identity);
    let peer = Peer {
        addr,
        tls: true,
        client_identity,
    };
    // Fails only when the server is gone; the connection is dropped then.
    let _ = tx.send((stream, peer)).await;
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then
/// lets open requests finish. Requests see `ConnectInfo<Peer>`.
pub async fn serve_tls(
    app: Router,
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_tls_listener(app, TlsListener::new(listener, config)?, shutdown).await
}

/// [`serve_tls`] on a [`TlsListener`] made by the caller (to keep its
/// [`TlsListener::handshake_failures`] counter, or set another timeout).
pub async fn serve_tls_listener(
    app: Router,
    listener: TlsListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
}
