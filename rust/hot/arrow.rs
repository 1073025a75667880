//! The hot tier as Arrow columns, for SQL (DuckDB reads them through the Arrow C stream).
//!
//! Rows are appended to builders in fixed-size segments; a full segment is frozen into an
//! immutable `RecordBatch` whose buffers are reference-counted, so a snapshot is a list of
//! cheap clones (plus a copy of the open segment, at most `SEGMENT_ROWS` rows) and stays
//! consistent however long the query that holds it runs. Evicted rows are marked dead; a
//! snapshot exports the runs of live rows as zero-copy slices, and a segment is dropped
//! once all its rows are dead.
//!
//! Columns come from the hot row JSON that `events.py` builds (one key per column), plus
//! `extra`: the event's fields that have no column of their own, as a JSON object.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, StringDictionaryBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rustc_hash::FxHashMap;
use serde_json::value::RawValue;

use super::json::{as_int, as_real, ordered_members, CowStr};
use std::io::Write as _;

/// Rows per frozen segment: big enough for DuckDB's 2048-row vectors, small enough that the
/// copy of the open segment per snapshot stays in the tens of microseconds.
pub const SEGMENT_ROWS: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text; a non-string JSON value is kept as its JSON text.
    Str,
    /// Text with few distinct values (service, event type, topic, ...): dictionary-encoded, so
    /// DuckDB groups and filters on the small integer keys (GROUP BY service_name over 1M rows:
    /// ~4x cheaper for count(*)) and each distinct value is stored once per segment.
    Cat,
    Int,
    Real,
    /// Any JSON value, kept as its JSON text (`payload`).
    Json,
}

/// Column names and kinds, in table order: the 33 hot columns of `events.HOT_COLUMNS`, the
/// compatibility columns, `seq` and `extra`.
const COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("event_type", Kind::Cat),
    ("event_name", Kind::Cat),
    ("ns", Kind::Cat),
    ("trace_id", Kind::Str),
    ("span_id", Kind::Str),
    ("parent_id", Kind::Str),
    ("session_id", Kind::Str),
    ("correlation_id", Kind::Str),
    ("depth", Kind::Int),
    ("is_leaf", Kind::Int),
    ("is_root", Kind::Int),
    ("timestamp", Kind::Str),
    ("outcome", Kind::Cat),
    ("http_url", Kind::Str),
    ("http_status", Kind::Int),
    ("duration_ms", Kind::Real),
    ("service_name", Kind::Cat),
    ("vital_name", Kind::Cat),
    ("vital_value", Kind::Real),
    ("vital_rating", Kind::Cat),
    ("log_level", Kind::Cat),
    ("log_message", Kind::Str),
    ("actor_id", Kind::Str),
    ("data", Kind::Str),
    ("attributes", Kind::Str),
    ("properties", Kind::Str),
    ("error_message", Kind::Str),
    ("http_method", Kind::Cat),
    ("http_host", Kind::Cat),
    ("metric_name", Kind::Cat),
    ("metric_value", Kind::Real),
    ("metric_unit", Kind::Cat),
    ("topic", Kind::Cat),
    ("type", Kind::Cat),
    ("payload", Kind::Json),
    ("timestamp_ms", Kind::Int),
];
/// The columns a row's cells fill, in `COLUMNS` order (`seq` and `extra` come separately).
pub const COLUMN_COUNT: usize = COLUMNS.len();
const PAYLOAD: usize = 35;
const SEQ_COLUMN: &str = "seq";
const EXTRA_COLUMN: &str = "extra";

/// Arrow bytes of a row of nulls: a 4-byte offset per text column, 8 bytes per number (and the
/// `seq`). A row's size is this plus its text bytes; the ring counts it in its byte budget.
pub const ARROW_ROW_FIXED: usize = {
    let mut total = 8 + 4; // seq, extra
    let mut i = 0;
    while i < COLUMNS.len() {
        total += match COLUMNS[i].1 {
            Kind::Str | Kind::Cat | Kind::Json => 4,
            Kind::Int | Kind::Real => 8,
        };
        i += 1;
    }
    total
};

