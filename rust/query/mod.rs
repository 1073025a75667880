//! Answering queries without DuckDB where that is both possible and much cheaper.

pub mod json_rows;
