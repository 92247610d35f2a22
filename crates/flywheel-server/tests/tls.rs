//! Direct TLS and mTLS (`flywheel_server::tls`), tested on the real
//! listener with a one-route router that echoes the `ConnectInfo<Peer>` it
//! saw, so the listener is tested apart from the rest of the server.
//! Certificates are made with rcgen at test time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use flywheel_server::Peer;
use flywheel_server::tls::{self, TlsFiles, TlsListener};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

/// Every test binary installs the process crypto provider, as `main` does.
fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

const WAIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------- PKI ---

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("self-signed CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A leaf certificate (PEM) and its key (PEM).
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Leaf {
    fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("leaf cert PEM")
    }
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("leaf key PEM")
    }
}

fn sign(ca: &Ca, params: &CertificateParams) -> Leaf {
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, &ca.issuer).expect("sign leaf");
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn server_leaf(ca: &Ca) -> Leaf {
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    params.distinguished_name = dn("flywheel test server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sign(ca, &params)
}

/// A client certificate: subject CN `cn`, and SAN emails `emails`.
fn client_params(cn: &str, emails: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.subject_alt_names = emails
        .iter()
        .map(|e| SanType::Rfc822Name((*e).try_into().expect("IA5 email")))
        .collect();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn client_leaf(ca: &Ca, cn: &str, emails: &[&str]) -> Leaf {
    sign(ca, &client_params(cn, emails))
}

/// The operator's files in a tempdir.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    server: Leaf,
}

impl Pki {
    fn new() -> Pki {
        let ca = ca("flywheel test client CA");
        let server = server_leaf(&ca);
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki { dir, ca, server };
        pki.write("server.crt", &pki.server.cert_pem);
        pki.write("server.key", &pki.server.key_pem);
        pki.write("client-ca.crt", &pki.ca.pem);
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write PEM");
        path
    }

    fn files(&self, mtls: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.crt"),
            key: self.path("server.key"),
            client_ca: mtls.then(|| self.path("client-ca.crt")),
        }
    }
}

// ------------------------------------------------------------- server ---

async fn whoami(ConnectInfo(peer): ConnectInfo<Peer>) -> axum::Json<Value> {
    axum::Json(json!({
        "addr": peer.addr.to_string(),
        "tls": peer.tls,
        "client_identity": peer.client_identity,
    }))
}

fn echo_app() -> Router {
    Router::new().route("/whoami", get(whoami))
}

struct Server {
    addr: SocketAddr,
    failures: Arc<AtomicU64>,
    _stop: oneshot::Sender<()>,
}

async fn start(files: &TlsFiles, timeout: Duration) -> Server {
    let config = tls::server_config(files).expect("server config");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("local addr");
    let listener = TlsListener::with_handshake_timeout(tcp, config, timeout).expect("listener");
    let failures = listener.handshake_failures();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(tls::serve_tls_listener(echo_app(), listener, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        failures,
        _stop: stop,
    }
}

async fn start_mtls(pki: &Pki) -> Server {
    start(&pki.files(true), tls::HANDSHAKE_TIMEOUT).await
}

/// Waits until the failure counter reaches `n` (it is bumped just after the
/// socket of a failed handshake is closed).
async fn failures_reach(server: &Server, n: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = server.failures.load(Ordering::Relaxed);
        if seen >= n || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------- client ---

fn connector(pki: &Pki, client: Option<&Leaf>, alpn: &[u8]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.pem.as_bytes()).expect("CA PEM"))
        .expect("trust the CA");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    let mut config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.der()], leaf.key())
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// `GET /whoami` over HTTP/1.1; any TLS or I/O failure is an `Err` (a
/// refused client certificate surfaces when the client reads the answer).
async fn whoami_request(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&Leaf>,
) -> std::io::Result<Value> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    let mut tls = connector(pki, client, b"http/1.1")
        .connect(name, tcp)
        .await?;
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await?;
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP head and body");
    assert!(
        head.starts_with("HTTP/1.1 200 "),
        "unexpected answer: {head}"
    );
    Ok(serde_json::from_str(body).expect("JSON body"))
}

