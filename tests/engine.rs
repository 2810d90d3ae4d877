//! The engine alone, with a stub handler that records what it is told: open once, every
//! message, close once with the reason, across both transports and the upgrade. Real
//! server on loopback, raw clients.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::live::{self, block_on, http, WsClient};
use realtime_server::protocol::DisconnectReason;
use realtime_server::{Config, EngineCtx, EngineHandler, EngineMessage, Server};
use tokio_tungstenite::tungstenite::Message;

/// What the stub handlers of a server were told, in order (per connection: its number).
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Open(usize),
    Text(usize, String),
    Binary(usize, Vec<u8>),
    Close(usize, DisconnectReason),
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn push(&self, s: Seen) {
        self.0.lock().expect("log").push(s);
    }
    fn all(&self) -> Vec<Seen> {
        self.0.lock().expect("log").clone()
    }
    /// Waits (at most 5 s) until `pred` holds of the log.
    fn wait(&self, what: &str, pred: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let all = self.all();
            if pred(&all) {
                return all;
            }
            assert!(Instant::now() < deadline, "waited for {what}; log: {all:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Echoes messages; `close` closes from the handler, `later` answers from a timer,
/// `spawn` answers from a spawned future.
struct Stub {
    n: usize,
    log: Log,
}

impl EngineHandler for Stub {
    fn on_open(&mut self, _ctx: &mut EngineCtx<'_, Self>) {
        self.log.push(Seen::Open(self.n));
    }

    fn on_message(&mut self, msg: EngineMessage, ctx: &mut EngineCtx<'_, Self>) {
        match &msg {
            EngineMessage::Text(t) => self.log.push(Seen::Text(self.n, t.clone())),
            EngineMessage::Binary(b) => self.log.push(Seen::Binary(self.n, b.to_vec())),
        }
        match msg {
            EngineMessage::Text(t) if t == "close" => {
                ctx.send(EngineMessage::Text("bye".into()));
                ctx.close(DisconnectReason::ForcedServerClose);
            }
            EngineMessage::Text(t) if t == "later" => {
                ctx.run_later(Duration::from_millis(30), |_, ctx| {
                    ctx.send(EngineMessage::Text("from a timer".into()))
                });
            }
            EngineMessage::Text(t) if t == "spawn" => {
                ctx.spawn(async { 41 + 1 }, |_, n, ctx| {
                    ctx.send(EngineMessage::Text(format!("from a future: {n}")))
                });
            }
            other => ctx.send(other),
        }
    }

    fn on_close(&mut self, reason: DisconnectReason, _ctx: &mut EngineCtx<'_, Self>) {
        self.log.push(Seen::Close(self.n, reason));
    }
}

fn server(ping_ms: u64) -> (live::Running, Log) {
    let log = Log::default();
    let l = log.clone();
    let running = live::start(move || {
        let mut config = Config::default();
        config.engine.ping_interval_ms = ping_ms;
        config.engine.ping_timeout_ms = ping_ms;
        config.server.workers = 1;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        Server::new(config).engine_io("/engine.io/", move || Stub {
            n: next.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            log: l.clone(),
        })
    });
    (running, log)
}

const WAIT: Duration = Duration::from_secs(5);

/// A polling handshake: the session id and the query of its later requests.
async fn open_polling(addr: std::net::SocketAddr) -> (String, String) {
    let open = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", b"").await;
    assert_eq!(open.status, 200);
    let text = open.text();
    assert!(
        text.starts_with("0{") && text.contains(r#""upgrades":["websocket"]"#),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text[1..]).expect("json");
    let sid = v["sid"].as_str().expect("sid").to_owned();
    let q = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    (sid, q)
}

#[test]
fn websocket_messages_timers_futures_and_a_close_from_the_handler() {
    let (srv, log) = server(25_000);
    block_on(async {
        let mut c = WsClient::open(srv.addr, "/engine.io/", "").await;
        let open = c.text("the open packet", WAIT).await;
        assert!(
            open.starts_with("0{") && open.contains(r#""upgrades":[]"#),
            "{open}"
        );
        c.send("4hello").await;
        assert_eq!(c.text("the echo", WAIT).await, "4hello");
        c.send_binary(&[1, 2, 3]).await;
        assert_eq!(c.next(WAIT).await, Some(Message::Binary(vec![1, 2, 3])));
        c.send("4later").await;
        assert_eq!(c.text("the timer's message", WAIT).await, "4from a timer");
        c.send("4spawn").await;
        assert_eq!(
            c.text("the future's message", WAIT).await,
            "4from a future: 42"
        );
        c.send("4close").await;
        assert_eq!(
            c.text("what the handler sent before closing", WAIT).await,
            "4bye"
        );
        assert!(c.closed_within(WAIT).await, "the server closes the socket");
    });
    let all = log.wait("the close", |l| {
        l.iter().any(|s| matches!(s, Seen::Close(..)))
    });
    assert_eq!(
        all,
        vec![
            Seen::Open(0),
            Seen::Text(0, "hello".into()),
            Seen::Binary(0, vec![1, 2, 3]),
            Seen::Text(0, "later".into()),
            Seen::Text(0, "spawn".into()),
            Seen::Text(0, "close".into()),
            Seen::Close(0, DisconnectReason::ForcedServerClose),
        ]
    );
}

#[test]
fn polling_then_a_client_close() {
    let (srv, log) = server(25_000);
    block_on(async {
        let (_, q) = open_polling(srv.addr).await;
        let post = http(srv.addr, "POST", &q, b"4one\x1e4two").await;
        assert_eq!((post.status, post.text().as_str()), (200, "ok"));
        let got = http(srv.addr, "GET", &q, b"").await;
        assert_eq!(got.text(), "4one\x1e4two");
        let close = http(srv.addr, "POST", &q, b"1").await;
        assert_eq!(close.status, 200);
        // The session is gone for every later request.
        let mut gone = false;
        for _ in 0..50 {
            let after = http(srv.addr, "GET", &q, b"").await;
            if after.status == 400 {
                assert_eq!(after.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "the closed session is unknown");
    });
    let all = log.wait("the close", |l| {
        l.iter().any(|s| matches!(s, Seen::Close(..)))
    });
    assert_eq!(
        all,
        vec![
            Seen::Open(0),
            Seen::Text(0, "one".into()),
            Seen::Text(0, "two".into()),
            Seen::Close(0, DisconnectReason::TransportClose),
        ]
    );
}

#[test]
fn an_upgrade_keeps_the_handler() {
    let (srv, log) = server(25_000);
    block_on(async {
        let (sid, q) = open_polling(srv.addr).await;
        http(srv.addr, "POST", &q, b"4before").await;
        assert_eq!(http(srv.addr, "GET", &q, b"").await.text(), "4before");
        let mut ws = WsClient::open(srv.addr, "/engine.io/", &format!("sid={sid}")).await;
        ws.send("2probe").await;
        assert_eq!(ws.text("the probe answer", WAIT).await, "3probe");
        ws.send("5").await;
        ws.send("4after").await;
        assert_eq!(ws.text("the echo over the websocket", WAIT).await, "4after");
        // Polling is over for this session.
        assert_eq!(http(srv.addr, "GET", &q, b"").await.status, 400);
    });
    let all = log.wait("both messages", |l| l.len() >= 3);
    // (the client went away at the end of the test: a close may follow)
    let all: Vec<Seen> = all
        .into_iter()
        .filter(|s| !matches!(s, Seen::Close(_, DisconnectReason::TransportClose)))
        .collect();
    assert_eq!(
        all,
        vec![
            Seen::Open(0),
            Seen::Text(0, "before".into()),
            Seen::Text(0, "after".into()),
        ],
        "one handler, opened once"
    );
}

#[test]
fn an_unanswered_ping_closes_with_ping_timeout() {
    let (srv, log) = server(100);
    block_on(async {
        let mut c = WsClient::open(srv.addr, "/engine.io/", "").await;
        c.pong = false;
        c.text("the open packet", WAIT).await;
        assert!(
            c.closed_within(WAIT).await,
            "closed after pingInterval + pingTimeout"
        );
    });
    let all = log.wait("the close", |l| {
        l.iter().any(|s| matches!(s, Seen::Close(..)))
    });
    assert_eq!(
        all,
        vec![Seen::Open(0), Seen::Close(0, DisconnectReason::PingTimeout)]
    );
}

#[test]
fn requests_that_fit_no_session_are_refused_as_node_does() {
    let (srv, log) = server(25_000);
    block_on(async {
        let unknown = http(
            srv.addr,
            "GET",
            "/engine.io/?EIO=4&transport=polling&sid=nope",
            b"",
        )
        .await;
        assert_eq!(
            (unknown.status, unknown.text().as_str()),
            (400, r#"{"code":1,"message":"Session ID unknown"}"#)
        );
        let v3 = http(srv.addr, "GET", "/engine.io/?EIO=3&transport=polling", b"").await;
        assert_eq!(
            (v3.status, v3.text().as_str()),
            (
                400,
                r#"{"code":5,"message":"Unsupported protocol version"}"#
            )
        );
        let transport = http(
            srv.addr,
            "GET",
            "/engine.io/?EIO=4&transport=carrier-pigeon",
            b"",
        )
        .await;
        assert_eq!(
            (transport.status, transport.text().as_str()),
            (400, r#"{"code":0,"message":"Transport unknown"}"#)
        );
    });
    assert!(log.all().is_empty(), "no handler was made: {:?}", log.all());
}