/// The names of the columns a row's cells fill, in order (see `ColumnStore::push_cells`).
pub fn cell_columns() -> impl Iterator<Item = &'static str> {
    COLUMNS.iter().map(|&(name, _)| name)
}

/// The Arrow schema of the `events` relation.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields: Vec<Field> = COLUMNS
                .iter()
                .map(|&(name, kind)| {
                    let field = Field::new(name, data_type(kind), true);
                    if kind == Kind::Json {
                        json_field(field)
                    } else {
                        field
                    }
                })
                .collect();
            fields.push(Field::new(SEQ_COLUMN, DataType::Int64, false));
            fields.push(json_field(Field::new(EXTRA_COLUMN, DataType::Utf8, true)));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Marks a text field as JSON with Arrow's canonical `arrow.json` extension type: DuckDB imports
/// it as its JSON type, so `payload->>'status'` works without a cast in the `events` view (each
/// cast cost the query ~0.5 ms of binding, whatever the row count).
fn json_field(field: Field) -> Field {
    field.with_metadata(
        [
            ("ARROW:extension:name".to_owned(), "arrow.json".to_owned()),
            ("ARROW:extension:metadata".to_owned(), String::new()),
        ]
        .into(),
    )
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Str | Kind::Json => DataType::Utf8,
        Kind::Cat => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        Kind::Int => DataType::Int64,
        Kind::Real => DataType::Float64,
    }
}

/// One column value of a row, already converted to the column's kind: what `push` reads from
/// the hot row JSON, or what a caller that built the row has at hand (`push_cells`).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// For `Str`, `Cat` and `Json` columns: the stored text (a string unquoted; JSON text for
    /// a `Json` column).
    Text(Cow<'a, str>),
    Int(i64),
    Real(f64),
}

impl<'a> Cell<'a> {
    /// The value of a column as the hot row JSON gives it (None = missing key); None for null
    /// and for a value the column's kind does not take.
    fn from_json(kind: Kind, raw: Option<&'a RawValue>) -> Option<Self> {
        let text = raw.map(RawValue::get).filter(|t| *t != "null")?;
        match kind {
            Kind::Str | Kind::Cat | Kind::Json => text_value(kind, Some(text)).map(Cell::Text),
            Kind::Int => as_int(text).map(Cell::Int),
            Kind::Real => as_real(text).map(Cell::Real),
        }
    }
}

enum Builder {
    Str(StringBuilder),
    Cat(StringDictionaryBuilder<Int32Type>),
    Int(Int64Builder),
    Real(Float64Builder),
}

impl Builder {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Str | Kind::Json => Self::Str(StringBuilder::with_capacity(SEGMENT_ROWS, 0)),
            Kind::Cat => Self::Cat(StringDictionaryBuilder::with_capacity(SEGMENT_ROWS, 64, 0)),
            Kind::Int => Self::Int(Int64Builder::with_capacity(SEGMENT_ROWS)),
            Kind::Real => Self::Real(Float64Builder::with_capacity(SEGMENT_ROWS)),
        }
    }

    /// Append one value (None = null); returns the text bytes appended. A value of the wrong
    /// kind for the column (never produced by `Cell::from_json`) is appended as null.
    fn push(&mut self, cell: Option<Cell<'_>>) -> usize {
        match (self, cell) {
            (Self::Str(b), Some(Cell::Text(v))) => {
                b.append_value(&v);
                v.len()
            }
            (Self::Str(b), _) => {
                b.append_null();
                0
            }
            // Counted as if stored per row, as a `Str` is: the ring's byte budget stays an
            // upper bound whatever the dictionary saves.
            (Self::Cat(b), Some(Cell::Text(v))) => {
                b.append_value(&v);
                v.len()
            }
            (Self::Cat(b), _) => {
                b.append_null();
                0
            }
            (Self::Int(b), Some(Cell::Int(v))) => {
                b.append_value(v);
                0
            }
            (Self::Int(b), _) => {
                b.append_null();
                0
            }
            (Self::Real(b), Some(Cell::Real(v))) => {
                b.append_value(v);
                0
            }
            (Self::Real(b), _) => {
                b.append_null();
                0
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Str(b) => Arc::new(b.finish()),
            Self::Cat(b) => Arc::new(b.finish()),
            Self::Int(b) => Arc::new(b.finish()),
            Self::Real(b) => Arc::new(b.finish()),
        }
    }

    fn finish_cloned(&self) -> ArrayRef {
        match self {
            Self::Str(b) => Arc::new(b.finish_cloned()),
            Self::Cat(b) => Arc::new(b.finish_cloned()),
            Self::Int(b) => Arc::new(b.finish_cloned()),
            Self::Real(b) => Arc::new(b.finish_cloned()),
        }
    }
}