async fn whoami_ok(server: &Server, pki: &Pki, client: Option<&Leaf>) -> Value {
    tokio::time::timeout(WAIT, whoami_request(server.addr, pki, client))
        .await
        .expect("served within 2 s")
        .expect("request served")
}

async fn whoami_refused(server: &Server, pki: &Pki, client: Option<&Leaf>) -> String {
    let result = tokio::time::timeout(WAIT, whoami_request(server.addr, pki, client))
        .await
        .expect("an answer (or refusal) within 2 s");
    match result {
        Ok(body) => panic!("expected the handshake to be refused, was served: {body}"),
        Err(e) => e.to_string(),
    }
}

// -------------------------------------------------------------- tests ---

#[tokio::test]
async fn client_certificate_is_identified_by_its_san_email() {
    install_provider();
    let pki = Pki::new();
    let server = start_mtls(&pki).await;
    let alice = client_leaf(
        &pki.ca,
        "Alice Example",
        &["alice@example.com", "a2@example.com"],
    );

    let seen = whoami_ok(&server, &pki, Some(&alice)).await;
    assert_eq!(seen["client_identity"], "alice@example.com");
    assert_eq!(seen["tls"], true);
    assert!(
        seen["addr"]
            .as_str()
            .expect("addr")
            .starts_with("127.0.0.1:"),
        "the peer address is the client's: {seen}"
    );
}

#[tokio::test]
async fn client_certificate_without_email_is_identified_by_its_cn() {
    install_provider();
    let pki = Pki::new();
    let server = start_mtls(&pki).await;
    let runner = client_leaf(&pki.ca, "ci-runner-7", &[]);

    let seen = whoami_ok(&server, &pki, Some(&runner)).await;
    assert_eq!(seen["client_identity"], "ci-runner-7");
}

#[tokio::test]
async fn client_without_certificate_is_served_but_not_identified() {
    install_provider();
    let pki = Pki::new();
    let server = start_mtls(&pki).await;

    let seen = whoami_ok(&server, &pki, None).await;
    assert_eq!(seen["client_identity"], Value::Null);
    assert_eq!(seen["tls"], true);
    assert_eq!(server.failures.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused_at_the_handshake() {
    install_provider();
    let pki = Pki::new();
    let server = start_mtls(&pki).await;
    let other = ca("some other CA");
    let mallory = client_leaf(&other, "mallory", &["alice@example.com"]);

    let error = whoami_refused(&server, &pki, Some(&mallory)).await;
    assert!(
        error.contains("UnknownCA") || error.contains("BadCertificate"),
        "the client is told its certificate is not trusted: {error}"
    );
    assert_eq!(failures_reach(&server, 1).await, 1);
    // The server is still up for others.
    let alice = client_leaf(&pki.ca, "alice", &["alice@example.com"]);
    let seen = whoami_ok(&server, &pki, Some(&alice)).await;
    assert_eq!(seen["client_identity"], "alice@example.com");
}

#[tokio::test]
async fn expired_client_certificate_is_refused() {
    install_provider();
    let pki = Pki::new();
    let server = start_mtls(&pki).await;
    let mut params = client_params("old-laptop", &["bob@example.com"]);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = sign(&pki.ca, &params);

    let error = whoami_refused(&server, &pki, Some(&expired)).await;
    assert!(
        error.contains("CertificateExpired"),
        "the client is told its certificate expired: {error}"
    );
    assert_eq!(failures_reach(&server, 1).await, 1);
}

#[tokio::test]
async fn without_client_ca_no_certificate_is_asked_for_and_nobody_is_identified() {
    install_provider();
    let pki = Pki::new();
    let server = start(&pki.files(false), tls::HANDSHAKE_TIMEOUT).await;
    let alice = client_leaf(&pki.ca, "alice", &["alice@example.com"]);

    let seen = whoami_ok(&server, &pki, Some(&alice)).await;
    assert_eq!(seen["tls"], true);
    assert_eq!(seen["client_identity"], Value::Null);
}

#[tokio::test]
async fn plain_http_on_the_tls_port_fails_alone_and_the_next_client_is_served() {
    install_provider();
    let pki = Pki::new();
    let server = start_mtls(&pki).await;

    let mut plain = TcpStream::connect(server.addr).await.expect("connect");
    plain
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write plain HTTP");
    let mut answer = Vec::new();
    // The server closes the connection (after a TLS alert, if any).
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut answer))
        .await
        .expect("the plain-HTTP connection is closed within 2 s");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "no HTTP answer without TLS: {answer:?}"
    );
    assert_eq!(failures_reach(&server, 1).await, 1);

    let alice = client_leaf(&pki.ca, "alice", &["alice@example.com"]);
    let seen = whoami_ok(&server, &pki, Some(&alice)).await;
    assert_eq!(seen["client_identity"], "alice@example.com");
}

