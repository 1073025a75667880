//! Fan-out: WebSocket framing and the hub that queues shared frames per connection and hands
//! them back as one buffer per connection (one socket write per connection per tick).

pub mod frame;
pub mod hub;

pub use frame::{encode_text_frame, split_frames};
pub use hub::{Drained, Hub, HubConfig, HubStats};
