//! `RoomActor`: the members of one room of one namespace that live on one worker thread,
//! and the fan-out of a broadcast to them.
//!
//! It runs on the same thread as its members, so it queues the shared packet straight into
//! each member's outbox and writes every touched socket once when its current batch of
//! broadcasts is done. It never encodes anything: the packet arrives encoded.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message};

use super::local::LocalSocket;
use super::{Member, Nsp, Room};
use crate::engine::{Flushed, OutboxTrouble, Queued};
use crate::socketio::client::{Deliver, ForSocket, SocketCommand};
use crate::socketio::Outgoing;

struct Entry {
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
    members: HashMap<u64, Entry>,
    /// Members with bytes to write at the end of this batch.
    to_flush: Vec<u64>,
    flush_scheduled: bool,
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
            members: HashMap::new(),
            to_flush: Vec::new(),
            flush_scheduled: false,
            delivered,
        }
    }

    fn flush(&mut self) {
        for key in self.to_flush.drain(..) {
            let Some(e) = self.members.get_mut(&key) else {
                continue;
            };
            e.dirty = false;
            let Some(local) = &e.local else { continue };
            let Ok(mut ob) = local.outbox().try_borrow_mut() else {
                continue;
            };
            match ob.flush_if_idle() {
                None | Some(Flushed::Done) => {}
                Some(flushed) => {
                    drop(ob);
                    e.member.addr.do_send(OutboxTrouble { flushed });
                }
            }
        }
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Fan-out bursts must not be throttled by the default mailbox capacity.
        ctx.set_mailbox_capacity(1 << 16);
        log::debug!("room started nsp={} room={}", self.nsp, self.name);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
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
        self.members.insert(
            key,
            Entry {
                member: msg.0,
                local,
                dirty: false,
            },
        );
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
        self.members.remove(&msg.key);
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
        crate::metrics::get()
            .delivery_latency
            .observe(msg.packet.created.elapsed().as_secs_f64());
        let mut queued_n = 0u64;
        for (key, e) in self.members.iter_mut() {
            let Some(queued) = e.local.as_ref().and_then(|l| l.deliver(&msg.packet)) else {
                e.member.addr.do_send(Deliver {
                    key: *key,
                    packet: msg.packet.clone(),
                });
                continue;
            };
            match queued {
                Queued::Yes => {
                    queued_n += 1;
                    if !e.dirty {
                        e.dirty = true;
                        self.to_flush.push(*key);
                    }
                }
                Queued::Overflow => e.member.addr.do_send(OutboxTrouble {
                    flushed: Flushed::Done,
                }),
                Queued::No => {}
            }
        }
        self.delivered.inc_by(queued_n);
        if !self.flush_scheduled && !self.to_flush.is_empty() {
            // Write once this batch of broadcasts is handled: several queued for one socket
            // leave in one write.
            self.flush_scheduled = true;
            ctx.spawn(actix::fut::ready(()).map(|_, act: &mut Self, _| {
                act.flush_scheduled = false;
                act.flush();
            }));
        }
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
        for (key, e) in &self.members {
            e.member.addr.do_send(ForSocket {
                key: *key,
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