#[tokio::test]
async fn silent_clients_do_not_block_other_clients() {
    install_provider();
    let pki = Pki::new();
    // The real 10 s handshake timeout: the silent clients outlive the test.
    let server = start_mtls(&pki).await;

    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    // A client that starts a handshake and stalls half-way.
    let mut stalled = TcpStream::connect(server.addr).await.expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("partial ClientHello");

    let alice = client_leaf(&pki.ca, "alice", &["alice@example.com"]);
    let seen = whoami_ok(&server, &pki, Some(&alice)).await;
    assert_eq!(seen["client_identity"], "alice@example.com");
    drop((silent, stalled));
}

#[tokio::test]
async fn silent_client_is_disconnected_after_the_handshake_timeout() {
    install_provider();
    let pki = Pki::new();
    let server = start(&pki.files(true), Duration::from_millis(300)).await;

    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("the server hangs up within 2 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the connection is closed: {read:?}"
    );
    assert_eq!(failures_reach(&server, 1).await, 1);
}

#[tokio::test]
async fn h2_is_offered_by_alpn_and_spoken() {
    install_provider();
    let pki = Pki::new();
    let server = start_mtls(&pki).await;

    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let mut tls = connector(&pki, None, b"h2")
        .connect(name, tcp)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    // Client preface and an empty SETTINGS frame; an h2 server answers
    // with its own SETTINGS frame (type 0x4) on stream 0.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    tls.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0])
        .await
        .expect("SETTINGS");
    let mut frame = [0u8; 9];
    tokio::time::timeout(WAIT, tls.read_exact(&mut frame))
        .await
        .expect("an answer within 2 s")
        .expect("a frame header");
    assert_eq!(
        frame[3], 0x4,
        "the server's first frame is SETTINGS: {frame:?}"
    );
}

