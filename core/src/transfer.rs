//! Streaming export and import of a whole pinset, in ipfs-cluster's formats.
//!
//! [`export_from`] walks [`PinState::list`] and writes one record per pin: NDJSON exactly as
//! `ipfs-cluster-service state export` writes it, Go's protobuf bytes behind a uvarint length
//! prefix (as Go's `protodelim`), or the msgpack snapshot of ipfs-cluster's `state/dsstate`
//! (`Marshal`/`Unmarshal`). An export is what ipfs-cluster v1.1.6 writes for the same pinset,
//! byte for byte: each pin as ipfs-cluster holds it ([`protobuf::go_view`]: whole seconds, the
//! mode derived from the depth, no user allocations), in ipfs-cluster's datastore-key order
//! ([`crate::keysort`], bounded memory).
//!
//! [`import_into`] reads one record at a time and commits them in batches. A CID seen twice in
//! the current batch flushes the batch first, so the later record wins (as repeated `Add`s do
//! in ipfs-cluster). A malformed record stops the import with [`Error::InvalidInput`] naming its
//! position (`import line 7`, `import record 3 at byte offset 1234`) and how many pins earlier
//! batches committed; the batch it belongs to is not committed. A storage failure of a batch
//! (a full disk, a backend error, an unreachable backend) is [`Error::Interrupted`] around it,
//! naming the pins, batches and last receipt committed before it, so the import can be resumed. A line or frame is capped at
//! [`MAX_RECORD_LEN`] bytes, and nothing is allocated from an untrusted length before the check.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use futures::StreamExt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::batch::{Batch, Receipt};
use crate::codec::{gojson, msgpack, ndjson, protobuf};
use crate::keysort::{self, KeySorter};
use crate::pin::Pin;
use crate::version::Precondition;
use crate::{Error, PinState, Result};

/// The largest NDJSON line or protobuf frame an import accepts: 16 MiB.
pub const MAX_RECORD_LEN: usize = protobuf::MAX_FRAME_LEN;

/// The format of an export or import stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TransferFormat {
    /// One JSON `api.Pin` per line, as `ipfs-cluster-service state export` writes it.
    #[default]
    Ndjson,
    /// Each pin as ipfs-cluster's protobuf bytes behind a uvarint length prefix.
    Protobuf,
    /// ipfs-cluster's `state/dsstate` snapshot: msgpack `{"k": key, "v": protobuf}` entries.
    Msgpack,
}

impl TransferFormat {
    /// The format's name: `"ndjson"`, `"protobuf"` or `"msgpack"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferFormat::Ndjson => "ndjson",
            TransferFormat::Protobuf => "protobuf",
            TransferFormat::Msgpack => "msgpack",
        }
    }
}

impl fmt::Display for TransferFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransferFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ndjson" => Ok(TransferFormat::Ndjson),
            "protobuf" => Ok(TransferFormat::Protobuf),
            "msgpack" => Ok(TransferFormat::Msgpack),
            other => Err(Error::invalid(
                "transfer format",
                format!("{other:?} is not \"ndjson\", \"protobuf\" or \"msgpack\""),
            )),
        }
    }
}

/// How an import reads and commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// The stream's format.
    pub format: TransferFormat,
    /// Pins per committed batch (at least 1; lowered to the backend's `max_batch_ops`).
    pub batch_size: usize,
    /// The precondition of every put (`Absent` makes the import insert-only).
    pub precondition: Precondition,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            format: TransferFormat::Ndjson,
            batch_size: 1000,
            precondition: Precondition::Any,
        }
    }
}

/// What an export or import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferSummary {
    /// Pins written (export) or committed (import).
    pub pins: u64,
    /// Bytes written (export) or read (import).
    pub bytes: u64,
    /// Batches committed (0 for an export).
    pub batches: u64,
    /// The receipt of the last committed batch, if any.
    pub last_receipt: Option<Receipt>,
}

/// Receives progress of an export (after each pin) or an import (after each committed batch).
pub trait Progress: Send + Sync {
    /// `pins` more pins and `bytes` more bytes are done.
    fn advance(&self, pins: u64, bytes: u64);
}

/// A [`Progress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _pins: u64, _bytes: u64) {}
}

