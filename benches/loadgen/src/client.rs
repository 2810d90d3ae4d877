//! A minimal Engine.IO v4 / Socket.IO v5 client over WebSocket (namespace `/`).

use std::net::{IpAddr, SocketAddr};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;
pub type Sink = SplitSink<Ws, Message>;
pub type Stream = SplitStream<Ws>;

pub struct Conn {
    ws: Ws,
}

type Error = Box<dyn std::error::Error>;

fn host_port(url: &str) -> Result<SocketAddr, Error> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or("url must start with http:// or ws://")?;
    let hp = rest.split('/').next().unwrap_or(rest);
    Ok(hp.parse()?)
}

impl Conn {
    /// Connects, reads the open packet, joins namespace `/`.
    pub async fn open(url: &str, local: Option<IpAddr>) -> Result<Conn, Error> {
        Self::open_with(url, local, None).await
    }

    /// `open` with a CONNECT auth payload (e.g. `{"token":"..."}`).
    pub async fn open_with(
        url: &str,
        local: Option<IpAddr>,
        auth: Option<&serde_json::Value>,
    ) -> Result<Conn, Error> {
        let addr = host_port(url)?;
        let stream = connect_tcp(addr, local).await?;
        let ws_url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::client_async(ws_url, stream).await?;
        let mut c = Conn { ws };
        let open = c.next_text().await?;
        if !open.starts_with("0{") {
            return Err(format!("expected open packet, got {open:?}").into());
        }
        let connect = match auth {
            Some(a) => format!("40{a}"),
            None => "40".into(),
        };
        c.ws.send(Message::Text(connect)).await?;
        loop {
            let t = c.next_text().await?;
            if t.starts_with("40") {
                return Ok(c);
            }
            if t.starts_with("44") {
                return Err(format!("connect refused: {t}").into());
            }
        }
    }

    /// Connects to the plain WebSocket endpoint (`/ws`), authenticates with a first `auth`
    /// frame (any token on a server without auth middleware) and waits for `auth:ok`.
    pub async fn open_plain(url: &str, local: Option<IpAddr>) -> Result<Conn, Error> {
        let addr = host_port(url)?;
        let stream = connect_tcp(addr, local).await?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream).await?;
        let mut c = Conn { ws };
        c.ws.send(Message::Text(
            r#"{"type":"auth","payload":{"token":"bench"}}"#.into(),
        ))
        .await?;
        let ok = c.next_text().await?;
        if !ok.starts_with(r#"{"type":"auth:ok""#) {
            return Err(format!("expected auth:ok, got {ok:?}").into());
        }
        Ok(c)
    }

    /// Joins `room` over the plain protocol (`join` with an id) and waits for the ack.
    pub async fn join_plain(&mut self, room: &str) -> Result<(), Error> {
        let room_json = serde_json::to_string(room)?;
        self.ws
            .send(Message::Text(format!(
                r#"{{"type":"join","payload":{room_json},"id":1}}"#
            )))
            .await?;
        loop {
            let t = self.next_text().await?;
            if t.starts_with(r#"{"type":"ack""#) {
                return Ok(());
            }
        }
    }

    /// The next text message, answering pings on the way.
    async fn next_text(&mut self) -> Result<String, Error> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if t == "2" {
                        self.ws.send(Message::Text("3".into())).await?;
                        continue;
                    }
                    return Ok(t);
                }
                Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Joins `room` with an acknowledgement and waits for it. The join is sent again when
    /// no ack came within a second: a server that runs its connect handler after sending
    /// the CONNECT answer (socketioxide) drops events that arrive before the handler ran.
    pub async fn join(&mut self, room: &str) -> Result<(), Error> {
        let room_json = serde_json::to_string(room)?;
        for _ in 0..10 {
            self.ws
                .send(Message::Text(format!("420[\"join\",{room_json}]")))
                .await?;
            let acked = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                loop {
                    let t = self.next_text().await?;
                    if t.starts_with("430") {
                        return Ok::<(), Error>(());
                    }
                }
            })
            .await;
            match acked {
                Ok(r) => return r,
                Err(_) => continue,
            }
        }
        Err("join: no ack after 10 tries".into())
    }

    /// Emits `event` with `arg` and ack id 0; returns the ack's text (`430[...]`).
    pub async fn ask(&mut self, event: &str, arg: &serde_json::Value) -> Result<String, Error> {
        let ev = serde_json::to_string(event)?;
        self.ws
            .send(Message::Text(format!("420[{ev},{arg}]")))
            .await?;
        loop {
            let t = self.next_text().await?;
            if t.starts_with("430") {
                return Ok(t);
            }
        }
    }

    /// Stays connected, answering pings, until the server closes.
    pub async fn idle(&mut self) {
        while self.next_text().await.is_ok() {}
    }

    pub fn split(self) -> (Sink, Stream) {
        self.ws.split()
    }

    /// Closes the WebSocket (the server sees a clean close).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn bind_no_port(sock: &TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and a pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A TCP connection to `addr` (no delay), from `local` when given.
