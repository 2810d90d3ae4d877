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

    /// Joins `room` with an acknowledgement and waits for it.
    pub async fn join(&mut self, room: &str) -> Result<(), Error> {
        let room_json = serde_json::to_string(room)?;
        self.ws
            .send(Message::Text(format!("420[\"join\",{room_json}]")))
            .await?;
        loop {
            let t = self.next_text().await?;
            if t.starts_with("430") {
                return Ok(());
            }
        }
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

/// The unsigned integer after `key` in `text` (cheap: no JSON parse on the hot path).
pub fn field_u64(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}
