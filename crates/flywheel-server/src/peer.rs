//! Who is at the other end of the connection: the TCP peer address, whether
//! the connection is TLS, and the identity of a verified client certificate
//! (direct mTLS). Set once per connection by the listener; the access layer
//! reads it from every request.

use std::net::SocketAddr;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;

/// The connection a request arrived on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The connection is TLS (cookies get `Secure` and the `__Host-` prefix).
    pub tls: bool,
    /// A client certificate verified against `--client-ca`: its SAN email,
    /// else its subject CN.
    pub client_identity: Option<String>,
}

impl Peer {
    pub fn plain(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            tls: false,
            client_identity: None,
        }
    }
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer::plain(*stream.remote_addr())
    }
}
