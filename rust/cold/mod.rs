//! Durable-log records -> the cold tier's 175-column Arrow batch, for the archiver's common case.
//!
//! `python/unified_events/cold/convert.py` is the reference: it defines what every event becomes
//! (or why it is a poison event). This is a fast path for what it sees nearly always, a
//! UnifiedEvent whose values already have their column's JSON type, and it must produce exactly
//! the same values. Anything else (a legacy event, a number in a string column, a timestamp not in
//! the server's own `YYYY-MM-DDTHH:MM:SS.mmmZ` form, a value that would make a poison event, a
//! record that does not decode) is not guessed at: the row is reported back and Python converts
//! it. So the fast path never decides that an event is poison, and never drops one.
//!
//! JSON columns holding an object or array take the value's raw text from the frame. That equals
//! Python's `orjson.dumps(value)` because the server writes every frame with `orjson.dumps`
//! (events.py) and orjson's output, parsed and dumped again, is unchanged.

mod record;
mod values;

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    new_null_array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use rustc_hash::FxHashMap;

use record::{parse_frame, split_record, Entries};
use values::{string, value};

/// A column's type, as `unified-event-columns.tsv` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Json,
    Long,
    Int,
    Double,
    Bool,
    Timestamp,
    Date,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "string" => Kind::Str,
            "string(json)" => Kind::Json,
            "long" => Kind::Long,
            "int" => Kind::Int,
            "double" => Kind::Double,
            "boolean" => Kind::Bool,
            "timestamptz(us)" => Kind::Timestamp,
            "date" => Kind::Date,
            _ => return None,
        })
    }
}

pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub required: bool,
}

/// Name of the extra last column: the row's index in the input, so the caller can merge in the
/// rows it converted itself and sort exactly as if all rows had been converted in input order.
pub const ORDER_COLUMN: &str = "_input_order";

pub struct Converted {
    /// The columns in order, plus `ORDER_COLUMN` (int64).
    pub batch: RecordBatch,
    /// Indices of the inputs this path left to the reference converter.
    pub fallback: Vec<usize>,
}

/// One typed value of a row.
enum Val<'a> {
    Str(Cow<'a, str>),
    I64(i64),
    F64(f64),
    Bool(bool),
}

/// A converted row's sort key: event_type and ns as their numbers in the chunk's `Interned`,
/// timestamp, input index. Its index in `Parsed::rows` is its index in the chunk's columns.
struct Row {
    kind: u32,
    ns: u32,
    ts: i64,
    input: usize,
}

/// The distinct texts of a chunk's event types (or namespaces), numbered in order of first
/// appearance: a row keeps a number, and the texts are ranked once per batch (`sorted_rows`).
#[derive(Default)]
struct Interned<'a> {
    ids: FxHashMap<Cow<'a, str>, u32>,
    texts: Vec<Cow<'a, str>>,
}

impl<'a> Interned<'a> {
    /// `text`'s number (a borrowed text, as nearly all are, costs nothing to pass by value).
    fn id(&mut self, text: Cow<'a, str>) -> u32 {
        if let Some(&id) = self.ids.get(&*text) {
            return id;
        }
        let id = self.texts.len() as u32;
        self.texts.push(text.clone());
        self.ids.insert(text, id);
        id
    }
}

/// What one thread made of its chunk of the input: the rows' keys (sorting moves keys, not
/// rows), and per column the values of its converted rows in input order, `None` for a column no
/// row set (most of the 175).
///
/// Why columns, and the text copied out of the records: the rows are built in sorted order,
/// which jumps about the input. Read from the records themselves (~2 KB each, long out of the
/// cache by then), nearly every value was a cache miss: perf put the string copies at ~14% of a
/// conversion. Here a column's values sit together (a few bytes apart for neighbouring rows),
/// and the copy out of the record happens while the record is still in the cache.
struct Parsed<'a> {
    rows: Vec<Row>,
    kinds: Interned<'a>,
    namespaces: Interned<'a>,
    columns: Vec<Option<ColumnBuf>>,
    fallback: Vec<usize>,
}

/// One column of a chunk: a value (or null) per converted row, in input order.
struct ColumnBuf {
    valid: Vec<bool>,
    /// Not text: the value's bits (i64, f64 bits, bool as 0/1).
    words: Vec<u64>,
    /// Text: the end of each row's value in `text` (a null adds nothing).
    ends: Vec<usize>,
    text: String,
    is_text: bool,
}

