//! `RoomActor`: the local members of one room of one namespace, and the fan-out of a
//! broadcast to them. It only forwards the shared packet; it never encodes anything.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, ActorContext, Addr, Context, Handler};

use super::messages::{AddMember, Deliver, Fanout, RemoveMember, StopRoom};
use super::session::WsSession;

pub struct RoomActor {
    nsp: Arc<str>,
    name: Arc<str>,
    members: HashMap<u64, Addr<WsSession>>,
}

impl RoomActor {
    pub fn new(nsp: Arc<str>, name: Arc<str>) -> Self {
        RoomActor {
            nsp,
            name,
            members: HashMap::new(),
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
        self.members.insert(msg.key, msg.addr);
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
    fn handle(&mut self, msg: Fanout, _: &mut Self::Context) {
        for (key, addr) in &self.members {
            addr.do_send(Deliver {
                key: *key,
                packet: msg.packet.clone(),
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
