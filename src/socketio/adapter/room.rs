//! `RoomActor`: the members of one room of one namespace that live on one worker thread,
//! and the fan-out of a broadcast to them.
//!
//! It runs on the same thread as its members, so it queues the shared packet straight into
//! each member's outbox and writes every touched socket once when its current batch of
//! broadcasts is done. It never encodes anything: the packet arrives encoded.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message};

use super::local::LocalSocket;
use super::{Member, Nsp, Room};
use crate::engine::{Flushed, OutboxTrouble, Queued};
use crate::socketio::client::{Deliver, ForSocket, SocketCommand};
use crate::socketio::Outgoing;

/// A room's flush rounds take at most 1/`flush_duty()` of its worker's time before the next
/// round is held back (see [`RoomActor::flush_delay`]); 0 turns the pacing off.
static FLUSH_DUTY: AtomicU32 = AtomicU32::new(6);

fn flush_duty() -> u32 {
    FLUSH_DUTY.load(Ordering::Relaxed)
}

/// Sets the pacing of flush rounds for the process (`server.flush_duty`; 0: off).
pub fn set_flush_duty(duty: u32) {
    FLUSH_DUTY.store(duty, Ordering::Relaxed);
}

/// The longest a flush round is held back.
const MAX_FLUSH_DELAY: Duration = Duration::from_millis(20);
/// Rounds writing fewer members are never paced.
const PACED_MEMBERS: usize = 64;

struct Entry {
    /// The member's socket key.
    key: u64,
    member: Member,
    /// The member's socket when it lives on this thread (always, but for a socket gone
    /// before its join arrived): broadcasts then skip the session's mailbox.
    local: Option<Rc<LocalSocket>>,
    /// Queued into since the last flush.
    dirty: bool,
}

/// One room's members on one worker.
pub struct RoomActor {
    nsp: Nsp,
    name: Room,
    /// The members, contiguous: a fan-out walks them in order.
    members: Vec<Entry>,
    /// Socket key → place in `members`.
    index: HashMap<u64, usize>,
    /// Members with bytes to write at the end of this batch (their `dirty` is set).
    to_flush: usize,
    flush_scheduled: bool,
    /// When the last flush round started and the CPU time it took: the next round waits until
    /// `server.flush_duty` times that has passed (see [`RoomActor::flush_delay`]).
    last_flush: Option<(Instant, Duration)>,
    /// When the last broadcast arrived, and the average time between broadcasts.
    last_fanout: Option<Instant>,
    fanout_gap: Duration,
    /// Deliveries of this room's namespace (`rt_events_out_total`).
    delivered: prometheus::IntCounter,
}

impl RoomActor {
    /// An empty room `name` of namespace `nsp`.
    pub fn new(nsp: Nsp, name: Room) -> Self {
        let delivered = crate::metrics::get().events_out.with_label_values(&[&nsp]);
        RoomActor {
            nsp,
            name,
            members: Vec::new(),
            index: HashMap::new(),
            to_flush: 0,
            flush_scheduled: false,
            last_flush: None,
            last_fanout: None,
            fanout_gap: Duration::MAX,
            delivered,
        }
    }

    /// How long the next flush round waits. A round writes every touched member once; when
    /// rounds come faster than `server.flush_duty` times their own cost, the worker is busy with
    /// this room's writes and the next round waits, so frames of the broadcasts that arrive
    /// meanwhile leave in the same write (one syscall, and one read for the client, instead
    /// of one per broadcast). It waits only when another broadcast is due within the wait
    /// (by the average gap between broadcasts), so a wait always merges writes: an idle or
    /// lightly loaded worker never waits.
    fn flush_delay(&self, now: Instant, duty: u32) -> Option<Duration> {
        let (start, cost) = self.last_flush?;
        if duty == 0 {
            return None;
        }
        let due = start + cost * duty;
        due.checked_duration_since(now)
            .filter(|d| *d >= self.fanout_gap)
            .map(|d| d.min(MAX_FLUSH_DELAY))
    }

    /// Follows the average gap between broadcasts (exponential, 1/8 per sample).
    fn note_fanout(&mut self, now: Instant) {
        if let Some(last) = self.last_fanout.replace(now) {
            let gap = now - last;
            self.fanout_gap = if self.fanout_gap == Duration::MAX {
                gap
            } else {
                (self.fanout_gap * 7 + gap) / 8
            };
        }
    }