impl ColumnBuf {
    fn new(kind: Kind) -> Self {
        Self {
            valid: Vec::new(),
            words: Vec::new(),
            ends: Vec::new(),
            text: String::new(),
            is_text: matches!(kind, Kind::Str | Kind::Json),
        }
    }

    /// Nulls up to `rows` rows.
    fn pad(&mut self, rows: usize) {
        let missing = rows.saturating_sub(self.valid.len());
        self.valid.resize(rows.max(self.valid.len()), false);
        match self.is_text {
            true => self
                .ends
                .extend(std::iter::repeat_n(self.text.len(), missing)),
            false => self.words.extend(std::iter::repeat_n(0, missing)),
        }
    }

    /// The value of row `row` (all rows before it get a null if they have nothing yet).
    fn push(&mut self, row: usize, value: &Val) {
        self.pad(row);
        match value {
            Val::Str(text) => {
                self.text.push_str(text);
                self.ends.push(self.text.len());
            }
            Val::I64(v) => self.words.push(*v as u64),
            Val::F64(v) => self.words.push(v.to_bits()),
            Val::Bool(v) => self.words.push(*v as u64),
        }
        self.valid.push(true);
    }

    fn text(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.text[start..self.ends[row]]
    }
}

/// Below this many records per thread, a second thread costs more than it saves.
const MIN_ROWS_PER_THREAD: usize = 4096;

/// Threads `convert` uses by default: one per core (the archiver has the machine to itself
/// while it converts a batch; its Iceberg append waits for the result anyway).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Column indices the derived values need (see convert.py, `convert_row`).
struct Special {
    required: [usize; 4], // id, event_type, event_name, ns
    timestamp: usize,
    day: usize,
    hour: usize,
    ns: usize,
    resource_ns: usize,
    resource_id: usize,
    visibility: usize,
    schema_version: usize,
    ingested_at: usize,
}

pub struct Converter {
    columns: Vec<Column>,
    by_name: FxHashMap<String, usize>,
    special: Special,
}

const US_PER_DAY: i64 = 86_400_000_000;

impl Converter {
    pub fn new(columns: Vec<Column>) -> Result<Self, String> {
        let by_name: FxHashMap<String, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let at = |name: &str| {
            by_name
                .get(name)
                .copied()
                .ok_or(format!("no column {name}"))
        };
        let special = Special {
            required: [at("id")?, at("event_type")?, at("event_name")?, at("ns")?],
            timestamp: at("timestamp")?,
            day: at("day")?,
            hour: at("hour")?,
            ns: at("ns")?,
            resource_ns: at("resource_ns")?,
            resource_id: at("resource_id")?,
            visibility: at("visibility")?,
            schema_version: at("schema_version")?,
            ingested_at: at("ingested_at")?,
        };
        Ok(Self {
            columns,
            by_name,
            special,
        })
    }

