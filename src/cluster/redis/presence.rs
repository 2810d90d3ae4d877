//! The cluster state through Redis ([`ClusterState`]): a presence set per room of
//! `node|socket|user` entries (only live nodes' entries count), the announced states of
//! users and rooms (atomic scripts), the rooms with members, and the orphans a dead node
//! left behind.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use actix::prelude::*;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use super::{live_nodes, RedisBridge, RedisBus, KEY_TTL_MS};
use crate::cluster::seal::Sealer;
use crate::protocol::{now_ms, Nsp, Room, UserId};
use crate::socketio::adapter::Stats;
use crate::socketio::bus::{
    Arrival, ClusterState, PresenceChange, PresenceCount, PresenceOp, PresenceUpdate, StateKey,
    GENERATIONS_PER_MS,
};

/// Cluster-wide presence: counts socket `socket` of `user` in or out of a room and answers
/// from the live entries of every node. `None` when Redis did not answer.
#[derive(Message)]
#[rtype(result = "Option<PresenceCount>")]
struct ClusterPresence(PresenceUpdate);

impl Handler<ClusterPresence> for RedisBridge {
    type Result = ResponseFuture<Option<PresenceCount>>;
    fn handle(&mut self, msg: ClusterPresence, _: &mut Self::Context) -> Self::Result {
        let u = msg.0;
        let key = presence_key(&u.nsp, &u.room);
        // the heartbeat keeps the sets with members of this node alive
        match u.op {
            PresenceOp::Join => {
                self.presence_keys
                    .entry(key.clone())
                    .or_default()
                    .insert(u.socket.clone());
            }
            PresenceOp::Leave => {
                if let Some(sockets) = self.presence_keys.get_mut(&key) {
                    sockets.remove(&u.socket);
                    if sockets.is_empty() {
                        self.presence_keys.remove(&key);
                    }
                }
            }
            PresenceOp::Count => {}
        }
        self.sizes.set(self.presence_keys.len());
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { None });
        };
        let (node, sealer) = (self.node_id.clone(), self.sealer.clone());
        let lost = self.lost.clone();
        Box::pin(async move {
            let me = sealer.tag_member(&key, &format!("{node}|{}|{}", u.socket, u.user));
            // SADD/SREM answer whether the set changed: a socket counted in (or out) twice
            // changes nothing.
            let (moved, members): (bool, Vec<String>) = match u.op {
                PresenceOp::Count => (false, conn.smembers(&key).await.ok()?),
                op => {
                    let mut pipe = redis::pipe();
                    if op == PresenceOp::Join {
                        pipe.sadd(&key, &me);
                    } else {
                        pipe.srem(&key, &me);
                    }
                    pipe.pexpire(&key, KEY_TTL_MS as i64).ignore();
                    pipe.smembers(&key);
                    let (n, members): (i64, Vec<String>) =
                        pipe.query_async(&mut conn).await.ok()?;
                    (n > 0, members)
                }
            };
            let live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
            let mut users = HashSet::new();
            let mut mine = 0usize;
            let mut dead = Vec::new();
            for m in &members {
                // a member without a valid tag was not written by a node: dropped
                let Some(entry) = sealer.untag_member(&key, m) else {
                    dead.push(m.clone());
                    continue;
                };
                let mut parts = entry.splitn(3, '|');
                let (Some(n), Some(_), Some(user)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                if n != &*node && !live.contains_key(n) {
                    dead.push(m.clone());
                    continue;
                }
                users.insert(user);
                if user == &*u.user && *m != me {
                    mine += 1;
                }
            }
            if !dead.is_empty() {
                let _: redis::RedisResult<()> = conn.srem(&key, dead).await;
            }
            let change = match (moved && mine == 0, u.op) {
                (true, PresenceOp::Join) => PresenceChange::Arrived,
                (true, PresenceOp::Leave) => PresenceChange::Departed,
                _ => PresenceChange::Unchanged,
            };
            Some(PresenceCount {
                change,
                count: users.len(),
            })
        })
    }
}

pub(super) const PRESENCE_PREFIX: &str = "rt:presence:";
pub(super) const STATE_PREFIX: &str = "rt:state:";
/// A key that went down is kept this long (its generation keeps growing if it comes back
/// meanwhile; past it, a new one starts from the clock, above the old).
const DOWN_TTL_MS: i64 = 25 * 3600 * 1000;

fn presence_key(nsp: &str, room: &str) -> String {
    format!("{PRESENCE_PREFIX}{nsp}:{room}")
}

fn state_key(k: &StateKey) -> String {
    format!("{STATE_PREFIX}{}:{}", k.nsp, k.room)
}

/// The distinct users of presence set `key` on live nodes (`live`, and this node `me`).
fn set_users<'a>(
    sealer: &Sealer,
    key: &str,
    members: &'a [String],
    me: &str,
    live: &HashMap<String, Stats>,
) -> HashSet<&'a str> {
    members
        .iter()
        .filter_map(|m| sealer.untag_member(key, m))
        .filter_map(|entry| {
            let mut parts = entry.splitn(3, '|');
            let (n, _, user) = (parts.next()?, parts.next()?, parts.next()?);
            (n == me || live.contains_key(n)).then_some(user)
        })
        .collect()
}