pub async fn connect_tcp(addr: SocketAddr, local: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Another source address only past the first one's port range: binding to port 0
    // picks a port per local address alone (slow, and blind to the destination), so
    // the port is left to connect() with IP_BIND_ADDRESS_NO_PORT.
    if let (Some(ip), true) = (local, addr.is_ipv4()) {
        if ip != IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
            bind_no_port(&sock)?;
            sock.bind(SocketAddr::new(ip, 0))?;
        }
    }
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The unsigned integer after `key` in `text` (cheap: no JSON parse on the hot path).
pub fn field_u64(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

/// Which transport a scenario's clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Websocket,
    Polling,
    /// The plain WebSocket protocol (`/ws`, JSON envelopes).
    Plain,
}

/// The sending end of a connection on either transport.
pub enum Tx {
    Ws(Sink),
    Poll(crate::polling::PollTx),
}

/// The receiving end of a connection on either transport: text packets only.
pub enum Rx {
    Ws(Stream),
    Poll(crate::polling::PollRx),
}

/// Opens a connection on `transport`, joined to `room` when given.
pub async fn open_pair(
    transport: Transport,
    url: &str,
    local: Option<IpAddr>,
    room: Option<&str>,
) -> Result<(Tx, Rx), Error> {
    match transport {
        Transport::Websocket => {
            let mut c = Conn::open(url, local).await?;
            if let Some(room) = room {
                c.join(room).await?;
            }
            let (tx, rx) = c.split();
            Ok((Tx::Ws(tx), Rx::Ws(rx)))
        }
        Transport::Polling => {
            let (tx, rx) = crate::polling::open(host_port(url)?, local, room).await?;
            Ok((Tx::Poll(tx), Rx::Poll(rx)))
        }
        Transport::Plain => {
            let mut c = Conn::open_plain(url, local).await?;
            if let Some(room) = room {
                c.join_plain(room).await?;
            }
            let (tx, rx) = c.split();
            Ok((Tx::Ws(tx), Rx::Ws(rx)))
        }
    }
}

/// A `bcast` event carrying the send time `t` (µs) on `transport`'s framing.
pub fn bcast_packet(transport: Transport, t: u64) -> String {
    match transport {
        Transport::Plain => format!(r#"{{"type":"bcast","payload":{{"t":{t}}}}}"#),
        _ => format!("42[\"bcast\",{{\"t\":{t}}}]"),
    }
}

impl Tx {
    /// Queues a packet (a WebSocket writes it at the next flush).
    pub async fn feed(&mut self, text: String) -> bool {
        match self {
            Tx::Ws(s) => s.feed(Message::Text(text)).await.is_ok(),
            Tx::Poll(s) => s.send(text).is_ok(),
        }
    }

    pub async fn flush(&mut self) -> bool {
        match self {
            Tx::Ws(s) => s.flush().await.is_ok(),
            Tx::Poll(_) => true,
        }
    }

    pub async fn send(&mut self, text: String) -> bool {
        self.feed(text).await && self.flush().await
    }

    /// Ends a polling session with a close packet (a server cannot tell otherwise until its
    /// ping times out); a WebSocket ends when the process does.
    pub fn close(self) {
        if let Tx::Poll(s) = self {
            let _ = s.send("1".into());
        }
    }
}

impl Rx {
    /// The next text packet (a WebSocket's pings included: answer them), `None` at the end.
    pub async fn next(&mut self) -> Option<String> {
        match self {
            Rx::Ws(s) => loop {
                match s.next().await? {
                    Ok(Message::Text(t)) => return Some(t),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => continue,
                }
            },
            Rx::Poll(r) => r.recv().await,
        }
    }

    /// A text packet already received, if any.
    pub fn try_next(&mut self) -> Option<String> {
        use futures_util::FutureExt;
        self.next().now_or_never().flatten()
    }
}