/// Writes every pin of `state` to `writer` in `format`, then flushes the writer: the bytes
/// ipfs-cluster's export of the same pinset has, in its order (see the module doc). Memory
/// stays bounded: records beyond [`keysort::DEFAULT_BUDGET`] are sorted through temporary files.
pub async fn export_from<S: PinState + ?Sized>(
    state: &S,
    format: TransferFormat,
    writer: &mut (dyn AsyncWrite + Unpin + Send),
    progress: &dyn Progress,
) -> Result<TransferSummary> {
    let mut sorter = KeySorter::new(keysort::DEFAULT_BUDGET);
    let mut pins = state.list(None);
    while let Some(entry) = pins.next().await {
        let pin = entry?.pin;
        let mut record = Vec::with_capacity(512);
        match format {
            TransferFormat::Ndjson => {
                record.extend_from_slice(
                    ndjson::encode_pin_json(&protobuf::go_view(&pin)?).as_bytes(),
                );
                record.push(b'\n');
            }
            TransferFormat::Protobuf => protobuf::write_delimited(&mut record, &pin),
            TransferFormat::Msgpack => msgpack::write_entry(&mut record, &pin),
        }
        sorter.push(msgpack::dsstate_key(&pin.cid), record).await?;
    }
    drop(pins);
    let mut summary = TransferSummary::default();
    let mut records = sorter.finish().await?;
    while let Some(record) = records.next().await? {
        writer.write_all(&record).await.map_err(io_error)?;
        summary.pins += 1;
        summary.bytes += record.len() as u64;
        progress.advance(1, record.len() as u64);
    }
    writer.flush().await.map_err(io_error)?;
    Ok(summary)
}

/// Reads pins from `reader` and commits them to `state` in batches (see the module doc).
pub async fn import_into<S: PinState + ?Sized>(
    state: &S,
    reader: &mut (dyn AsyncBufRead + Unpin + Send),
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<TransferSummary> {
    if options.batch_size == 0 {
        return Err(Error::invalid("import options", "batch_size must be at least 1"));
    }
    let batch_size = match state.pin_capabilities().max_batch_ops {
        Some(max) => options.batch_size.min(max.max(1)),
        None => options.batch_size,
    };
    let mut importer = Importer {
        state,
        precondition: &options.precondition,
        progress,
        batch_size,
        pending: Vec::new(),
        pending_cids: HashSet::new(),
        summary: TransferSummary::default(),
        bytes_read: 0,
        bytes_reported: 0,
    };
    let mut records = RecordReader {
        reader,
        format: options.format,
        line: Vec::new(),
        line_pos: 0,
        records: 0,
        lines: 0,
    };
    loop {
        let record = records.next(&mut importer.bytes_read).await;
        let pin = match record {
            Ok(Some(pin)) => pin,
            Ok(None) => break,
            Err(RecordError::Io(e)) => return Err(e),
            Err(RecordError::Invalid { position, reason }) => {
                return Err(Error::invalid(
                    position,
                    format!(
                        "{reason}; {} pins were committed by earlier batches, this record's batch \
                         was not committed",
                        importer.summary.pins
                    ),
                ));
            }
        };
        importer.add(pin).await?;
    }
    importer.flush().await?;
    let unreported = importer.bytes_read - importer.bytes_reported;
    if unreported > 0 {
        progress.advance(0, unreported);
    }
    importer.summary.bytes = importer.bytes_read;
    Ok(importer.summary)
}

/// Groups pins into batches and commits them.
struct Importer<'a, S: PinState + ?Sized> {
    state: &'a S,
    precondition: &'a Precondition,
    progress: &'a dyn Progress,
    batch_size: usize,
    pending: Vec<Pin>,
    pending_cids: HashSet<cid::Cid>,
    summary: TransferSummary,
    bytes_read: u64,
    bytes_reported: u64,
}

impl<S: PinState + ?Sized> Importer<'_, S> {
    async fn add(&mut self, pin: Pin) -> Result<()> {
        if self.pending_cids.contains(&pin.cid) {
            self.flush().await?;
        }
        self.pending_cids.insert(pin.cid);
        self.pending.push(pin);
        if self.pending.len() >= self.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending_cids.clear();
        let ops = std::mem::take(&mut self.pending);
        let count = ops.len() as u64;
        let batch = ops
            .into_iter()
            .fold(Batch::new(), |batch, pin| batch.put(pin, self.precondition.clone()));
        let receipt = self.state.commit(batch).await.map_err(|e| self.interrupted(e, count))?;
        self.summary.pins += count;
        self.summary.batches += 1;
        self.summary.last_receipt = Some(receipt);
        self.progress.advance(count, self.bytes_read - self.bytes_reported);
        self.bytes_reported = self.bytes_read;
        Ok(())
    }
}

