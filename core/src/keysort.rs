//! Putting an export into ipfs-cluster's order in bounded memory.
//!
//! ipfs-cluster's `state export` lists its pebble datastore, so its records come in datastore-key
//! order: the upper-case base32 of each CID's bytes, compared as text. That is not the order of
//! CID bytes (base32 digits `2`-`7` sort before `A`), and no backend lists in it (the KV
//! backends list in byte order, Scylla in token order), so an export re-sorts. [`KeySorter`]
//! keeps up to a budget of records in memory, writes each full buffer as a sorted run to an
//! anonymous temporary file, and merges the runs, so memory stays bounded whatever the pinset
//! size, and a pinset that fits the budget never touches the disk.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

use crate::{Error, Result};

/// Records held in memory before a run is written: 64 MiB.
pub const DEFAULT_BUDGET: usize = 64 * 1024 * 1024;

/// Bytes of records read from one run per trip to the blocking pool.
const REFILL_BYTES: usize = 256 * 1024;

/// Collects `(key, record)` pairs and yields the records in key order.
pub struct KeySorter {
    budget: usize,
    buffer: Vec<(String, Vec<u8>)>,
    buffered_bytes: usize,
    runs: Vec<File>,
}

impl KeySorter {
    /// A sorter holding at most about `budget` bytes of keys and records in memory.
    pub fn new(budget: usize) -> Self {
        KeySorter { budget, buffer: Vec::new(), buffered_bytes: 0, runs: Vec::new() }
    }

    /// Adds one record under `key`; keys are unique.
    pub async fn push(&mut self, key: String, record: Vec<u8>) -> Result<()> {
        self.buffered_bytes += key.len() + record.len() + 48;
        self.buffer.push((key, record));
        if self.buffered_bytes > self.budget {
            self.spill().await?;
        }
        Ok(())
    }

    /// How many sorted runs went to disk.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Sorts the buffer and writes it as one run, on the blocking pool.
    async fn spill(&mut self) -> Result<()> {
        let mut records = std::mem::take(&mut self.buffer);
        self.buffered_bytes = 0;
        let run = blocking(move || {
            records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let mut out = BufWriter::new(tempfile::tempfile()?);
            for (key, record) in &records {
                for part in [key.as_bytes(), record.as_slice()] {
                    out.write_all(&(part.len() as u32).to_be_bytes())?;
                    out.write_all(part)?;
                }
            }
            let mut file = out.into_inner().map_err(|e| e.into_error())?;
            file.rewind()?;
            Ok(file)
        })
        .await?;
        self.runs.push(run);
        Ok(())
    }

    /// The records in key order.
    pub async fn finish(mut self) -> Result<Sorted> {
        if self.runs.is_empty() {
            self.buffer.sort_unstable_by(|a, b| b.0.cmp(&a.0));
            return Ok(Sorted { memory: self.buffer, runs: Vec::new(), heap: BinaryHeap::new() });
        }
        if !self.buffer.is_empty() {
            self.spill().await?;
        }
        let mut runs = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::new();
        for (i, file) in self.runs.into_iter().enumerate() {
            let mut run = Run { reader: Some(BufReader::new(file)), pending: VecDeque::new() };
            if let Some((key, record)) = run.next().await? {
                heap.push(Reverse((key, i, record)));
            }
            runs.push(run);
        }
        Ok(Sorted { memory: Vec::new(), runs, heap })
    }
}

/// The records of a [`KeySorter`], in key order.
pub struct Sorted {
    /// In-memory records, in reverse order (popped from the end).
    memory: Vec<(String, Vec<u8>)>,
    runs: Vec<Run>,
    heap: BinaryHeap<Reverse<(String, usize, Vec<u8>)>>,
}

impl Sorted {
    /// The next record, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        if let Some((_, record)) = self.memory.pop() {
            return Ok(Some(record));
        }
        let Some(Reverse((_, run, record))) = self.heap.pop() else { return Ok(None) };
        if let Some((key, next)) = self.runs[run].next().await? {
            self.heap.push(Reverse((key, run, next)));
        }
        Ok(Some(record))
    }
}

/// One sorted run being merged: records read ahead in batches on the blocking pool.
struct Run {
    /// `None` once the run is exhausted.
    reader: Option<BufReader<File>>,
    pending: VecDeque<(String, Vec<u8>)>,
}

impl Run {
    async fn next(&mut self) -> Result<Option<(String, Vec<u8>)>> {
        if self.pending.is_empty() {
            if let Some(mut reader) = self.reader.take() {
                let (batch, more) = blocking(move || {
                    let mut batch = VecDeque::new();
                    let mut bytes = 0;
                    while bytes < REFILL_BYTES {
                        match read_entry(&mut reader)? {
                            Some(entry) => {
                                bytes += entry.0.len() + entry.1.len();
                                batch.push_back(entry);
                            }
                            None => return Ok((batch, None)),
                        }
                    }
                    Ok((batch, Some(reader)))
                })
                .await?;
                self.pending = batch;
                self.reader = more;
            }
        }
        Ok(self.pending.pop_front())
    }
}

fn read_entry(run: &mut BufReader<File>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match run.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut key = vec![0; u32::from_be_bytes(len) as usize];
    run.read_exact(&mut key)?;
    run.read_exact(&mut len)?;
    let mut record = vec![0; u32::from_be_bytes(len) as usize];
    run.read_exact(&mut record)?;
    let key = String::from_utf8(key).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "a run's key is not text")
    })?;
    Ok(Some((key, record)))
}

/// Runs file work on the blocking pool, as every engine call is.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::backend("export sort", e))?
        .map_err(|e| Error::backend("export sort", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sorted(budget: usize, keys: &[&str]) -> (Vec<String>, usize) {
        let mut sorter = KeySorter::new(budget);
        for k in keys {
            sorter.push((*k).to_owned(), k.as_bytes().to_vec()).await.unwrap();
        }
        let runs = sorter.runs();
        let mut out = Vec::new();
        let mut records = sorter.finish().await.unwrap();
        while let Some(r) = records.next().await.unwrap() {
            out.push(String::from_utf8(r).unwrap());
        }
        (out, runs)
    }

    #[tokio::test]
    async fn in_memory_and_spilled_runs_give_the_same_order() {
        let keys: Vec<String> =
            (0..500u32).map(|i| format!("K{:08}", i.wrapping_mul(2_654_435_761))).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut expected = keys.clone();
        expected.sort();
        let (memory, runs) = sorted(DEFAULT_BUDGET, &refs).await;
        assert_eq!((memory.clone(), runs), (expected.clone(), 0));
        let (spilled, runs) = sorted(2_000, &refs).await;
        assert!(runs > 5, "{runs} runs");
        assert_eq!(spilled, expected);
        assert_eq!(sorted(10, &[]).await.0, Vec::<String>::new());
    }
}