    pub fn schema(&self) -> Schema {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, data_type(c.kind), !c.required))
            .collect();
        fields.push(Field::new(ORDER_COLUMN, DataType::Int64, false));
        Schema::new(fields)
    }

    /// Convert log record payloads; `now_us` stands in for a record without an acceptance time.
    /// The rows come out sorted as convert.py sorts them (event_type, ns, timestamp, then input
    /// order), so when nothing falls back the caller need not sort 175 columns again.
    pub fn convert(&self, payloads: &[&[u8]], now_us: i64) -> Result<Converted, ArrowError> {
        self.convert_with_threads(payloads, now_us, default_threads())
    }

    /// `convert` on up to `threads` threads: each parses a contiguous chunk of the records, then
    /// (after one sort of all row keys) each builds a share of the columns. The result does not
    /// depend on `threads`: keys end in the input index, so the sorted order is the serial one.
    pub fn convert_with_threads(
        &self,
        payloads: &[&[u8]],
        now_us: i64,
        threads: usize,
    ) -> Result<Converted, ArrowError> {
        let n = payloads.len();
        let threads = threads.clamp(1, n.div_ceil(MIN_ROWS_PER_THREAD).max(1));
        let chunk_len = n.div_ceil(threads).max(1);
        let parsed: Vec<Parsed> = if threads == 1 {
            vec![self.parse_chunk(payloads, 0, now_us)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = payloads
                    .chunks(chunk_len)
                    .enumerate()
                    .map(|(k, chunk)| {
                        scope.spawn(move || self.parse_chunk(chunk, k * chunk_len, now_us))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a converter thread panicked"))
                    .collect()
            })
        };
        let rows = sorted_rows(&parsed);
        let filled: Vec<bool> = (0..self.columns.len())
            .map(|c| parsed.iter().any(|p| p.columns[c].is_some()))
            .collect();
        // Columns nobody filled (most of the 175) become all-null arrays directly; the rest are
        // shared out in contiguous groups of about equal size, one group per thread.
        let active: Vec<usize> = (0..self.columns.len()).filter(|&c| filled[c]).collect();
        let group_len = active.len().div_ceil(threads).max(1);
        let built: Vec<Vec<ArrayRef>> = if threads == 1 {
            vec![self.build_columns(&active, &rows, &parsed)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = active
                    .chunks(group_len)
                    .map(|group| {
                        let (rows, parsed) = (&rows, &parsed);
                        scope.spawn(move || self.build_columns(group, rows, parsed))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a converter thread panicked"))
                    .collect()
            })
        };
        let mut built = built.into_iter().flatten();
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .zip(&filled)
            .map(|(column, &filled)| match filled {
                true => built.next().expect("one array per filled column"),
                false => new_null_array(&data_type(column.kind), rows.len()),
            })
            .collect();
        let order: Int64Array = rows.iter().map(|r| Some(r.input as i64)).collect();
        arrays.push(Arc::new(order));
        let fallback = parsed.iter().flat_map(|p| &p.fallback).copied().collect();
        let batch = RecordBatch::try_new(Arc::new(self.schema()), arrays)?;
        Ok(Converted { batch, fallback })
    }

    /// Parse one chunk of the input (`first`: the input index of its first record).
    fn parse_chunk<'a>(&self, payloads: &[&'a [u8]], first: usize, now_us: i64) -> Parsed<'a> {
        let width = self.columns.len();
        let s = &self.special;
        let mut parsed = Parsed {
            rows: Vec::with_capacity(payloads.len()),
            kinds: Interned::default(),
            namespaces: Interned::default(),
            columns: (0..width).map(|_| None).collect(),
            fallback: Vec::new(),
        };
        let mut row = RowBuf::new(width);
        let mut entries = Entries::new();
        for (offset, payload) in payloads.iter().enumerate() {
            let i = first + offset;
            if self
                .convert_row(payload, now_us, &mut row, &mut entries)
                .is_none()
            {
                row.clear();
                parsed.fallback.push(i);
                continue;
            }
            let (Some(Val::Str(kind)), Some(Val::Str(ns)), Some(Val::I64(ts))) = (
                &row.vals[s.required[1]],
                &row.vals[s.ns],
                &row.vals[s.timestamp],
            ) else {
                unreachable!("convert_row sets event_type, ns and timestamp");
            };
            let row_key = Row {
                kind: parsed.kinds.id(kind.clone()),
                ns: parsed.namespaces.id(ns.clone()),
                ts: *ts,
                input: i,
            };
            row.drain_into(parsed.rows.len(), &mut parsed.columns, &self.columns);
            parsed.rows.push(row_key);
        }
        for column in parsed.columns.iter_mut().flatten() {
            column.pad(parsed.rows.len());
        }
        parsed
    }

    /// The arrays of `columns` (each filled in some chunk), rows in the order of `rows`.
    fn build_columns(
        &self,
        columns: &[usize],
        rows: &[Sorted],
        parsed: &[Parsed],
    ) -> Vec<ArrayRef> {
        columns
            .iter()
            .map(|&c| self.build_column(c, rows, parsed))
            .collect()
    }

    /// One column's array, rows in the order of `rows`.
    fn build_column(&self, c: usize, rows: &[Sorted], parsed: &[Parsed]) -> ArrayRef {
        let chunks: Vec<Option<&ColumnBuf>> =
            parsed.iter().map(|p| p.columns[c].as_ref()).collect();
        // The row's column and index in it, None for a null.
        let at = |r: &Sorted| {
            chunks[r.chunk]
                .filter(|b| b.valid[r.local])
                .map(|b| (b, r.local))
        };
        let words = || rows.iter().map(|r| at(r).map(|(b, i)| b.words[i]));
        // Values were produced by `value()` for this column's kind: the words hold that type.
        match self.columns[c].kind {
            Kind::Str | Kind::Json => {
                let text_bytes = chunks.iter().flatten().map(|b| b.text.len()).sum();
                let mut builder = StringBuilder::with_capacity(rows.len(), text_bytes);
                for r in rows {
                    match at(r) {
                        Some((b, i)) => builder.append_value(b.text(i)),
                        None => builder.append_null(),
                    }
                }
                Arc::new(builder.finish())
            }
            Kind::Long => Arc::new(Int64Array::from_iter(words().map(|w| w.map(|w| w as i64)))),
            Kind::Int => Arc::new(Int32Array::from_iter(
                words().map(|w| w.map(|w| w as i64 as i32)),
            )),
            Kind::Double => Arc::new(Float64Array::from_iter(
                words().map(|w| w.map(f64::from_bits)),
            )),
            Kind::Bool => Arc::new(BooleanArray::from_iter(words().map(|w| w.map(|w| w != 0)))),
            Kind::Timestamp => Arc::new(
                TimestampMicrosecondArray::from_iter(words().map(|w| w.map(|w| w as i64)))
                    .with_timezone("UTC"),
            ),
            Kind::Date => Arc::new(Date32Array::from_iter(
                words().map(|w| w.map(|w| w as i64 as i32)),
            )),
        }
    }

    /// Fill `row` with one record's typed values, or None: let the reference converter do it.
    fn convert_row<'a>(
        &self,
        payload: &'a [u8],
        now_us: i64,
        row: &mut RowBuf<'a>,
        entries: &mut Entries<'a>,
    ) -> Option<()> {
        let (accepted_at_ms, frame) = split_record(payload)?;
        let frame = parse_frame(std::str::from_utf8(frame).ok()?, entries)?;
        let (frame_id, frame_type) = (string(frame.id?)?, string(frame.kind?)?);
        if !frame.payload {
            return None;
        }
        let s = &self.special;
        // How often each of id, event_type, event_name and ns occurs, null or not: once each, or
        // this is not the UnifiedEvent convert.py's event_columns would see (then Python decides).
        let mut required_seen = [0u8; 4];
        for &(key, raw) in entries.iter() {
            let Some(&index) = self.by_name.get(key) else {
                continue;
            };
            if let Some(k) = s.required.iter().position(|&r| r == index) {
                required_seen[k] += 1;
            }
            if raw.get() == "null" {
                continue;
            }
            if row.vals[index].is_some() {
                return None; // a duplicate key
            }
            row.set(index, value(self.columns[index].kind, raw)?);
        }
        if required_seen != [1; 4] {
            return None;
        }
        for &index in &s.required {
            match &row.vals[index] {
                Some(Val::Str(text)) if !text.is_empty() => {}
                _ => return None, // poison: Python says why
            }
        }
        // The test convert.py's event_columns uses to tell a UnifiedEvent from a legacy event.
        match (&row.vals[s.required[0]], &row.vals[s.required[1]]) {
            (Some(Val::Str(id)), Some(Val::Str(kind)))
                if *id == frame_id && *kind == frame_type => {}
            _ => return None,
        }
        let ingested_us = if accepted_at_ms == 0 {
            now_us
        } else {
            accepted_at_ms.checked_mul(1000)?
        };
        let ts = match row.vals[s.timestamp] {
            Some(Val::I64(us)) => us,
            _ => {
                row.set(s.timestamp, Val::I64(ingested_us));
                ingested_us
            }
        };
        row.set(s.day, Val::I64(ts.div_euclid(US_PER_DAY)));
        row.set(s.hour, Val::I64(ts.rem_euclid(US_PER_DAY) / 3_600_000_000));
        let ns = match &row.vals[s.ns] {
            Some(Val::Str(ns)) => ns.clone(),
            _ => return None,
        };
        if row.vals[s.resource_ns].is_none() {
            row.set(s.resource_ns, Val::Str(ns.clone()));
        }
        if let Some(Val::Str(rid)) = &row.vals[s.resource_id] {
            if !rid.contains('/') {
                let qualified = Val::Str(Cow::Owned(format!("{ns}/{rid}")));
                row.set(s.resource_id, qualified);
            }
        }
        if row.vals[s.visibility].is_none() {
            row.set(s.visibility, Val::Str(Cow::Borrowed("user")));
        }
        if row.vals[s.schema_version].is_none() {
            row.set(s.schema_version, Val::I64(1));
        }
        row.set(s.ingested_at, Val::I64(ingested_us));
        Some(())
    }
}