/// `arrive`: the generation grows (a key that was down starts from the clock); answers the
/// generation and 1 when the key was down. Atomic in Redis, so exactly one caller is told
/// to announce.
const ARRIVE: &str = r"
local g
if redis.call('HGET', KEYS[1], 'u') == '1' then
  g = redis.call('HINCRBY', KEYS[1], 'g', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {g, 0}
end
if redis.call('HEXISTS', KEYS[1], 'g') == 1 then
  g = redis.call('HINCRBY', KEYS[1], 'g', 1)
else
  g = redis.call('HINCRBY', KEYS[1], 'g', ARGV[1])
end
redis.call('HSET', KEYS[1], 'u', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {g, 1}
";

/// `settle`: down when still up at generation ARGV[1]; 1 for the one caller that does.
const SETTLE: &str = r"
if redis.call('HGET', KEYS[1], 'u') == '1' and redis.call('HGET', KEYS[1], 'g') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'u', '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// An operation on announced states (see [`ClusterState::arrive`] and the others).
enum StateOp {
    Arrive(StateKey),
    Generation(StateKey),
    Settle(StateKey, i64),
    States(Vec<StateKey>),
    RoomUsers(Nsp, Room, usize),
    Orphans(Nsp, usize),
}

/// The answer to a [`StateOp`], in the same order.
enum StateAnswer {
    Arrival(Arrival),
    Generation(i64),
    Settled(bool),
    States(Vec<bool>),
    Users(Vec<UserId>),
    Rooms(Vec<Room>),
}

#[derive(Message)]
#[rtype(result = "Option<StateAnswer>")]
struct StateAsk(StateOp);

impl Handler<StateAsk> for RedisBridge {
    type Result = ResponseFuture<Option<StateAnswer>>;
    fn handle(&mut self, msg: StateAsk, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { None });
        };
        let (node, sealer) = (self.node_id.clone(), self.sealer.clone());
        let lost = self.lost.clone();
        Box::pin(async move {
            match msg.0 {
                StateOp::Arrive(k) => {
                    let (gen, announce): (i64, i64) = redis::Script::new(ARRIVE)
                        .key(state_key(&k))
                        .arg(now_ms() * GENERATIONS_PER_MS)
                        .arg(KEY_TTL_MS)
                        .invoke_async(&mut conn)
                        .await
                        .ok()?;
                    Some(StateAnswer::Arrival(Arrival {
                        gen,
                        announce: announce == 1,
                    }))
                }
                StateOp::Generation(k) => {
                    let (up, gen): (Option<String>, Option<i64>) = redis::cmd("HMGET")
                        .arg(state_key(&k))
                        .arg("u")
                        .arg("g")
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                    let gen = if up.as_deref() == Some("1") {
                        gen
                    } else {
                        None
                    };
                    Some(StateAnswer::Generation(gen.unwrap_or(0)))
                }
                StateOp::Settle(k, gen) => {
                    let done: i64 = redis::Script::new(SETTLE)
                        .key(state_key(&k))
                        .arg(gen)
                        .arg(DOWN_TTL_MS)
                        .invoke_async(&mut conn)
                        .await
                        .ok()?;
                    Some(StateAnswer::Settled(done == 1))
                }
                StateOp::States(keys) => {
                    let mut up = Vec::with_capacity(keys.len());
                    for chunk in keys.chunks(500) {
                        let mut pipe = redis::pipe();
                        for k in chunk {
                            pipe.hget(state_key(k), "u");
                        }
                        let got: Vec<Option<String>> = pipe.query_async(&mut conn).await.ok()?;
                        up.extend(got.iter().map(|u| u.as_deref() == Some("1")));
                    }
                    Some(StateAnswer::States(up))
                }
                StateOp::Orphans(nsp, max) => {
                    let prefix = format!("{STATE_PREFIX}{nsp}:");
                    let keys = scan(&mut conn, &format!("{prefix}*")).await?;
                    let live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
                    let mut out = Vec::new();
                    for chunk in keys.chunks(500) {
                        let mut pipe = redis::pipe();
                        for k in chunk {
                            pipe.hget(k, "u");
                            pipe.smembers(presence_key(&nsp, &k[prefix.len()..]));
                        }
                        let got: Vec<redis::Value> = pipe.query_async(&mut conn).await.ok()?;
                        for (k, pair) in chunk.iter().zip(got.chunks(2)) {
                            let up = matches!(&pair[0], redis::Value::BulkString(b) if b == b"1");
                            let members: Vec<String> =
                                redis::from_redis_value(&pair[1]).unwrap_or_default();
                            let room = &k[prefix.len()..];
                            let pkey = presence_key(&nsp, room);
                            if up && set_users(&sealer, &pkey, &members, &node, &live).is_empty() {
                                out.push(Room::from(room));
                                if out.len() >= max {
                                    return Some(StateAnswer::Rooms(out));
                                }
                            }
                        }
                    }
                    Some(StateAnswer::Rooms(out))
                }
                StateOp::RoomUsers(nsp, room, max) => {
                    let key = presence_key(&nsp, &room);
                    let members: Vec<String> = conn.smembers(&key).await.ok()?;
                    let live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
                    let users = set_users(&sealer, &key, &members, &node, &live);
                    Some(StateAnswer::Users(
                        users.into_iter().take(max).map(UserId::from).collect(),
                    ))
                }
            }
        })
    }
}

