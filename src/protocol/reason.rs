//! Why a socket or an Engine.IO connection ended, named as Node's socket.io names it (the
//! strings are what a `disconnect` handler sees there).

use std::fmt;

/// A disconnect reason. The first seven end the whole Engine.IO connection; the last two
/// end one namespace socket only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The client closed the connection (or it went away).
    TransportClose,
    /// The transport failed (a write error, an overlapping poll, a slow consumer).
    TransportError,
    /// No pong within `pingTimeout` of a ping.
    PingTimeout,
    /// An Engine.IO packet could not be decoded.
    ParseError,
    /// A Socket.IO packet could not be decoded or came in the wrong state; or no namespace
    /// was joined in time.
    ForcedClose,
    /// The server closed the connection on purpose.
    ForcedServerClose,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The client left the namespace (`socket.disconnect()` on the client).
    ClientNamespaceDisconnect,
    /// The server removed the socket from its namespace (`socket.disconnect()` here).
    ServerNamespaceDisconnect,
}

impl DisconnectReason {
    /// Node's name of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
        }
    }

    /// Whether a socket that ended this way is kept for connection state recovery (the
    /// client did not leave on purpose and was not sent away).
    pub fn recoverable(self) -> bool {
        !matches!(
            self,
            DisconnectReason::ClientNamespaceDisconnect
                | DisconnectReason::ServerNamespaceDisconnect
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::DisconnectReason::*;

    #[test]
    fn names_are_nodes() {
        assert_eq!(TransportClose.to_string(), "transport close");
        assert_eq!(
            ServerNamespaceDisconnect.as_str(),
            "server namespace disconnect"
        );
    }

    #[test]
    fn only_namespace_disconnects_are_final() {
        for r in [
            TransportClose,
            TransportError,
            PingTimeout,
            ParseError,
            ForcedClose,
            ForcedServerClose,
            ServerShuttingDown,
        ] {
            assert!(r.recoverable(), "{r}");
        }
        assert!(!ClientNamespaceDisconnect.recoverable());
        assert!(!ServerNamespaceDisconnect.recoverable());
    }
}