/// All rows, sorted by key. A batch has few distinct event types and namespaces, so they are
/// ranked once and the sort compares integers (comparing the strings cost ~10% of a conversion).
fn sorted_rows(parsed: &[Parsed]) -> Vec<Sorted> {
    let kinds = ranks(parsed.iter().map(|p| &p.kinds.texts[..]));
    let namespaces = ranks(parsed.iter().map(|p| &p.namespaces.texts[..]));
    let mut keys: Vec<(u32, u32, i64, usize, usize, usize)> = parsed
        .iter()
        .enumerate()
        .flat_map(|(chunk, p)| {
            let (kinds, namespaces) = (&kinds[chunk], &namespaces[chunk]);
            p.rows.iter().enumerate().map(move |(local, r)| {
                let (kind, ns) = (kinds[r.kind as usize], namespaces[r.ns as usize]);
                (kind, ns, r.ts, r.input, chunk, local)
            })
        })
        .collect();
    keys.sort_unstable(); // unique: the input index is
    keys.into_iter()
        .map(|k| Sorted {
            input: k.3,
            chunk: k.4,
            local: k.5,
        })
        .collect()
}

/// Where a row is, in sorted order: its input index, its chunk and its index in the chunk's
/// columns. Copied out of `Row` so building a column walks one small array, not the rows
/// themselves (reading `Row::chunk` in sorted order was ~30% of building the columns).
struct Sorted {
    input: usize,
    chunk: usize,
    local: usize,
}