impl RedisBus {
    /// Asks the bridge `op`; `pick` takes the answer it expects (`None`: Redis did not answer).
    fn state<T: Send + 'static>(
        &self,
        op: StateOp,
        pick: fn(StateAnswer) -> Option<T>,
    ) -> BoxFuture<'static, Option<T>> {
        let ask = self.bridge.send(StateAsk(op));
        async move { ask.await.ok().flatten().and_then(pick) }.boxed()
    }
}

/// The keys matching `pattern` (at most [`MAX_ROOM_KEYS`], each once).
async fn scan(conn: &mut MultiplexedConnection, pattern: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .ok()?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 || keys.len() >= MAX_ROOM_KEYS {
            break;
        }
    }
    // SCAN may name a key twice
    keys.sort();
    keys.dedup();
    Some(keys)
}

/// Most presence keys one `rooms` answer reads.
const MAX_ROOM_KEYS: usize = 100_000;

/// The rooms of a namespace with members on live nodes (distinct users each).
#[derive(Message)]
#[rtype(result = "Option<Vec<(Room, usize)>>")]
struct ClusterRooms {
    nsp: Nsp,
    max: usize,
}

impl Handler<ClusterRooms> for RedisBridge {
    type Result = ResponseFuture<Option<Vec<(Room, usize)>>>;
    fn handle(&mut self, msg: ClusterRooms, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { None });
        };
        let (node, sealer) = (self.node_id.clone(), self.sealer.clone());
        let lost = self.lost.clone();
        Box::pin(async move {
            let prefix = format!("{PRESENCE_PREFIX}{}:", msg.nsp);
            let keys = scan(&mut conn, &format!("{prefix}*")).await?;
            let live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
            let mut out = Vec::new();
            for chunk in keys.chunks(500) {
                let mut pipe = redis::pipe();
                for k in chunk {
                    pipe.smembers(k);
                }
                let sets: Vec<Vec<String>> = pipe.query_async(&mut conn).await.ok()?;
                for (key, members) in chunk.iter().zip(&sets) {
                    let users = set_users(&sealer, key, members, &node, &live);
                    if !users.is_empty() {
                        out.push((Room::from(&key[prefix.len()..]), users.len()));
                        if out.len() >= msg.max {
                            return Some(out);
                        }
                    }
                }
            }
            Some(out)
        })
    }
}

impl ClusterState for RedisBus {
    fn presence(&self, update: PresenceUpdate) -> BoxFuture<'static, Option<PresenceCount>> {
        // queued now, so steps reach Redis in the order they were asked
        let ask = self.bridge.send(ClusterPresence(update));
        async move { ask.await.ok().flatten() }.boxed()
    }

    fn rooms(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<(Room, usize)>>> {
        let ask = self.bridge.send(ClusterRooms { nsp, max });
        async move { ask.await.ok().flatten() }.boxed()
    }

    fn room_users(
        &self,
        nsp: Nsp,
        room: Room,
        max: usize,
    ) -> BoxFuture<'static, Option<Vec<UserId>>> {
        self.state(StateOp::RoomUsers(nsp, room, max), |a| match a {
            StateAnswer::Users(v) => Some(v),
            _ => None,
        })
    }

    fn arrive(&self, key: StateKey) -> BoxFuture<'static, Option<Arrival>> {
        self.state(StateOp::Arrive(key), |a| match a {
            StateAnswer::Arrival(v) => Some(v),
            _ => None,
        })
    }

    fn generation(&self, key: StateKey) -> BoxFuture<'static, Option<i64>> {
        self.state(StateOp::Generation(key), |a| match a {
            StateAnswer::Generation(v) => Some(v),
            _ => None,
        })
    }

    fn settle(&self, key: StateKey, gen: i64) -> BoxFuture<'static, Option<bool>> {
        self.state(StateOp::Settle(key, gen), |a| match a {
            StateAnswer::Settled(v) => Some(v),
            _ => None,
        })
    }

    fn states(&self, keys: Vec<StateKey>) -> BoxFuture<'static, Option<Vec<bool>>> {
        self.state(StateOp::States(keys), |a| match a {
            StateAnswer::States(v) => Some(v),
            _ => None,
        })
    }

    fn lost_nodes(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn orphans(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<Room>>> {
        self.state(StateOp::Orphans(nsp, max), |a| match a {
            StateAnswer::Rooms(v) => Some(v),
            _ => None,
        })
    }
}