impl<S: PinState + ?Sized> Importer<'_, S> {
    /// A storage failure (the disk is full, the backend failed or is unreachable) of the batch
    /// of `count` pins, as [`Error::Interrupted`] saying what was committed before it, so the
    /// user can resume. Refusals that are the import's own outcome (a failed precondition,
    /// invalid input) are returned as they are.
    fn interrupted(&self, e: Error, count: u64) -> Error {
        if !matches!(e, Error::Path { .. } | Error::Backend { .. } | Error::Unavailable { .. }) {
            return e;
        }
        let last = match &self.summary.last_receipt {
            Some(receipt) => format!("last receipt sequence {}", receipt.sequence),
            None => "no receipt".to_owned(),
        };
        let this_batch = match &e {
            Error::Unavailable { outcome_unknown: true, .. } => "may or may not have been",
            _ => "was not",
        };
        Error::Interrupted {
            progress: format!(
                "{} pins committed in {} batches, {last} (input bytes read: {}); the failing \
                 batch of {count} pins {this_batch} committed",
                self.summary.pins, self.summary.batches, self.bytes_read
            ),
            source: Box::new(e),
        }
    }
}

/// Why a record could not be read.
enum RecordError {
    /// The reader failed.
    Io(Error),
    /// The record is malformed; `position` names it.
    Invalid { position: String, reason: String },
}

/// Reads one record at a time in the import's format.
struct RecordReader<'a> {
    reader: &'a mut (dyn AsyncBufRead + Unpin + Send),
    format: TransferFormat,
    line: Vec<u8>,
    /// Where the unread bytes of `line` start (NDJSON).
    line_pos: usize,
    records: u64,
    /// Newlines consumed so far (NDJSON positions).
    lines: u64,
}