#[tokio::test]
async fn serve_tls_serves_until_shutdown_then_closes_the_port() {
    install_provider();
    let pki = Pki::new();
    let config = tls::server_config(&pki.files(true)).expect("server config");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(tls::serve_tls(echo_app(), tcp, config, async {
        let _ = stopped.await;
    }));

    let alice = client_leaf(&pki.ca, "alice", &["alice@example.com"]);
    let seen = tokio::time::timeout(WAIT, whoami_request(addr, &pki, Some(&alice)))
        .await
        .expect("served within 2 s")
        .expect("served");
    assert_eq!(seen["client_identity"], "alice@example.com");

    stop.send(()).expect("server still running");
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("serve_tls returns within 2 s of shutdown")
        .expect("serve task")
        .expect("serve_tls result");

    // The accept task goes away with the listener: the port is closed.
    let deadline = tokio::time::Instant::now() + WAIT;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the port still accepts connections after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------ server_config ---

/// The error names the file and quotes none of the PEM files.
fn assert_names_file_without_contents(error: &str, file: &Path, pems: &[&str]) {
    assert!(
        error.contains(&file.display().to_string()),
        "the error names {}: {error}",
        file.display()
    );
    assert!(!error.contains("-----"), "no PEM markers in: {error}");
    for pem in pems {
        for line in pem
            .lines()
            .filter(|l| l.len() >= 8 && !l.starts_with("-----"))
        {
            assert!(!error.contains(line), "no file contents in: {error}");
        }
    }
}

fn config_error(files: &TlsFiles) -> String {
    match tls::server_config(files) {
        Ok(_) => panic!("expected server_config to fail for {files:?}"),
        Err(e) => e,
    }
}

#[test]
fn missing_certificate_or_key_file_is_named() {
    install_provider();
    let pki = Pki::new();

    let mut files = pki.files(true);
    files.cert = pki.path("nope.crt");
    let error = config_error(&files);
    assert_names_file_without_contents(&error, &files.cert, &[]);
    assert!(error.contains("missing"), "{error}");

    let mut files = pki.files(true);
    files.key = pki.path("nope.key");
    let error = config_error(&files);
    assert_names_file_without_contents(&error, &files.key, &[]);
    assert!(error.contains("missing"), "{error}");

    let mut files = pki.files(true);
    files.client_ca = Some(pki.path("nope-ca.crt"));
    let error = config_error(&files);
    assert_names_file_without_contents(&error, &pki.path("nope-ca.crt"), &[]);
    assert!(error.contains("missing"), "{error}");
}

#[test]
fn key_that_does_not_match_the_certificate_is_reported() {
    install_provider();
    let pki = Pki::new();
    let other_key = KeyPair::generate().expect("key").serialize_pem();
    let mut files = pki.files(true);
    files.key = pki.write("other.key", &other_key);

    let error = config_error(&files);
    assert_names_file_without_contents(&error, &files.key, &[&other_key, &pki.server.cert_pem]);
    assert!(error.contains("does not match"), "{error}");
    assert!(
        error.contains(&files.cert.display().to_string()),
        "names the certificate too: {error}"
    );
}

#[test]
fn pem_without_certificate_is_reported() {
    install_provider();
    let pki = Pki::new();
    // The operator swapped the files: the key where the certificate goes.
    let mut files = pki.files(false);
    files.cert = pki.path("server.key");
    let error = config_error(&files);
    assert_names_file_without_contents(&error, &files.cert, &[&pki.server.key_pem]);
    assert!(error.contains("no certificate"), "{error}");

    // A client CA file with no certificate in it.
    let mut files = pki.files(true);
    let empty = pki.write("empty-ca.crt", "not a certificate\n");
    files.client_ca = Some(empty.clone());
    let error = config_error(&files);
    assert_names_file_without_contents(&error, &empty, &[]);
    assert!(error.contains("no certificate"), "{error}");
}

#[test]
fn pem_without_private_key_is_reported() {
    install_provider();
    let pki = Pki::new();
    let mut files = pki.files(false);
    files.key = pki.path("server.crt");
    let error = config_error(&files);
    assert_names_file_without_contents(&error, &files.key, &[&pki.server.cert_pem]);
    assert!(error.contains("no private key"), "{error}");
}

#[test]
fn damaged_pem_is_reported_without_quoting_it() {
    install_provider();
    let pki = Pki::new();
    let body = pki
        .server
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n");
    // A truncated key (no END line) and a corrupted BEGIN line.
    let truncated = format!("-----BEGIN PRIVATE KEY-----\n{body}\n");
    let mut files = pki.files(false);
    files.key = pki.write("truncated.key", &truncated);
    let error = config_error(&files);
    assert_names_file_without_contents(&error, &files.key, &[&truncated]);

    let corrupted = format!("-----BEGIN CERTIFICATE {body}\n-----END CERTIFICATE-----\n");
    let mut files = pki.files(false);
    files.cert = pki.write("corrupted.crt", &corrupted);
    let error = config_error(&files);
    assert_names_file_without_contents(&error, &files.cert, &[&corrupted]);
    assert!(!error.contains(&body[..16]), "{error}");
}

#[test]
fn good_files_give_a_config_offering_h2_and_http1() {
    install_provider();
    let pki = Pki::new();
    for mtls in [false, true] {
        let config = tls::server_config(&pki.files(mtls)).expect("server config");
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}

// ---------------------------------------------------- client_identity ---

#[test]
fn identity_is_the_first_san_email_else_the_cn() {
    install_provider();
    let ca = ca("identity CA");
    let both = client_leaf(&ca, "Alice", &["alice@example.com", "second@example.com"]);
    assert_eq!(
        tls::client_identity(&both.der()).as_deref(),
        Some("alice@example.com")
    );
    let cn_only = client_leaf(&ca, "deploy-bot", &[]);
    assert_eq!(
        tls::client_identity(&cn_only.der()).as_deref(),
        Some("deploy-bot")
    );
    // DNS names are not identities: still the CN.
    let mut params = client_params("host-agent", &[]);
    params.subject_alt_names = vec![SanType::DnsName(
        "agent.example.com".try_into().expect("IA5"),
    )];
    let dns = sign(&ca, &params);
    assert_eq!(
        tls::client_identity(&dns.der()).as_deref(),
        Some("host-agent")
    );
    // Neither: not identified.
    let mut params = client_params("x", &[]);
    params.distinguished_name = DistinguishedName::new();
    let nameless = sign(&ca, &params);
    assert_eq!(tls::client_identity(&nameless.der()), None);
    assert_eq!(
        tls::client_identity(&CertificateDer::from(b"not DER".to_vec())),
        None
    );
}

#[test]
fn identities_with_control_characters_or_too_long_are_refused() {
    install_provider();
    let ca = ca("identity CA");
    let newline_cn = client_leaf(&ca, "admin\nrole=owner", &[]);
    assert_eq!(tls::client_identity(&newline_cn.der()), None);

    let escape_email = client_leaf(&ca, "Eve", &["eve\u{1b}[2J@example.com"]);
    assert_eq!(
        tls::client_identity(&escape_email.der()),
        None,
        "a bad SAN email is not replaced by the CN"
    );

    let longest = "a".repeat(tls::MAX_IDENTITY_LEN);
    let ok = client_leaf(&ca, &longest, &[]);
    assert_eq!(tls::client_identity(&ok.der()), Some(longest.clone()));
    let too_long = client_leaf(&ca, &format!("{longest}a"), &[]);
    assert_eq!(tls::client_identity(&too_long.der()), None);
}

// ------------------------------------------------- the whole server ---

/// One HTTP/1.1 request over TLS to `addr`: the head and the body.
async fn tls_request(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&Leaf>,
    request: &str,
) -> (String, String) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let mut tls = connector(pki, client, b"http/1.1")
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response).to_string();
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    (head.to_string(), body.to_string())
}