/// The text a JSON value is stored as in a text column: a string unquoted (borrowed when it has
/// no escapes, the common case: no allocation), any other value (and any `Json` column) as its
/// JSON text. None for null or missing, and for a string that is not valid JSON.
fn text_value(kind: Kind, text: Option<&str>) -> Option<Cow<'_, str>> {
    let t = text?;
    if kind != Kind::Json && t.starts_with('"') {
        serde_json::from_str::<CowStr<'_>>(t)
            .ok()
            .map(|CowStr(s)| s)
    } else {
        Some(Cow::Borrowed(t))
    }
}

/// The event's own fields without a column (unified events: the frame's payload is the event).
fn extra_json(frame: &[u8]) -> Option<String> {
    let frame: FxHashMap<&str, &RawValue> = serde_json::from_slice(frame).ok()?;
    let event: Vec<(Cow<'_, str>, &RawValue)> = ordered_members(frame.get("payload")?.get())?;
    let mut out = String::from("{");
    for (key, value) in &event {
        if is_column(key) {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).ok()?);
        out.push(':');
        out.push_str(value.get());
    }
    out.push('}');
    (out.len() > 2).then_some(out)
}

/// The members of a hot row. `events.py` writes them in `COLUMNS` order, so member `i` is
/// column `i` and no hashing is needed; anything else falls back to a search by name.
struct Row<'a, 'de> {
    members: &'a [(Cow<'de, str>, &'de RawValue)],
}

impl<'a, 'de> Row<'a, 'de> {
    fn new(members: &'a [(Cow<'de, str>, &'de RawValue)]) -> Self {
        Self { members }
    }

    fn get(&self, i: usize, name: &str) -> Option<&'de RawValue> {
        match self.members.get(i) {
            Some((key, value)) if key == name => Some(*value),
            _ => self
                .members
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, v)| *v),
        }
    }
}

fn is_column(key: &str) -> bool {
    static SORTED: OnceLock<Vec<&'static str>> = OnceLock::new();
    let names = SORTED.get_or_init(|| {
        let mut names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names
    });
    names.binary_search(&key).is_ok()
}

struct Frozen {
    first_seq: u64,
    /// Behind an `Arc` so a snapshot takes a whole segment with one reference count, not one per
    /// column (~1 µs per segment, 0.25 ms per snapshot of 1M rows on the event loop).
    batch: Arc<RecordBatch>,
    alive: Vec<bool>,
    live: usize,
}

/// One segment's live rows in a snapshot (`ColumnStore::segments`).
pub struct SegmentRows {
    pub first_seq: u64,
    pub live: usize,
    /// False for the open segment, whose rows are a copy that changes with every event.
    pub frozen: bool,
    rows: Rows,
}

enum Rows {
    /// A segment with no evicted row, shared with the store.
    Whole(Arc<RecordBatch>),
    /// Slices of the runs of live rows.
    Runs(Vec<RecordBatch>),
}

