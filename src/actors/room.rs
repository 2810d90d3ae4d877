//! `RoomActor`: the members of one room of one namespace that live on one worker thread,
//! and the fan-out of a broadcast to them.
//!
//! It runs on the same thread as its members, so it queues the shared packet straight into
//! each member's outbox and writes every touched socket once when its current batch of
//! broadcasts is done. It never encodes anything: the packet arrives encoded.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler};

use super::messages::{AddMember, Deliver, DisconnectMembers, Fanout, RemoveMember, StopRoom};
use super::session::{
    self, ForSocket, OutboxTrouble, Queued, SharedOutbox, SocketCommand, WsSession,
};
use crate::transport::ws::Flushed;

struct Member {
    addr: Addr<WsSession>,
    /// The member's outbox when it lives on this thread (always, but for a socket gone
    /// before its join arrived): broadcasts then skip the session's mailbox.
    outbox: Option<SharedOutbox>,
    /// Queued into since the last flush.
    dirty: bool,
}

pub struct RoomActor {
    nsp: Arc<str>,
    name: Arc<str>,
    members: HashMap<u64, Member>,
    /// Members with bytes to write at the end of this batch.
    to_flush: Vec<u64>,
    flush_scheduled: bool,
    /// Deliveries of this room's namespace (`rt_events_out_total`).
    delivered: prometheus::IntCounter,
}

impl RoomActor {
    pub fn new(nsp: Arc<str>, name: Arc<str>) -> Self {
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
            let Some(m) = self.members.get_mut(&key) else {
                continue;
            };
            m.dirty = false;
            let Some(ob) = &m.outbox else { continue };
            let Ok(mut o) = ob.try_borrow_mut() else {
                continue;
            };
            if o.blocked || o.closed {
                continue;
            }
            let flushed = o.flush();
            if flushed != Flushed::Done {
                o.blocked = flushed == Flushed::Blocked;
                drop(o);
                m.addr.do_send(OutboxTrouble { flushed });
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

impl Handler<AddMember> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: AddMember, _: &mut Self::Context) {
        let outbox = session::local_outbox(msg.key);
        self.members.insert(
            msg.key,
            Member {
                addr: msg.addr,
                outbox,
                dirty: false,
            },
        );
    }
}

impl Handler<RemoveMember> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: RemoveMember, _: &mut Self::Context) {
        self.members.remove(&msg.key);
    }
}

impl Handler<Fanout> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: Fanout, ctx: &mut Self::Context) {
        crate::metrics::get()
            .delivery_latency
            .observe(msg.packet.created.elapsed().as_secs_f64());
        let mut queued_n = 0u64;
        for (key, m) in self.members.iter_mut() {
            let queued = match m.outbox.as_ref().map(|o| o.try_borrow_mut()) {
                Some(Ok(mut o)) => o.deliver(*key, &msg.packet),
                _ => {
                    m.addr.do_send(Deliver {
                        key: *key,
                        packet: msg.packet.clone(),
                    });
                    continue;
                }
            };
            if queued == Queued::Yes {
                queued_n += 1;
            }
            match queued {
                Queued::Yes if !m.dirty => {
                    m.dirty = true;
                    self.to_flush.push(*key);
                }
                Queued::Overflow => m.addr.do_send(OutboxTrouble {
                    flushed: Flushed::Done,
                }),
                _ => {}
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

impl Handler<DisconnectMembers> for RoomActor {
    type Result = ();
    fn handle(&mut self, _: DisconnectMembers, _: &mut Self::Context) {
        for (key, m) in &self.members {
            m.addr.do_send(ForSocket {
                key: *key,
                cmd: SocketCommand::Disconnect,
            });
        }
    }
}

impl Handler<StopRoom> for RoomActor {
    type Result = ();
    fn handle(&mut self, _: StopRoom, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
