//! Topics: validation (original-system.md §3.2 plus a final `>`), the canonical matcher (§3.3)
//! and the subscription index that answers "who gets topic T" without scanning patterns.

pub mod index;
pub mod pattern;
pub mod validate;

pub use index::SubscriptionIndex;
pub use pattern::{topic_matches, PatternKind};
pub use validate::{check_topic, TopicError};
