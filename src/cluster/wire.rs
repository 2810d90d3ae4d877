//! What travels between nodes on the Redis channel: a [`BusMessage`], as one JSON object.
//!
//! The JSON keeps the short field names of the first version (`o`, `k`, `n`, …), so nodes
//! of both versions understand each other; [`Envelope`] is that encoding and nothing else
//! reads it. Pure: no I/O.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::protocol::engine::Frame;
use crate::protocol::{NodeId, Nsp, Room};
use crate::socketio::adapter::{FetchQuery, SocketInfo};
use crate::socketio::bus::Relay;
use crate::socketio::{next_broadcast_id, Outgoing};

/// A message from one node to the others.
#[derive(Debug, Clone, PartialEq)]
pub enum BusMessage {
    /// A broadcast, delivered by every other node to its local members.
    Broadcast {
        /// The node that emitted it (which never takes it back).
        origin: String,
        /// Its namespace.
        nsp: String,
        /// Target rooms; empty for the whole namespace.
        rooms: Vec<String>,
        /// Rooms (and socket ids) that do not get it.
        except: Vec<String>,
        /// The encoded Socket.IO text frame.
        text: String,
        /// Its binary attachments.
        binary: Vec<Bytes>,
        /// Its recovery offset, when recovery is on.
        offset: Option<String>,
        /// When it was published (ms since the epoch), for the bridge lag.
        published_ms: i64,
    },
    /// `disconnect_sockets()` of the sockets of `nsp` in `rooms` (all when empty).
    DisconnectSockets {
        /// The node that asked.
        origin: String,
        /// The namespace.
        nsp: String,
        /// Target rooms; empty for the whole namespace.
        rooms: Vec<String>,
        /// When it was published (ms since the epoch).
        published_ms: i64,
    },
    /// A command to the sockets of `nsp` in `rooms` (all when empty).
    Command {
        /// The node that asked.
        origin: String,
        /// The namespace.
        nsp: String,
        /// Target rooms; empty for the whole namespace.
        rooms: Vec<String>,
        /// The command handler's name.
        name: String,
        /// Its argument.
        args: serde_json::Value,
        /// When it was published (ms since the epoch).
        published_ms: i64,
    },
    /// A fetch of sockets; every other node answers with [`BusMessage::Fetched`].
    Fetch {
        /// The node that asks.
        origin: String,
        /// Its request number.
        request: u64,
        /// Which sockets.
        query: FetchQuery,
        /// When it was published (ms since the epoch).
        published_ms: i64,
    },
    /// A node's answer to a fetch of node `to`.
    Fetched {
        /// The node that answers.
        origin: String,
        /// The node that asked.
        to: String,
        /// Its request number.
        request: u64,
        /// The matching sockets of the answering node.
        sockets: Vec<SocketInfo>,
        /// When it was published (ms since the epoch).
        published_ms: i64,
    },
}

/// The argument (`a`) of a fetch and of its answer.
#[derive(Serialize, Deserialize)]
struct FetchArgs {
    /// The request number.
    q: u64,
    /// The asking node (an answer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    /// The query (a fetch's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<FetchQuery>,
    /// The sockets (an answer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<Vec<SocketInfo>>,
}

