//! Ingest fast path: a legacy batch body straight to frames, hot rows and log records, with the
//! Python path (`events.py`) as the reference and the fallback.

pub mod canonical;
pub mod ids;
pub mod legacy;

pub use ids::IdGen;
pub use legacy::{accept_legacy_batch, LegacyEvent};