impl SegmentRows {
    pub fn batches(&self) -> Vec<RecordBatch> {
        match &self.rows {
            Rows::Whole(batch) => vec![RecordBatch::clone(batch)],
            Rows::Runs(runs) => runs.clone(),
        }
    }
}

pub struct ColumnStore {
    frozen: VecDeque<Frozen>,
    builders: Vec<Builder>,
    open_first_seq: u64,
    open_alive: Vec<bool>,
}

impl std::fmt::Debug for ColumnStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnStore")
            .field("frozen_segments", &self.frozen.len())
            .field("open_rows", &self.open_alive.len())
            .finish()
    }
}

impl Default for ColumnStore {
    fn default() -> Self {
        Self::new()
    }
}

impl ColumnStore {
    pub fn new() -> Self {
        Self {
            frozen: VecDeque::new(),
            builders: new_builders(),
            open_first_seq: 1,
            open_alive: Vec::with_capacity(SEGMENT_ROWS),
        }
    }

    /// Append the row of event `seq` (seqs arrive contiguous and increasing). `record` is the
    /// hot row JSON, `frame` the wire frame (for `extra`); a malformed record gives a row of nulls.
    /// Returns the row's size in Arrow buffers (`ARROW_ROW_FIXED` + its text).
    pub fn push(&mut self, seq: u64, record: &[u8], frame: &[u8]) -> usize {
        let members = std::str::from_utf8(record)
            .ok()
            .and_then(ordered_members)
            .unwrap_or_default();
        let row = Row::new(&members);
        let cells: [Option<Cell<'_>>; COLUMN_COUNT] =
            std::array::from_fn(|i| Cell::from_json(COLUMNS[i].1, row.get(i, COLUMNS[i].0)));
        // `extra` only for unified events: a legacy row carries its payload in `payload`.
        let extra = if cells[PAYLOAD].is_some() {
            None
        } else {
            extra_json(frame)
        };
        self.push_cells(seq, cells, extra)
    }

    /// `push` for a caller that has the row's values already (the ingest fast path): one cell
    /// per column of `COLUMNS`, and `extra`. The same values give the same row as `push`.
    pub fn push_cells(
        &mut self,
        seq: u64,
        cells: [Option<Cell<'_>>; COLUMN_COUNT],
        extra: Option<String>,
    ) -> usize {
        if self.open_alive.is_empty() {
            self.open_first_seq = seq;
        }
        debug_assert_eq!(seq, self.open_first_seq + self.open_alive.len() as u64);
        let mut bytes = ARROW_ROW_FIXED;
        for (builder, cell) in self.builders.iter_mut().zip(cells) {
            bytes += builder.push(cell);
        }
        if let Builder::Int(b) = &mut self.builders[COLUMN_COUNT] {
            b.append_value(i64::try_from(seq).unwrap_or(i64::MAX));
        }
        if let Builder::Str(b) = &mut self.builders[COLUMN_COUNT + 1] {
            bytes += extra.as_ref().map_or(0, String::len);
            b.append_option(extra);
        }
        self.open_alive.push(true);
        if self.open_alive.len() == SEGMENT_ROWS {
            self.freeze();
        }
        bytes
    }

    fn freeze(&mut self) {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(schema(), columns).expect("builders match the schema");
        let alive = std::mem::replace(&mut self.open_alive, Vec::with_capacity(SEGMENT_ROWS));
        let live = alive.iter().filter(|a| **a).count();
        let first_seq = self.open_first_seq;
        self.open_first_seq += alive.len() as u64;
        if live > 0 {
            self.frozen.push_back(Frozen {
                first_seq,
                batch: Arc::new(batch),
                alive,
                live,
            });
        }
    }

    /// Mark the row of `seq` evicted; frees its segment once every row in it is.
    pub fn kill(&mut self, seq: u64) {
        if seq >= self.open_first_seq {
            if let Some(a) = self
                .open_alive
                .get_mut((seq - self.open_first_seq) as usize)
            {
                *a = false;
            }
            return;
        }
        let Some(i) = self
            .frozen
            .partition_point(|f| f.first_seq <= seq)
            .checked_sub(1)
        else {
            return;
        };
        let seg = &mut self.frozen[i];
        let Some(a) = seg.alive.get_mut((seq - seg.first_seq) as usize) else {
            return;
        };
        if *a {
            *a = false;
            seg.live -= 1;
            if seg.live == 0 {
                self.frozen.remove(i);
            }
        }
    }

    /// The live rows now, as batches sharing the store's buffers (the open segment is copied).
    pub fn snapshot(&self) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for seg in &self.frozen {
            if seg.live == seg.alive.len() {
                out.push(RecordBatch::clone(&seg.batch)); // the common case: nothing evicted from it
            } else {
                push_live_runs(&mut out, &seg.batch, &seg.alive);
            }
        }
        if self.open_alive.iter().any(|a| *a) {
            let columns = self.builders.iter().map(Builder::finish_cloned).collect();
            let batch = RecordBatch::try_new(schema(), columns).expect("builders match the schema");
            push_live_runs(&mut out, &batch, &self.open_alive);
        }
        out
    }

    /// The live rows by segment, in order. A frozen segment's rows stay the same as long as its
    /// first seq and live count do, so a consumer may cache what it derives from them under that
    /// key; the open segment is a fresh copy.
    pub fn segments(&self) -> Vec<SegmentRows> {
        let mut out = Vec::with_capacity(self.frozen.len() + 1);
        for seg in &self.frozen {
            let rows = if seg.live == seg.alive.len() {
                Rows::Whole(Arc::clone(&seg.batch))
            } else {
                let mut runs = Vec::new();
                push_live_runs(&mut runs, &seg.batch, &seg.alive);
                Rows::Runs(runs)
            };
            out.push(SegmentRows {
                first_seq: seg.first_seq,
                live: seg.live,
                frozen: true,
                rows,
            });
        }
        let live = self.open_alive.iter().filter(|a| **a).count();
        if live > 0 {
            let columns = self.builders.iter().map(Builder::finish_cloned).collect();
            let batch = RecordBatch::try_new(schema(), columns).expect("builders match the schema");
            let mut runs = Vec::new();
            push_live_runs(&mut runs, &batch, &self.open_alive);
            out.push(SegmentRows {
                first_seq: self.open_first_seq,
                live,
                frozen: false,
                rows: Rows::Runs(runs),
            });
        }
        out
    }

    /// The live rows among `seqs` (increasing), as slices: one per run of consecutive seqs.
    /// For index lookups, where the matching rows are few.
    pub fn snapshot_of(&self, seqs: &[u64]) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        let mut open: Option<RecordBatch> = None;
        let mut i = 0;
        while i < seqs.len() {
            let Some((batch_seq, batch, alive)) = self.segment_of(seqs[i], &mut open) else {
                i += 1;
                continue;
            };
            // Extend the run while seqs stay consecutive, live and in this segment.
            let start = (seqs[i] - batch_seq) as usize;
            let mut end = start;
            while end < alive.len()
                && alive[end]
                && i < seqs.len()
                && seqs[i] == batch_seq + end as u64
            {
                end += 1;
                i += 1;
            }
            if end > start {
                out.push(batch.slice(start, end - start));
            } else {
                i += 1; // a dead row
            }
        }
        out
    }