/// Why a channel message was not understood.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not the JSON of an envelope.
    #[error("undecodable message: {0}")]
    Json(#[from] serde_json::Error),
    /// An attachment that is not base64.
    #[error("bad attachment: {0}")]
    Base64(#[from] base64::DecodeError),
    /// An unknown `k`.
    #[error("unknown kind {0:?}")]
    Kind(char),
    /// A fetch or answer without its parts.
    #[error("incomplete {0:?} message")]
    Incomplete(char),
}

/// The JSON form (short names kept for compatibility between node versions).
#[derive(Serialize, Deserialize)]
struct Envelope {
    /// Origin node.
    o: String,
    /// `b` broadcast, `d` disconnect sockets, `c` command (its name in `t`), `q` fetch,
    /// `a` a fetch's answer (both in `a`).
    k: char,
    /// Namespace.
    n: String,
    /// Target rooms.
    #[serde(default)]
    r: Vec<String>,
    /// Excluded rooms.
    #[serde(default)]
    e: Vec<String>,
    /// The text frame.
    #[serde(default)]
    t: String,
    /// Binary attachments, base64.
    #[serde(default)]
    b: Vec<String>,
    /// Recovery offset.
    #[serde(default)]
    x: Option<String>,
    /// Publish time, ms.
    p: i64,
    /// A command's argument.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<serde_json::Value>,
}

impl Envelope {
    /// The envelope of a fetch (`q`) or an answer (`a`): everything in `a`.
    fn of_fetch(origin: String, k: char, published_ms: i64, args: FetchArgs) -> Self {
        Envelope {
            o: origin,
            k,
            n: String::new(),
            r: Vec::new(),
            e: Vec::new(),
            t: String::new(),
            b: Vec::new(),
            x: None,
            p: published_ms,
            // strings, numbers and JSON values always serialize
            a: Some(serde_json::to_value(args).unwrap_or_default()),
        }
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl BusMessage {
    /// The message of a local relay, from node `origin` at `now_ms`.
    pub fn from_relay(origin: &str, relay: &Relay, now_ms: i64) -> Self {
        let strings = |rooms: &[Room]| rooms.iter().map(|r| r.to_string()).collect();
        match relay {
            Relay::Broadcast {
                rooms,
                packet,
                offset,
            } => {
                let mut text = String::new();
                let mut binary = Vec::new();
                for f in &packet.frames {
                    if f.is_binary() {
                        binary.push(Bytes::copy_from_slice(f.payload()));
                    } else {
                        text = String::from_utf8_lossy(f.payload()).into_owned();
                    }
                }
                BusMessage::Broadcast {
                    origin: origin.to_owned(),
                    nsp: packet.nsp.to_string(),
                    rooms: strings(rooms),
                    except: strings(&packet.except_rooms),
                    text,
                    binary,
                    offset: offset.as_ref().map(|o| o.to_string()),
                    published_ms: now_ms,
                }
            }
            Relay::DisconnectSockets { nsp, rooms } => BusMessage::DisconnectSockets {
                origin: origin.to_owned(),
                nsp: nsp.to_string(),
                rooms: strings(rooms),
                published_ms: now_ms,
            },
            Relay::Command {
                nsp,
                rooms,
                name,
                args,
            } => BusMessage::Command {
                origin: origin.to_owned(),
                nsp: nsp.to_string(),
                rooms: strings(rooms),
                name: name.to_string(),
                args: (**args).clone(),
                published_ms: now_ms,
            },
            Relay::Fetch { request, query, .. } => BusMessage::Fetch {
                origin: origin.to_owned(),
                request: *request,
                query: query.clone(),
                published_ms: now_ms,
            },
            Relay::Fetched {
                to,
                request,
                sockets,
            } => BusMessage::Fetched {
                origin: origin.to_owned(),
                to: to.to_string(),
                request: *request,
                sockets: sockets.clone(),
                published_ms: now_ms,
            },
        }
    }

    /// The node that sent it.
    pub fn origin(&self) -> &str {
        match self {
            BusMessage::Broadcast { origin, .. }
            | BusMessage::DisconnectSockets { origin, .. }
            | BusMessage::Command { origin, .. }
            | BusMessage::Fetch { origin, .. }
            | BusMessage::Fetched { origin, .. } => origin,
        }
    }

    /// When it was published (ms).
    pub fn published_ms(&self) -> i64 {
        match self {
            BusMessage::Broadcast { published_ms, .. }
            | BusMessage::DisconnectSockets { published_ms, .. }
            | BusMessage::Command { published_ms, .. }
            | BusMessage::Fetch { published_ms, .. }
            | BusMessage::Fetched { published_ms, .. } => *published_ms,
        }
    }

    /// The relay to deliver on the receiving node (a fresh broadcast id there).
    pub fn into_relay(self) -> Relay {
        let to_rooms = |v: Vec<String>| -> Vec<Room> { v.into_iter().map(Room::from).collect() };
        match self {
            BusMessage::Broadcast {
                nsp,
                rooms: r,
                except,
                text,
                binary,
                offset,
                ..
            } => {
                let rooms = to_rooms(r);
                let mut frames = Vec::with_capacity(1 + binary.len());
                frames.push(Frame::text_raw(text.as_bytes()));
                frames.extend(binary.iter().map(|b| Frame::binary(b)));
                let packet = Arc::new(Outgoing {
                    id: next_broadcast_id(),
                    nsp: Nsp::from(nsp),
                    frames,
                    except_rooms: to_rooms(except),
                    multi: rooms.len() > 1,
                    created: Instant::now(),
                    plain: Default::default(),
                });
                Relay::Broadcast {
                    rooms,
                    packet,
                    offset: offset.map(|x| Arc::from(x.as_str())),
                }
            }
            BusMessage::DisconnectSockets { nsp, rooms: r, .. } => Relay::DisconnectSockets {
                nsp: Nsp::from(nsp),
                rooms: to_rooms(r),
            },
            BusMessage::Command {
                nsp,
                rooms: r,
                name,
                args,
                ..
            } => Relay::Command {
                nsp: Nsp::from(nsp),
                rooms: to_rooms(r),
                name: Arc::from(name.as_str()),
                args: Arc::new(args),
            },
            BusMessage::Fetch {
                origin,
                request,
                query,
                ..
            } => Relay::Fetch {
                from: NodeId::from(origin),
                request,
                query,
            },
            BusMessage::Fetched {
                to,
                request,
                sockets,
                ..
            } => Relay::Fetched {
                to: NodeId::from(to),
                request,
                sockets,
            },
        }
    }

    /// The bytes on the channel.
    pub fn encode(&self) -> Vec<u8> {
        let env = match self.clone() {
            BusMessage::Broadcast {
                origin,
                nsp,
                rooms,
                except,
                text,
                binary,
                offset,
                published_ms,
            } => Envelope {
                o: origin,
                k: 'b',
                n: nsp,
                r: rooms,
                e: except,
                t: text,
                b: binary.iter().map(|b| B64.encode(b)).collect(),
                x: offset,
                p: published_ms,
                a: None,
            },
            BusMessage::DisconnectSockets {
                origin,
                nsp,
                rooms,
                published_ms,
            } => Envelope {
                o: origin,
                k: 'd',
                n: nsp,
                r: rooms,
                e: Vec::new(),
                t: String::new(),
                b: Vec::new(),
                x: None,
                p: published_ms,
                a: None,
            },
            BusMessage::Command {
                origin,
                nsp,
                rooms,
                name,
                args,
                published_ms,
            } => Envelope {
                o: origin,
                k: 'c',
                n: nsp,
                r: rooms,
                e: Vec::new(),
                t: name,
                b: Vec::new(),
                x: None,
                p: published_ms,
                a: Some(args),
            },
            BusMessage::Fetch {
                origin,
                request,
                query,
                published_ms,
            } => Envelope::of_fetch(
                origin,
                'q',
                published_ms,
                FetchArgs {
                    q: request,
                    to: None,
                    f: Some(query),
                    s: None,
                },
            ),
            BusMessage::Fetched {
                origin,
                to,
                request,
                sockets,
                published_ms,
            } => Envelope::of_fetch(
                origin,
                'a',
                published_ms,
                FetchArgs {
                    q: request,
                    to: Some(to),
                    f: None,
                    s: Some(sockets),
                },
            ),
        };
        // An envelope of strings and numbers always serializes.
        serde_json::to_vec(&env).unwrap_or_default()
    }

    /// Reads the bytes of the channel.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let env: Envelope = serde_json::from_slice(payload)?;
        match env.k {
            'b' => Ok(BusMessage::Broadcast {
                origin: env.o,
                nsp: env.n,
                rooms: env.r,
                except: env.e,
                text: env.t,
                binary: env
                    .b
                    .iter()
                    .map(|b| B64.decode(b).map(Bytes::from))
                    .collect::<Result<_, _>>()?,
                offset: env.x,
                published_ms: env.p,
            }),
            'd' => Ok(BusMessage::DisconnectSockets {
                origin: env.o,
                nsp: env.n,
                rooms: env.r,
                published_ms: env.p,
            }),
            'c' => Ok(BusMessage::Command {
                origin: env.o,
                nsp: env.n,
                rooms: env.r,
                name: env.t,
                args: env.a.unwrap_or(serde_json::Value::Null),
                published_ms: env.p,
            }),
            'q' | 'a' => {
                let args: FetchArgs = serde_json::from_value(env.a.unwrap_or_default())?;
                Ok(match (env.k, args) {
                    (
                        'q',
                        FetchArgs {
                            q, f: Some(query), ..
                        },
                    ) => BusMessage::Fetch {
                        origin: env.o,
                        request: q,
                        query,
                        published_ms: env.p,
                    },
                    (
                        'a',
                        FetchArgs {
                            q,
                            to: Some(to),
                            s: Some(sockets),
                            ..
                        },
                    ) => BusMessage::Fetched {
                        origin: env.o,
                        to,
                        request: q,
                        sockets,
                        published_ms: env.p,
                    },
                    (k, _) => return Err(WireError::Incomplete(k)),
                })
            }
            k => Err(WireError::Kind(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> Relay {
        Relay::Broadcast {
            rooms: vec![Room::from("room:a"), Room::from("user:b")],
            packet: Arc::new(Outgoing {
                id: 7,
                nsp: Nsp::from("/chat"),
                frames: vec![
                    Frame::text_raw(b"451-/chat,[\"ev\",{\"_placeholder\":true,\"num\":0}]"),
                    Frame::binary(&[0, 1, 2, 255]),
                ],
                except_rooms: vec![Room::from("sock1")],
                multi: true,
                created: Instant::now(),
                plain: Default::default(),
            }),
            offset: Some(Arc::from("abc-1")),
        }
    }

    #[test]
    fn broadcasts_cross_unchanged() {
        let bytes = BusMessage::from_relay("node-a", &relay(), 5).encode();
        let msg = BusMessage::decode(&bytes).expect("decodes");
        assert_eq!(msg.origin(), "node-a");
        assert_eq!(msg.published_ms(), 5);
        let Relay::Broadcast {
            rooms,
            packet,
            offset,
        } = msg.into_relay()
        else {
            panic!("a broadcast stays a broadcast")
        };
        assert_eq!(rooms, vec![Room::from("room:a"), Room::from("user:b")]);
        assert_eq!(offset.as_deref(), Some("abc-1"));
        assert_eq!(&*packet.nsp, "/chat");
        assert_eq!(packet.except_rooms, vec![Room::from("sock1")]);
        assert!(packet.multi);
        assert_eq!(
            packet.frames,
            vec![
                Frame::text_raw(b"451-/chat,[\"ev\",{\"_placeholder\":true,\"num\":0}]"),
                Frame::binary(&[0, 1, 2, 255]),
            ]
        );
    }

    #[test]
    fn the_bytes_are_the_first_versions() {
        let d = Relay::DisconnectSockets {
            nsp: Nsp::from("/"),
            rooms: vec![Room::from("user:x")],
        };
        let bytes = BusMessage::from_relay("n1", &d, 9).encode();
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"o":"n1","k":"d","n":"/","r":["user:x"],"e":[],"t":"","b":[],"x":null,"p":9}"#
        );
    }

    #[test]
    fn a_command_round_trips() {
        let c = Relay::Command {
            nsp: Nsp::from("/"),
            rooms: vec![Room::from("user:x")],
            name: Arc::from("dm"),
            args: Arc::new(serde_json::json!({"id": "1"})),
        };
        let bytes = BusMessage::from_relay("n1", &c, 9).encode();
        assert_eq!(
            String::from_utf8(bytes.clone()).expect("utf-8"),
            r#"{"o":"n1","k":"c","n":"/","r":["user:x"],"e":[],"t":"dm","b":[],"x":null,"p":9,"a":{"id":"1"}}"#
        );
        let back = BusMessage::decode(&bytes).expect("decodes").into_relay();
        let Relay::Command {
            nsp,
            rooms,
            name,
            args,
        } = back
        else {
            panic!("a command stays a command")
        };
        assert_eq!((&*nsp, &*name), ("/", "dm"));
        assert_eq!(rooms, vec![Room::from("user:x")]);
        assert_eq!(*args, serde_json::json!({"id": "1"}));
    }

    #[test]
    fn a_fetch_and_its_answer_round_trip() {
        let query = FetchQuery {
            rooms: vec!["user:x".into()],
            limit: 5,
            disconnect: true,
            ..FetchQuery::default()
        };
        let ask = Relay::Fetch {
            from: NodeId::from("ignored: the origin is the asker"),
            request: 42,
            query: query.clone(),
        };
        let bytes = BusMessage::from_relay("n1", &ask, 9).encode();
        let Relay::Fetch {
            from,
            request,
            query: q,
        } = BusMessage::decode(&bytes).expect("decodes").into_relay()
        else {
            panic!("a fetch stays a fetch")
        };
        assert_eq!((&*from, request, q), ("n1", 42, query));
        let socket = SocketInfo {
            id: "s1".into(),
            nsp: "/".into(),
            client_id: "c1".into(),
            transport: "websocket".into(),
            address: Some("127.0.0.1".into()),
            connected_at: 7,
            rooms: vec!["room:a".into()],
            data: serde_json::json!({"userId": "x"}),
            node: "n2".into(),
            handshake: None,
        };
        let answer = Relay::Fetched {
            to: NodeId::from("n1"),
            request: 42,
            sockets: vec![socket.clone()],
        };
        let bytes = BusMessage::from_relay("n2", &answer, 9).encode();
        let msg = BusMessage::decode(&bytes).expect("decodes");
        assert_eq!(msg.origin(), "n2");
        let Relay::Fetched {
            to,
            request,
            sockets,
        } = msg.into_relay()
        else {
            panic!("an answer stays an answer")
        };
        assert_eq!((&*to, request, sockets), ("n1", 42, vec![socket]));
        // a fetch without its query, an answer without its sockets
        assert!(BusMessage::decode(br#"{"o":"x","k":"q","n":"","p":0,"a":{"q":1}}"#).is_err());
        assert!(
            BusMessage::decode(br#"{"o":"x","k":"a","n":"","p":0,"a":{"q":1,"to":"y"}}"#).is_err()
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(BusMessage::decode(b"not json").is_err());
        assert!(BusMessage::decode(br#"{"o":"x","k":"b","n":"/","b":["***"],"p":0}"#).is_err());
        assert!(BusMessage::decode(br#"{"o":"x","k":"z","n":"/","p":0}"#).is_err());
    }
}