/// Per chunk, the rank of each of its texts among all the chunks' distinct texts (in byte order,
/// as `str` compares).
fn ranks<'p>(chunks: impl Iterator<Item = &'p [Cow<'p, str>]> + Clone) -> Vec<Vec<u32>> {
    let mut all: Vec<&str> = chunks.clone().flatten().map(|t| &**t).collect();
    all.sort_unstable();
    all.dedup();
    let rank = |t: &Cow<str>| all.binary_search(&&**t).expect("every text is in all") as u32;
    chunks
        .map(|texts| texts.iter().map(rank).collect())
        .collect()
}

/// One row being converted: a value slot per column, and which slots are set, so that moving
/// the ~30 set values out (or clearing them after a fallback) does not touch all 175 slots.
struct RowBuf<'a> {
    vals: Vec<Option<Val<'a>>>,
    touched: Vec<usize>,
}

impl<'a> RowBuf<'a> {
    fn new(width: usize) -> Self {
        Self {
            vals: (0..width).map(|_| None).collect(),
            touched: Vec::with_capacity(64),
        }
    }

    fn set(&mut self, index: usize, value: Val<'a>) {
        if self.vals[index].replace(value).is_none() {
            self.touched.push(index);
        }
    }

    /// Move the set values into row `row` of the chunk's columns, leaving every slot empty.
    fn drain_into(&mut self, row: usize, columns: &mut [Option<ColumnBuf>], kinds: &[Column]) {
        for &c in &self.touched {
            if let Some(value) = self.vals[c].take() {
                columns[c]
                    .get_or_insert_with(|| ColumnBuf::new(kinds[c].kind))
                    .push(row, &value);
            }
        }
        self.touched.clear();
    }

    fn clear(&mut self) {
        for &c in &self.touched {
            self.vals[c] = None;
        }
        self.touched.clear();
    }
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Str | Kind::Json => DataType::Utf8,
        Kind::Long => DataType::Int64,
        Kind::Int => DataType::Int32,
        Kind::Double => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::Date => DataType::Date32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_ranked_across_chunks() {
        let chunks: [Vec<Cow<str>>; 2] = [
            vec!["log".into(), "trace".into()],
            vec!["trace".into(), "metric".into(), "Log".into()],
        ];
        let ranks = ranks(chunks.iter().map(|c| &c[..]));
        assert_eq!(ranks, [vec![1, 3], vec![3, 2, 0]]); // "Log" < "log" < "metric" < "trace"
        let mut interned = Interned::default();
        let ids: Vec<u32> = ["b", "a", "b"].map(|t| interned.id(t.into())).into();
        assert_eq!((ids, interned.texts.len()), (vec![0, 1, 0], 2));
    }

    #[test]
    fn column_buffers_pad_with_nulls() {
        let mut text = ColumnBuf::new(Kind::Str);
        text.push(1, &Val::Str(Cow::Borrowed("é")));
        text.push(2, &Val::Str(Cow::Owned(String::new())));
        text.pad(4);
        assert_eq!(text.valid, [false, true, true, false]);
        assert_eq!((text.text(1), text.text(2), text.text(3)), ("é", "", ""));
        let mut numbers = ColumnBuf::new(Kind::Double);
        numbers.push(2, &Val::F64(-0.5));
        numbers.pad(2); // never shortens
        assert_eq!(numbers.valid, [false, false, true]);
        assert_eq!(f64::from_bits(numbers.words[2]), -0.5);
    }
}
