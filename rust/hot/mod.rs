//! Hot tier: the recent events kept in memory for replay and queries (original-system.md §5,
//! §3.7), bounded by event-time retention and a byte budget.

pub mod arrow;
pub(crate) mod json;
pub mod ring;

pub use ring::{ArrowRow, EventMeta, Field, HotTier};