/// The real server (route table, access layer, store) behind the TLS
/// listener: a verified client certificate is an identity with a mapped
/// role, and cookies over TLS are `__Host-` and `Secure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_over_mtls_knows_the_certificate_and_sets_secure_cookies() {
    install_provider();
    let pki = Pki::new();
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let platform = flywheel_contract::load(&contract).expect("contract");
    let policy = flywheel_server::access::Policy::from_contract(&platform, |k| {
        (k == "FLYWHEEL_OPERATORS").then(|| "alice@example.com".to_string())
    })
    .expect("policy");
    let db = tempfile::tempdir().expect("tmp");
    let store =
        flywheel_store::Store::open(&format!("sqlite://{}", db.path().join("fw.db").display()))
            .await
            .expect("store");
    let state = Arc::new(
        flywheel_server::AppState::new(store, policy, Default::default())
            .await
            .expect("state"),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let config = tls::server_config(&pki.files(true)).expect("config");
    tokio::spawn(tls::serve_tls(
        flywheel_server::router(state.clone()),
        tcp,
        config,
        std::future::pending(),
    ));
    let alice = client_leaf(&pki.ca, "Alice Example", &["alice@example.com"]);
    let me = "GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (head, body) = tls_request(addr, &pki, Some(&alice), me).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let me_json: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (
            me_json["identity"].as_str(),
            me_json["auth_method"].as_str(),
            me_json["role"].as_str()
        ),
        (Some("alice@example.com"), Some("mtls"), Some("operator"))
    );
    // Without a certificate: anonymous.
    let (head, _) = tls_request(addr, &pki, None, me).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // The bootstrap link over TLS sets the __Host- cookie, Secure.
    let link = flywheel_server::bootstrap_link(&state, addr, true)
        .await
        .expect("store")
        .expect("link");
    assert!(link.starts_with("https://"), "{link}");
    let path = &link[link.find("/signin/").expect("path")..];
    let (head, _) = tls_request(
        addr,
        &pki,
        None,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .await;
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("cookie");
    assert!(
        cookie.starts_with("__Host-flywheel=") && cookie.contains("; Secure"),
        "{cookie}"
    );
}
