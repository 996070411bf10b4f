//! The export directory's layout (what `tinfoil export-audit-log` writes
//! and `tinfoil verify-audit-log` reads):
//!
//! ```text
//! DIR/
//!   manifest.json                 {"format": "tinfoil-audit-export-v1", "origin": ...,
//!                                  "firstSequence": F, "lastSequence": L,
//!                                  "recordFiles": [...], "checkpointFiles": [...]}
//!   audit-public-key.txt          the log's note verifier key (one line)
//!   records/records-<first>-<last>.jsonl
//!                                 one record per line, in sequence order,
//!                                 at most 10,000 per file (numbers zero-padded to 20 digits)
//!   checkpoints/checkpoint-<size>.txt
//!                                 one signed note per checkpoint (C2SP tlog-checkpoint)
//! ```
//!
//! An export starts at the record after a checkpoint (or at record 1), so
//! its first record is anchored, and ends with a checkpoint signed when it
//! began: every exported record is covered by a signature.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The public key's file name.
pub const PUBLIC_KEY_FILE: &str = "audit-public-key.txt";
/// The records' directory.
pub const RECORDS_DIR: &str = "records";
/// The checkpoints' directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The manifest's format name.
pub const FORMAT: &str = "tinfoil-audit-export-v1";
/// Records per file.
pub const RECORDS_PER_FILE: usize = 10_000;

/// Writes an export directory page by page.
#[derive(Debug)]
pub struct ExportWriter {
    dir: PathBuf,
    current: Option<(BufWriter<File>, u64, u64, usize)>,
    record_files: Vec<String>,
    checkpoint_files: Vec<(u64, String)>,
    first: Option<u64>,
    last: Option<u64>,
}

fn io_error(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

impl ExportWriter {
    /// Starts an export in `dir`, which must not exist or be empty.
    pub fn create(dir: &Path) -> Result<ExportWriter, String> {
        if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty; export into a new directory",
                    dir.display()
                ));
            }
        }
        for sub in [RECORDS_DIR, CHECKPOINTS_DIR] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|e| io_error(&path, e))?;
        }
        Ok(ExportWriter {
            dir: dir.to_path_buf(),
            current: None,
            record_files: Vec::new(),
            checkpoint_files: Vec::new(),
            first: None,
            last: None,
        })
    }

    fn close_current(&mut self) -> Result<(), String> {
        if let Some((mut file, first, last, _)) = self.current.take() {
            let name = format!("records-{first:020}-{last:020}.jsonl");
            let tmp = self.dir.join(RECORDS_DIR).join("current.partial");
            file.flush().map_err(|e| io_error(&tmp, e))?;
            file.get_ref().sync_all().map_err(|e| io_error(&tmp, e))?;
            drop(file);
            let path = self.dir.join(RECORDS_DIR).join(&name);
            fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
            self.record_files.push(format!("{RECORDS_DIR}/{name}"));
        }
        Ok(())
    }

    /// Appends one record (its sequence and JSON text).
    pub fn record(&mut self, sequence: u64, record: &str) -> Result<(), String> {
        if record.contains('\n') {
            return Err(format!("record {sequence} spans lines"));
        }
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.3 >= RECORDS_PER_FILE)
        {
            self.close_current()?;
        }
        if self.current.is_none() {
            let tmp = self.dir.join(RECORDS_DIR).join("current.partial");
            let file = File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
            self.current = Some((BufWriter::new(file), sequence, sequence, 0));
        }
        let current = self.current.as_mut().expect("opened above");
        writeln!(current.0, "{record}").map_err(|e| io_error(&self.dir, e))?;
        current.2 = sequence;
        current.3 += 1;
        self.first.get_or_insert(sequence);
        self.last = Some(sequence);
        Ok(())
    }

    /// Writes one checkpoint (once per size).
    pub fn checkpoint(&mut self, size: u64, note: &str) -> Result<(), String> {
        if self.checkpoint_files.iter().any(|(s, _)| *s == size) {
            return Ok(());
        }
        let name = format!("{CHECKPOINTS_DIR}/checkpoint-{size:020}.txt");
        let path = self.dir.join(&name);
        fs::write(&path, note).map_err(|e| io_error(&path, e))?;
        self.checkpoint_files.push((size, name));
        Ok(())
    }

    /// Writes the public key and the manifest; returns (records, checkpoints).
    pub fn finish(mut self, public_key: &str, origin: &str) -> Result<(u64, usize), String> {
        self.close_current()?;
        let key_path = self.dir.join(PUBLIC_KEY_FILE);
        fs::write(&key_path, format!("{}\n", public_key.trim()))
            .map_err(|e| io_error(&key_path, e))?;
        self.checkpoint_files.sort();
        let manifest = json!({
            "format": FORMAT,
            "origin": origin,
            "firstSequence": self.first,
            "lastSequence": self.last,
            "recordFiles": self.record_files,
            "checkpointFiles": self.checkpoint_files.iter().map(|(_, n)| n).collect::<Vec<_>>(),
        });
        let path = self.dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
        fs::write(&path, text + "\n").map_err(|e| io_error(&path, e))?;
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        let records = match (self.first, self.last) {
            (Some(f), Some(l)) => l - f + 1,
            _ => 0,
        };
        Ok((records, self.checkpoint_files.len()))
    }
}

impl crate::Hsm {
    /// Exports this store's audit log into `dir` (which must not exist or
    /// be empty) as `tinfoil export-audit-log` does through tinfoild, for a
    /// store opened in this process (an embedded PKCS#11 store: `tinfoil
    /// export-audit-log --data-dir`), acting as `caller` (an
    /// administrator). Returns (records, checkpoints, last sequence).
    pub fn export_audit_log_to_dir(
        &self,
        caller: &crate::Caller,
        dir: &Path,
        from_sequence: u64,
    ) -> crate::Result<(u64, usize, u64)> {
        let local = |e: String| crate::Error::Internal(format!("cannot write the export: {e}"));
        let gate = self.gate(caller);
        let mut writer = ExportWriter::create(dir).map_err(local)?;
        let mut from = from_sequence;
        let mut to = 0;
        let mut public_key;
        loop {
            let page = gate.export_audit_log(from, to)?;
            to = page.to_sequence;
            public_key = page.public_key;
            for (size, note) in &page.checkpoints {
                writer.checkpoint(*size, note).map_err(local)?;
            }
            for (sequence, record) in &page.records {
                writer.record(*sequence, record).map_err(local)?;
            }
            match page.next_sequence {
                Some(next) if next > from => from = next,
                _ => break,
            }
        }
        let origin = public_key.split('+').next().unwrap_or_default().to_string();
        let (records, checkpoints) = writer.finish(&public_key, &origin).map_err(local)?;
        gate.confirm_audit_export(to)?;
        Ok((records, checkpoints, to))
    }
}