impl RecordReader<'_> {
    /// The next pin, `None` at the end; `offset` counts the bytes consumed.
    async fn next(&mut self, offset: &mut u64) -> Result<Option<Pin>, RecordError> {
        match self.format {
            TransferFormat::Ndjson => self.next_value(offset).await,
            TransferFormat::Protobuf => self.next_frame(offset).await,
            TransferFormat::Msgpack => self.next_entry(offset).await,
        }
    }

    /// One `{"k", "v"}` msgpack map of a dsstate snapshot, read as ugorji's decoder fills
    /// dsstate's `serialEntry`: other keys are skipped (when their values are scalars; a
    /// nested value there is refused), a repeated key's last value wins, and a missing `v` is
    /// an empty record.
    async fn next_entry(&mut self, offset: &mut u64) -> Result<Option<Pin>, RecordError> {
        let start = *offset;
        self.records += 1;
        let position = format!("import entry {} at byte offset {start}", self.records);
        let invalid = |reason: String| RecordError::Invalid { position: position.clone(), reason };
        let Some(marker) = self.read_byte(offset).await? else { return Ok(None) };
        let entries = match msgpack::item(marker) {
            msgpack::Item::Map(n) => n,
            msgpack::Item::MapLen(width) => self.read_len(width, offset, &invalid).await?,
            _ => {
                return Err(invalid(format!("expected a msgpack map, found marker 0x{marker:02x}")))
            }
        };
        let (mut key, mut value) = (None, None);
        for _ in 0..entries {
            let name = self.read_bytes(offset, &invalid).await?;
            match name.as_slice() {
                b"k" => key = Some(self.read_bytes(offset, &invalid).await?),
                b"v" => value = Some(self.read_bytes(offset, &invalid).await?),
                _ => self.skip_scalar(offset, &invalid).await?,
            }
        }
        let Some(key) = key else {
            return Err(invalid(
                "the entry has no \"k\": ipfs-cluster would store it under an empty key that its \
                 own listing skips"
                    .into(),
            ));
        };
        msgpack::decode_entry(&key, &value.unwrap_or_default())
            .and_then(|pin| pin.validate().map(|()| pin))
            .map(Some)
            .map_err(|e| invalid(e.to_string()))
    }

    /// Skips one scalar msgpack value (nil, bool, integer, float, str, bin).
    async fn skip_scalar(
        &mut self,
        offset: &mut u64,
        invalid: &(dyn Fn(String) -> RecordError + Sync),
    ) -> Result<(), RecordError> {
        let Some(marker) = self.read_byte(offset).await? else {
            return Err(invalid("the input ends inside an entry".into()));
        };
        let width = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xca | 0xce | 0xd2 => 4,
            0xcb | 0xcf | 0xd3 => 8,
            _ => match msgpack::item(marker) {
                msgpack::Item::Bytes(n) => n as usize,
                msgpack::Item::BytesLen(w) => self.read_len(w, offset, invalid).await? as usize,
                _ => {
                    return Err(invalid(format!(
                        "an unknown field of the entry holds a nested msgpack value (marker \
                         0x{marker:02x}); only scalars are skipped"
                    )))
                }
            },
        };
        if width > MAX_RECORD_LEN {
            return Err(invalid(format!(
                "a field of {width} bytes exceeds the {MAX_RECORD_LEN}-byte limit"
            )));
        }
        let skipped =
            tokio::io::copy(&mut (&mut *self.reader).take(width as u64), &mut tokio::io::sink())
                .await
                .map_err(|e| RecordError::Io(io_error(e)))?;
        *offset += skipped;
        if skipped < width as u64 {
            return Err(invalid(format!(
                "truncated: a field announces {width} bytes, {skipped} remain"
            )));
        }
        Ok(())
    }

    /// One byte, or `None` at the end of the input.
    async fn read_byte(&mut self, offset: &mut u64) -> Result<Option<u8>, RecordError> {
        let mut byte = [0u8; 1];
        let n = self.reader.read(&mut byte).await.map_err(|e| RecordError::Io(io_error(e)))?;
        if n == 0 {
            return Ok(None);
        }
        *offset += 1;
        Ok(Some(byte[0]))
    }

    /// A big-endian length of `width` bytes.
    async fn read_len(
        &mut self,
        width: u8,
        offset: &mut u64,
        invalid: &(dyn Fn(String) -> RecordError + Sync),
    ) -> Result<u32, RecordError> {
        let mut len = 0u32;
        for _ in 0..width {
            let Some(b) = self.read_byte(offset).await? else {
                return Err(invalid("the input ends inside a length".into()));
            };
            len = (len << 8) | u32::from(b);
        }
        Ok(len)
    }

    /// A msgpack str or bin, at most [`MAX_RECORD_LEN`] bytes.
    async fn read_bytes(
        &mut self,
        offset: &mut u64,
        invalid: &(dyn Fn(String) -> RecordError + Sync),
    ) -> Result<Vec<u8>, RecordError> {
        let Some(marker) = self.read_byte(offset).await? else {
            return Err(invalid("the input ends inside an entry".into()));
        };
        let len = match msgpack::item(marker) {
            msgpack::Item::Bytes(n) => n,
            msgpack::Item::BytesLen(width) => self.read_len(width, offset, invalid).await?,
            _ => {
                return Err(invalid(format!(
                    "expected a msgpack str or bin, found marker 0x{marker:02x}"
                )))
            }
        };
        let len = len as usize;
        if len > MAX_RECORD_LEN {
            return Err(invalid(format!(
                "a field of {len} bytes exceeds the {MAX_RECORD_LEN}-byte limit"
            )));
        }
        let mut field = Vec::new();
        let read = (&mut *self.reader)
            .take(len as u64)
            .read_to_end(&mut field)
            .await
            .map_err(|e| RecordError::Io(io_error(e)))?;
        *offset += read as u64;
        if read < len {
            return Err(invalid(format!(
                "truncated: a field announces {len} bytes, {read} remain"
            )));
        }
        Ok(field)
    }

    /// The next JSON value of the stream, read as Go's `json.Decoder` in `state import` reads
    /// it: values separated by any whitespace or none, spanning lines if they do. `line` holds
    /// bytes read ahead; the unread ones start at `line_pos`.
    async fn next_value(&mut self, offset: &mut u64) -> Result<Option<Pin>, RecordError> {
        let mut eof = false;
        loop {
            let pending = &self.line[self.line_pos..];
            match gojson::next_value(pending, eof) {
                gojson::Scan::End => {
                    *offset += pending.len() as u64;
                    self.line.clear();
                    self.line_pos = 0;
                    return Ok(None);
                }
                gojson::Scan::Value { start, end } => {
                    self.records += 1;
                    let position = self.json_position(start, self.records);
                    let value = gojson::parse(&pending[start..end]);
                    self.lines += pending[..end].iter().filter(|&&b| b == b'\n').count() as u64;
                    self.line_pos += end;
                    *offset += end as u64;
                    let pin = ndjson::decode_value(value)
                        .and_then(|pin| pin.validate().map(|()| pin))
                        .map_err(|e| RecordError::Invalid { position, reason: e.to_string() })?;
                    return Ok(Some(pin));
                }
                gojson::Scan::Invalid(why) => {
                    return Err(RecordError::Invalid {
                        position: self.json_position(self.value_start(), self.records + 1),
                        reason: format!("does not parse: {why}"),
                    });
                }
                gojson::Scan::Incomplete if eof => {
                    return Err(RecordError::Invalid {
                        position: self.json_position(self.value_start(), self.records + 1),
                        reason: "does not parse: unexpected end of JSON input".into(),
                    });
                }
                gojson::Scan::Incomplete => {
                    let pending = pending.len();
                    if pending > MAX_RECORD_LEN {
                        return Err(RecordError::Invalid {
                            position: self.json_position(self.value_start(), self.records + 1),
                            reason: format!("a JSON value exceeds the {MAX_RECORD_LEN}-byte limit"),
                        });
                    }
                    // Drop what was read, then read at least as much again as is pending before
                    // scanning anew, so a long value is scanned a logarithmic number of times.
                    self.line.drain(..self.line_pos);
                    self.line_pos = 0;
                    let want = pending.max(64 * 1024).min(MAX_RECORD_LEN + 1 - pending);
                    let mut read = 0;
                    while read < want {
                        let chunk = self
                            .reader
                            .fill_buf()
                            .await
                            .map_err(|e| RecordError::Io(io_error(e)))?;
                        if chunk.is_empty() {
                            eof = true;
                            break;
                        }
                        let n = chunk.len();
                        self.line.extend_from_slice(chunk);
                        self.reader.consume(n);
                        read += n;
                    }
                }
            }
        }
    }

    /// `import line L (value N)`: where value `number`, starting `skip` bytes into the unread
    /// input, is.
    fn json_position(&self, skip: usize, number: u64) -> String {
        let pending = &self.line[self.line_pos..];
        let ahead = pending[..skip.min(pending.len())].iter().filter(|&&b| b == b'\n').count();
        format!("import line {} (value {number})", self.lines + ahead as u64 + 1)
    }

    /// Where the next value starts in the unread input: after the whitespace before it.
    fn value_start(&self) -> usize {
        let pending = &self.line[self.line_pos..];
        pending
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(pending.len())
    }

    async fn next_frame(&mut self, offset: &mut u64) -> Result<Option<Pin>, RecordError> {
        let start = *offset;
        self.records += 1;
        let position = format!("import record {} at byte offset {start}", self.records);
        let invalid = |reason: String| RecordError::Invalid { position: position.clone(), reason };

        let mut len: u64 = 0;
        let mut prefix_bytes = 0u32;
        loop {
            let mut byte = [0u8; 1];
            let n = self.reader.read(&mut byte).await.map_err(|e| RecordError::Io(io_error(e)))?;
            if n == 0 {
                if prefix_bytes == 0 {
                    return Ok(None);
                }
                return Err(invalid("the input ends inside a length prefix".into()));
            }
            *offset += 1;
            if prefix_bytes == 9 && byte[0] > 1 {
                return Err(invalid("the length prefix overflows 64 bits".into()));
            }
            len |= u64::from(byte[0] & 0x7f) << (7 * prefix_bytes);
            prefix_bytes += 1;
            if byte[0] & 0x80 == 0 {
                break;
            }
        }
        let len = protobuf::check_frame_len(len).map_err(|e| invalid(e.to_string()))?;
        let mut frame = Vec::new();
        let read = (&mut *self.reader)
            .take(len as u64)
            .read_to_end(&mut frame)
            .await
            .map_err(|e| RecordError::Io(io_error(e)))?;
        *offset += read as u64;
        if read < len {
            return Err(invalid(format!(
                "truncated: the prefix announces {len} bytes, {read} remain"
            )));
        }
        protobuf::decode_pin(&frame)
            .and_then(|pin| pin.validate().map(|()| pin))
            .map(Some)
            .map_err(|e| invalid(e.to_string()))
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::backend("transfer", e)
}
