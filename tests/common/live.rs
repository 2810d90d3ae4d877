//! Real servers on loopback ports, each in its own thread with its own actix system, and
//! minimal raw clients: HTTP/1.1 requests for polling, and a WebSocket client that speaks
//! Engine.IO / Socket.IO text frames. Every wait has a deadline.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A server running in a thread; stopped (and joined) on drop.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the server `make` builds (inside the server's own actix system) on a free port.
pub fn start(make: impl FnOnce() -> Server + Send + 'static) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let run = actix_web::rt::System::new().block_on(async move {
            make()
                .run(listener, async {
                    let _ = rx.await;
                })
                .await
        });
        run.expect("the server ran");
    });
    Running {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs an async test body on a current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// An HTTP answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub async fn http(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("writes");
    s.write_all(body).await.expect("writes");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .expect("reads");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    Answer {
        status,
        body: raw[split + 4..].to_vec(),
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WebSocket client of an Engine.IO endpoint.
pub struct WsClient {
    ws: Ws,
    /// Answer Engine.IO pings with pongs (off to let the server time out).
    pub pong: bool,
}

impl WsClient {
    /// Opens `path` (e.g. `/engine.io/`) with `query` appended (`EIO=4&transport=websocket`
    /// is added).
    pub async fn open(addr: SocketAddr, path: &str, query: &str) -> WsClient {
        let sep = if query.is_empty() { "" } else { "&" };
        let url = format!("ws://{addr}{path}?EIO=4&transport=websocket{sep}{query}");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket opens");
        WsClient { ws, pong: true }
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned()))
            .await
            .expect("sends");
    }

    pub async fn send_binary(&mut self, b: &[u8]) {
        self.ws
            .send(Message::Binary(b.to_vec()))
            .await
            .expect("sends");
    }

    /// The next message (text or binary) within `wait`, answering pings; `None` at the
    /// deadline or when the connection ended.
    pub async fn next(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let m = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match m.ok()? {
                Message::Text(t) if t == "2" && self.pong => self.send("3").await,
                Message::Text(t) if t == "2" => {}
                m @ (Message::Text(_) | Message::Binary(_) | Message::Close(_)) => return Some(m),
                _ => {}
            }
        }
    }

    /// The next text message within `wait`, or a failure naming `what`.
    pub async fn text(&mut self, what: &str, wait: Duration) -> String {
        match self.next(wait).await {
            Some(Message::Text(t)) => t,
            other => panic!("expected {what}, got {other:?}"),
        }
    }

    /// Waits for a text message for which `pred` holds, skipping others.
    pub async fn until(
        &mut self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Message::Text(t)) if pred(&t) => return t,
                Some(Message::Text(_)) | Some(Message::Binary(_)) => {}
                other => panic!("expected {what}, got {other:?}"),
            }
        }
    }

    /// Every text message that arrives within `wait` (pings answered).
    pub async fn drain(&mut self, wait: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Message::Text(t)) => out.push(t),
                Some(Message::Binary(_)) => {}
                _ => return out,
            }
        }
    }

    /// True once the server closed the connection (a close frame or the end).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Opens a Socket.IO connection and joins namespace `/`; returns the client and its
    /// socket id.
    pub async fn socket_io(addr: SocketAddr) -> (WsClient, String) {
        let mut c = WsClient::open(addr, "/socket.io/", "").await;
        let open = c.text("the open packet", Duration::from_secs(5)).await;
        assert!(open.starts_with("0{"), "open packet: {open}");
        c.send("40").await;
        let ok = c.text("the CONNECT answer", Duration::from_secs(5)).await;
        let v: serde_json::Value =
            serde_json::from_str(ok.strip_prefix("40").expect("a CONNECT answer")).expect("json");
        let sid = v["sid"].as_str().expect("a socket id").to_owned();
        (c, sid)
    }
}
