//! Rust core of unified-events: topics, the subscription index, fan-out queues, token buckets,
//! the dedup cache and the hot-tier ring. Pure Rust; the Python binding lives only in `py/`
//! (feature `python`) so `cargo test` runs without an interpreter.

pub mod cold;
pub mod dedup;
pub mod error;
pub mod fanout;
pub mod hot;
pub mod ingest;
pub mod log;
pub mod query;
pub mod ratelimit;
pub mod topic;

#[cfg(feature = "python")]
mod py;

pub use error::CoreError;