    fn flush(&mut self) {
        self.flush_scheduled = false;
        if self.to_flush < PACED_MEMBERS {
            // Rounds of a few members are too cheap to pace (and to measure).
            self.last_flush = None;
            self.flush_round();
            return;
        }
        let start = Instant::now();
        // The round's cost is this thread's CPU time, not wall time: a worker preempted by
        // other processes must not look busy with writes it is not doing.
        let cpu = cpu_time::ThreadTime::try_now().ok();
        self.flush_round();
        let cost = cpu.map_or_else(|| start.elapsed(), |t| t.elapsed());
        self.last_flush = Some((start, cost));
    }

    fn flush_round(&mut self) {
        if self.to_flush == 0 {
            return;
        }
        self.to_flush = 0;
        for e in self.members.iter_mut().filter(|e| e.dirty) {
            e.dirty = false;
            flush_member(e);
        }
    }
}

/// Writes what a member's outbox holds (unless the session is writing it itself).
fn flush_member(e: &Entry) {
    let Some(local) = &e.local else { return };
    let Ok(mut ob) = local.outbox().try_borrow_mut() else {
        return;
    };
    match ob.flush_if_idle() {
        None | Some(Flushed::Done) => {}
        Some(flushed) => {
            drop(ob);
            e.member.addr.do_send(OutboxTrouble { flushed });
        }
    }
}

/// Room actors running in the process (`rt_state_entries{map="room_actors"}`).
fn live_rooms() -> &'static crate::metrics::SizeCell {
    static CELL: std::sync::OnceLock<crate::metrics::SizeCell> = std::sync::OnceLock::new();
    CELL.get_or_init(|| crate::metrics::SizeCell::new("room_actors"))
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Fan-out bursts must not be throttled by the default mailbox capacity.
        ctx.set_mailbox_capacity(1 << 16);
        live_rooms().add();
        log::debug!("room started nsp={} room={}", self.nsp, self.name);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        live_rooms().sub();
        log::debug!("room stopped nsp={} room={}", self.nsp, self.name);
    }
}

/// Adds a member.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddMember(pub Member);

impl Handler<AddMember> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: AddMember, _: &mut Self::Context) {
        let key = msg.0.key;
        let local = LocalSocket::find(key);
        let entry = Entry {
            key,
            member: msg.0,
            local,
            dirty: false,
        };
        match self.index.get(&key) {
            Some(&i) => {
                if self.members[i].dirty {
                    flush_member(&self.members[i]);
                    self.to_flush -= 1;
                }
                self.members[i] = entry;
            }
            None => {
                self.index.insert(key, self.members.len());
                self.members.push(entry);
            }
        }
    }
}

/// Removes a member.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveMember {
    /// The member's socket key.
    pub key: u64,
}

impl Handler<RemoveMember> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: RemoveMember, _: &mut Self::Context) {
        // A member leaving with frames that wait for a paced round gets them now: the round
        // will no longer know it.
        let Some(i) = self.index.remove(&msg.key) else {
            return;
        };
        let e = self.members.swap_remove(i);
        if let Some(moved) = self.members.get(i) {
            self.index.insert(moved.key, i);
        }
        if e.dirty {
            self.to_flush -= 1;
            flush_member(&e);
        }
    }
}

/// Delivers a packet to every member.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fanout {
    /// The encoded packet, shared by every recipient.
    pub packet: Arc<Outgoing>,
}

impl Handler<Fanout> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: Fanout, ctx: &mut Self::Context) {
        let now = Instant::now();
        self.note_fanout(now);
        crate::metrics::get().delivery_latency.observe(
            now.saturating_duration_since(msg.packet.created)
                .as_secs_f64(),
        );
        let mut queued_n = 0u64;
        for e in self.members.iter_mut() {
            let Some(queued) = e.local.as_ref().and_then(|l| l.deliver(&msg.packet)) else {
                e.member.addr.do_send(Deliver {
                    key: e.key,
                    packet: msg.packet.clone(),
                });
                continue;
            };
            match queued {
                Queued::Yes => {
                    queued_n += 1;
                    if !e.dirty {
                        e.dirty = true;
                        self.to_flush += 1;
                    }
                }
                Queued::Overflow => e.member.addr.do_send(OutboxTrouble {
                    flushed: Flushed::Done,
                }),
                Queued::No => {}
            }
        }
        self.delivered.inc_by(queued_n);
        if !self.flush_scheduled && self.to_flush > 0 {
            // Write once this batch of broadcasts is handled: several queued for one socket
            // leave in one write.
            self.flush_scheduled = true;
            match self.flush_delay(now, flush_duty()) {
                None => {
                    ctx.spawn(actix::fut::ready(()).map(|_, act: &mut Self, _| act.flush()));
                }
                Some(d) => {
                    ctx.run_later(d, |act, _| act.flush());
                }
            }
        }
    }
}