    /// Seqs below this are in frozen segments (or gone): their rows can be read back.
    pub fn frozen_below(&self) -> u64 {
        self.open_first_seq
    }

    /// Whether `seq` is a live row of a frozen segment (one `row_json` rebuilds).
    pub fn holds_live_frozen(&self, seq: u64) -> bool {
        self.live_frozen(seq).is_some()
    }

    /// The frozen segment holding `seq` and its row there, when that row is live.
    fn live_frozen(&self, seq: u64) -> Option<(&Frozen, usize)> {
        let i = self
            .frozen
            .partition_point(|f| f.first_seq <= seq)
            .checked_sub(1)?;
        let seg = &self.frozen[i];
        let row = usize::try_from(seq - seg.first_seq).ok()?;
        seg.alive.get(row)?.then_some((seg, row))
    }

    /// The hot row JSON of a live row in a frozen segment, rebuilt from the columns in the shape
    /// `events.py` writes (compact, `COLUMNS` order). None when `seq` is not frozen and live.
    /// The ring keeps a row's original JSON unless this reproduces it byte for byte.
    pub fn row_json(&self, seq: u64) -> Option<String> {
        let (seg, row) = self.live_frozen(seq)?;
        // Bytes, so strings are escaped straight into the row (serde_json escapes as orjson does).
        let mut out: Vec<u8> = Vec::with_capacity(1024);
        out.push(b'{');
        for (c, &(name, kind)) in COLUMNS.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            let column = seg.batch.column(c);
            if column.is_null(row) {
                out.extend_from_slice(b"null");
                continue;
            }
            match kind {
                Kind::Str => {
                    serde_json::to_writer(&mut out, column.as_string::<i32>().value(row)).ok()?
                }
                Kind::Cat => serde_json::to_writer(&mut out, dictionary_text(column, row)?).ok()?,
                Kind::Json => {
                    out.extend_from_slice(column.as_string::<i32>().value(row).as_bytes())
                }
                Kind::Int => {
                    write!(out, "{}", column.as_primitive::<Int64Type>().value(row)).ok()?
                }
                // Debug keeps a `.0` on whole numbers, as orjson writes Python floats.
                Kind::Real => {
                    write!(out, "{:?}", column.as_primitive::<Float64Type>().value(row)).ok()?
                }
            }
        }
        out.push(b'}');
        String::from_utf8(out).ok()
    }

    /// (first seq, batch, alive flags) of the segment holding `seq`; the open segment is
    /// materialised once into `open` when first needed.
    fn segment_of<'s>(
        &'s self,
        seq: u64,
        open: &'s mut Option<RecordBatch>,
    ) -> Option<(u64, RecordBatch, &'s [bool])> {
        if seq >= self.open_first_seq {
            let batch = open.get_or_insert_with(|| {
                let columns = self.builders.iter().map(Builder::finish_cloned).collect();
                RecordBatch::try_new(schema(), columns).expect("builders match the schema")
            });
            return Some((self.open_first_seq, batch.clone(), &self.open_alive));
        }
        let i = self
            .frozen
            .partition_point(|f| f.first_seq <= seq)
            .checked_sub(1)?;
        let seg = &self.frozen[i];
        Some((seg.first_seq, RecordBatch::clone(&seg.batch), &seg.alive))
    }

    /// Bytes held by the Arrow buffers (frozen segments and open builders' data so far).
    pub fn frozen_bytes(&self) -> usize {
        self.frozen
            .iter()
            .map(|f| f.batch.get_array_memory_size())
            .sum()
    }
}

/// The text of row `row` of a `Cat` column (a dictionary of strings).
fn dictionary_text(column: &ArrayRef, row: usize) -> Option<&str> {
    let keys = column.as_dictionary::<Int32Type>();
    let key = usize::try_from(keys.keys().value(row)).ok()?;
    Some(keys.values().as_string::<i32>().value(key))
}

fn new_builders() -> Vec<Builder> {
    let mut builders: Vec<Builder> = COLUMNS.iter().map(|&(_, k)| Builder::new(k)).collect();
    builders.push(Builder::new(Kind::Int));
    builders.push(Builder::new(Kind::Str));
    builders
}

/// Slices of `batch` covering each run of live rows (one slice when none was evicted).
fn push_live_runs(out: &mut Vec<RecordBatch>, batch: &RecordBatch, alive: &[bool]) {
    let mut start = None;
    for (i, &a) in alive.iter().chain(std::iter::once(&false)).enumerate() {
        match (a, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(batch.slice(s, i - s));
                start = None;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "arrow_tests.rs"]
mod tests;
