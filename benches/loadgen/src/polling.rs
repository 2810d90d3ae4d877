//! A minimal Engine.IO v4 / Socket.IO v5 client on HTTP long-polling only (namespace `/`),
//! as a browser behind a proxy that blocks WebSocket runs it: one keep-alive connection
//! carries the long-polling GETs, another the POSTs; what is queued while a POST is under
//! way leaves in the next one (records joined with `\x1e`, as socket.io-client does).
//! Server pings are answered by the reader.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error>;

/// Sends Socket.IO packets (text, e.g. `42["echo",1]`); they leave in the next POST.
pub type PollTx = mpsc::UnboundedSender<String>;
/// Receives the server's packets, one per record, pings excluded.
pub type PollRx = mpsc::UnboundedReceiver<String>;

struct Http {
    send: SendRequest<Full<Bytes>>,
    host: String,
}

impl Http {
    async fn connect(addr: SocketAddr, local: Option<IpAddr>) -> Result<Http, Error> {
        let stream = crate::client::connect_tcp(addr, local).await?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Http {
            send,
            host: addr.to_string(),
        })
    }

    async fn request(&mut self, method: &str, path: &str, body: String) -> Result<Bytes, Error> {
        let post = method == "POST";
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        if post {
            req = req.header("content-type", "text/plain;charset=UTF-8");
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        self.send.ready().await?;
        let res = self.send.send_request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok(body)
    }
}

fn records(body: &[u8]) -> impl Iterator<Item = String> + '_ {
    body.split(|b| *b == 0x1e)
        .map(|r| String::from_utf8_lossy(r).into_owned())
}

/// Opens a session on polling, joins namespace `/` (and `room` with an ack when given), and
/// returns its sending and receiving ends; the session lives as long as both tasks do.
pub async fn open(
    addr: SocketAddr,
    local: Option<IpAddr>,
    room: Option<&str>,
) -> Result<(PollTx, PollRx), Error> {
    let mut get = Http::connect(addr, local).await?;
    let mut post = Http::connect(addr, local).await?;
    let open = get
        .request("GET", "/socket.io/?EIO=4&transport=polling", String::new())
        .await?;
    let open = String::from_utf8_lossy(&open).into_owned();
    let sid = open
        .strip_prefix("0{")
        .and_then(|_| serde_json::from_str::<serde_json::Value>(&open[1..]).ok())
        .and_then(|v| v["sid"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("expected an open packet, got {open:?}"))?;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    post.request("POST", &path, "40".into())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut early = Vec::new();
    'connect: loop {
        let body = get
            .request("GET", &path, String::new())
            .await
            .map_err(|e| format!("connect answer: {e}"))?;
        let mut done = false;
        for r in records(&body) {
            if r.starts_with("40") {
                done = true;
            } else if r.starts_with("44") {
                return Err(format!("connect refused: {r}").into());
            } else if r == "2" {
                // some servers ping at once: answer here too
                post.request("POST", &path, "3".into()).await?;
            }
        }
        if done {
            break 'connect;
        }
    }
    if let Some(room) = room {
        // Sent again each second without an ack (see `Conn::join`): the GET stays pending
        // meanwhile, so the session never has two.
        let join = format!("420[\"join\",{}]", serde_json::to_string(room)?);
        post.request("POST", &path, join.clone())
            .await
            .map_err(|e| format!("join: {e}"))?;
        let mut tries = 1;
        'join: loop {
            let pending = get.request("GET", &path, String::new());
            tokio::pin!(pending);
            let body = loop {
                tokio::select! {
                    r = &mut pending => break r.map_err(|e| format!("join answer: {e}"))?,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                        if tries == 10 {
                            return Err("join: no ack after 10 tries".into());
                        }
                        tries += 1;
                        post.request("POST", &path, join.clone()).await?;
                    }
                }
            };
            let mut done = false;
            for r in records(&body) {
                if r.starts_with("430") {
                    done = true;
                } else if r == "2" {
                    post.request("POST", &path, "3".into()).await?;
                } else {
                    early.push(r);
                }
            }
            if done {
                break 'join;
            }
        }
    }
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let (in_tx, in_rx) = mpsc::unbounded_channel::<String>();
    for r in early.drain(..) {
        let _ = in_tx.send(r);
    }
    let pong = out_tx.clone();
    let get_path = path.clone();
    tokio::task::spawn_local(async move {
        loop {
            // An error ends the session (after our close, the server answers 400).
            let Ok(body) = get.request("GET", &get_path, String::new()).await else {
                return;
            };
            for r in records(&body) {
                match r.as_str() {
                    "2" => {
                        let _ = pong.send("3".into());
                    }
                    "1" => return,
                    "6" => {}
                    _ => {
                        if in_tx.send(r).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    tokio::task::spawn_local(async move {
        while let Some(first) = out_rx.recv().await {
            let mut body = first;
            while let Ok(more) = out_rx.try_recv() {
                body.push('\x1e');
                body.push_str(&more);
            }
            let closing = body == "1" || body.ends_with("\x1e1");
            if let Err(e) = post.request("POST", &path, body).await {
                eprintln!("polling POST failed: {e}");
                return;
            }
            if closing {
                return;
            }
        }
    });
    Ok((out_tx, in_rx))
}
