//! The ids every layer passes around, as distinct types: an Engine.IO session id is not a
//! socket id, a room is not a namespace. Each is a shared string (cloning is a reference
//! count), reads as `&str` where a string is wanted, and prints as itself.

/// Defines an id type over `Arc<str>`.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(std::sync::Arc::from(s))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(std::sync::Arc::from(s))
            }
        }

        impl From<std::sync::Arc<str>> for $name {
            fn from(s: std::sync::Arc<str>) -> Self {
                $name(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }
    };
}

id_type!(
    /// An Engine.IO session id (`sid` of the handshake and of every polling request).
    Sid
);
id_type!(
    /// A Socket.IO socket id (`socket.id`); every socket is also in the room of that name.
    SocketId
);
id_type!(
    /// A namespace (`/`, `/admin`, ...).
    Nsp
);
id_type!(
    /// A room of a namespace.
    Room
);
id_type!(
    /// A node of a cluster.
    NodeId
);
id_type!(
    /// An application user (what presence counts).
    UserId
);

impl Room {
    /// The room every socket is in: the one named by its id.
    pub fn of_socket(id: &SocketId) -> Room {
        Room(id.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn ids_read_as_text_and_look_up_by_str() {
        let r = Room::from("lobby");
        assert_eq!(r, "lobby");
        assert_eq!(r.to_string(), "lobby");
        assert_eq!(format!("{r:?}"), r#"Room("lobby")"#);
        let mut m = HashMap::new();
        m.insert(Nsp::from("/"), 1);
        assert_eq!(m.get("/"), Some(&1));
        let s = SocketId::from("abc");
        assert_eq!(Room::of_socket(&s), "abc");
    }
}
