//! Noticing that a client closed its TCP connection while a request of it waits.
//!
//! actix-web keeps a waiting handler running after its peer has gone (it learns of the close
//! only when it writes), so a polling client that vanished mid-poll (a killed tab, a
//! dropped network) would hold its session, sockets, rooms and online status until the
//! ping timeout. Node's engine.io closes such a session at once ("poll connection closed
//! prematurely", reason `transport error`); so do we, by looking at the connection's socket
//! while a GET waits. It must not read anything: the bytes belong to the HTTP dispatcher.

use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use actix_web::HttpRequest;

/// The socket of an HTTP connection, recorded when the connection is accepted (see
/// `server.rs`, `on_connect_ext`) and read back with `HttpRequest::conn_data`.
#[derive(Debug, Clone, Copy)]
pub struct PeerFd(pub RawFd);

/// How often a waiting GET looks at its connection: a vanished client is noticed within
/// this, at the cost of one `recv(MSG_PEEK)` per waiting GET per period.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What a look at the connection found.
#[derive(Debug, PartialEq, Eq)]
enum Peer {
    /// Open, nothing to read.
    Open,
    /// The client closed (FIN) or reset it.
    Gone,
    /// Bytes wait (a pipelined request): whether the client is still there cannot be told.
    Unknown,
}

fn look(fd: BorrowedFd<'_>) -> Peer {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    // The dispatcher made the socket non-blocking, so a peek never waits.
    match socket2::SockRef::from(&fd).peek(&mut byte) {
        Ok(0) => Peer::Gone,
        Ok(_) => Peer::Unknown,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Peer::Open,
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Peer::Open,
        Err(_) => Peer::Gone,
    }
}

/// Looks at the connection of `req` now.
fn look_at(req: &HttpRequest) -> Peer {
    let Some(&PeerFd(raw)) = req.conn_data::<PeerFd>() else {
        return Peer::Unknown;
    };
    // SAFETY: `raw` is the socket of the connection this request came on. The HTTP
    // dispatcher owns that connection and drops the handler (the only caller's future)
    // before it closes the socket, so the descriptor stays open, and is this connection's,
    // while the handler runs.
    let fd = unsafe { BorrowedFd::borrow_raw(raw) };
    look(fd)
}

/// Whether the client of `req` has closed its connection already (checked before a waiting
/// GET is answered: a busy session answers its GET often, sooner than [`closed`] looks).
pub(crate) fn gone(req: &HttpRequest) -> bool {
    look_at(req) == Peer::Gone
}

/// Resolves when the client of `req` has closed its connection; never when that cannot be
/// told (no socket recorded, a pipelined request waiting).
pub(crate) async fn closed(req: &HttpRequest) {
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        match look_at(req) {
            Peer::Open => {}
            Peer::Gone => return,
            Peer::Unknown => return std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (server, _) = l.accept().expect("accept");
        server.set_nonblocking(true).expect("non-blocking");
        (client, server)
    }

    /// What a look finds once it is no longer `Open` (within a second).
    fn first_change(server: &TcpStream) -> Peer {
        for _ in 0..100 {
            let seen = look(server.as_fd());
            if seen != Peer::Open {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Peer::Open
    }

    #[test]
    fn an_open_connection_is_open_and_a_closed_one_gone() {
        let (client, server) = pair();
        assert_eq!(look(server.as_fd()), Peer::Open);
        drop(client);
        // the FIN arrives at once on loopback
        assert_eq!(first_change(&server), Peer::Gone);
    }

    #[test]
    fn waiting_bytes_are_left_unread() {
        let (mut client, server) = pair();
        client.write_all(b"GET / HTTP/1.1\r\n").expect("write");
        assert_eq!(first_change(&server), Peer::Unknown);
        // still there for the dispatcher
        assert_eq!(look(server.as_fd()), Peer::Unknown);
    }
}
