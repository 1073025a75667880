//! The one error type of the core. Decisions (duplicate, rate limited, invalid topic) are return
//! values; a `CoreError` means the caller misused the API or handed us malformed bytes.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// `split_frames` got bytes that are not a sequence of unmasked FIN text frames.
    MalformedFrame(String),
    /// A hot-tier lookup named a field that has no index.
    UnknownField(String),
    /// `Hub::add_connection` with an id that is already registered.
    DuplicateConnection(u64),
    /// An operation that needs a registered connection got an unknown id.
    UnknownConnection(u64),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedFrame(why) => write!(f, "malformed WebSocket frame data: {why}"),
            Self::UnknownField(field) => write!(
                f,
                "unknown field '{field}': expected one of id, trace_id, session_id, \
                 correlation_id, event_type, ns, topic"
            ),
            Self::DuplicateConnection(id) => write!(f, "connection {id} already exists"),
            Self::UnknownConnection(id) => write!(f, "unknown connection {id}"),
        }
    }
}

impl std::error::Error for CoreError {}