/// The room's members on this worker, at most `max` (for a fetch).
#[derive(Message)]
#[rtype(result = "Vec<Member>")]
pub struct Members {
    /// At most this many.
    pub max: usize,
}

impl Handler<Members> for RoomActor {
    type Result = actix::MessageResult<Members>;
    fn handle(&mut self, msg: Members, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(
            self.members
                .iter()
                .take(msg.max)
                .map(|e| e.member.clone())
                .collect(),
        )
    }
}

/// Disconnects every member (server side).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ToMembers(pub MembersOp);

/// What every member socket of a room is told to do.
#[derive(Clone)]
pub enum MembersOp {
    /// Disconnect (server side).
    Disconnect,
    /// Run the namespace's command handler `name` with `args`.
    Command {
        /// The handler's name.
        name: Arc<str>,
        /// Its argument.
        args: Arc<serde_json::Value>,
    },
}

impl MembersOp {
    /// The command one socket gets.
    pub(crate) fn for_socket(&self) -> SocketCommand {
        match self {
            MembersOp::Disconnect => SocketCommand::Disconnect,
            MembersOp::Command { name, args } => SocketCommand::Command {
                name: name.clone(),
                args: args.clone(),
            },
        }
    }
}

impl Handler<ToMembers> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: ToMembers, _: &mut Self::Context) {
        for e in &self.members {
            e.member.addr.do_send(ForSocket {
                key: e.key,
                cmd: msg.0.for_socket(),
            });
        }
    }
}

/// No members are left: stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRoom;

impl Handler<StopRoom> for RoomActor {
    type Result = ();
    fn handle(&mut self, _: StopRoom, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_rounds_wait_only_when_another_broadcast_is_due() {
        let mut room = RoomActor::new(Nsp::from("/"), Room::from("r"));
        let now = Instant::now();
        // no round yet: never waits
        assert_eq!(room.flush_delay(now, 4), None);
        // a round of 2.5 ms just ended; broadcasts every 5 ms: due at 10 ms (duty 4), so
        // the next round waits 7.5 ms, in which another broadcast arrives
        room.last_flush = Some((now, Duration::from_micros(2500)));
        room.fanout_gap = Duration::from_millis(5);
        let later = now + Duration::from_micros(2500);
        assert_eq!(
            room.flush_delay(later, 4),
            Some(Duration::from_micros(7500))
        );
        // broadcasts every 20 ms: waiting would merge nothing, so it writes at once
        room.fanout_gap = Duration::from_millis(20);
        assert_eq!(room.flush_delay(later, 4), None);
        // past the due time: at once
        room.fanout_gap = Duration::from_millis(1);
        assert_eq!(room.flush_delay(now + Duration::from_millis(11), 4), None);
        // a long round is held back at most MAX_FLUSH_DELAY
        room.last_flush = Some((now, Duration::from_millis(100)));
        assert_eq!(room.flush_delay(now, 4), Some(MAX_FLUSH_DELAY));
        // a duty of 0 never waits
        assert_eq!(room.flush_delay(now, 0), None);
    }

    #[test]
    fn the_gap_between_broadcasts_is_averaged() {
        let mut room = RoomActor::new(Nsp::from("/"), Room::from("r"));
        let t0 = Instant::now();
        room.note_fanout(t0);
        assert_eq!(room.fanout_gap, Duration::MAX);
        room.note_fanout(t0 + Duration::from_millis(8));
        assert_eq!(room.fanout_gap, Duration::from_millis(8));
        room.note_fanout(t0 + Duration::from_millis(24));
        assert_eq!(room.fanout_gap, Duration::from_millis(9));
    }
}
