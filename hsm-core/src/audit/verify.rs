//! The offline verifier of an export directory ([`super::export`]): needs
//! only the directory and the log's public key (no store, no passphrase).
//!
//! It checks that every file the manifest lists is there (and no other
//! record file), that sequence numbers are contiguous, every record's hash
//! and its link to the one before, every checkpoint's signature and origin,
//! that every checkpoint's root is the hash of the record it ends at (so
//! checkpoints only grow along the one chain), that the first record is
//! anchored (record 1, or a checkpoint of the record before it), and it
//! reports records after the last checkpoint as unsigned.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::chain::{link_of, record_hash, to_hex, Hash, ZERO_HASH};
use super::checkpoint::Verifier;
use super::export::{CHECKPOINTS_DIR, FORMAT, MANIFEST, RECORDS_DIR};

/// The longest record line accepted.
const MAX_LINE: usize = 1 << 20;

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The first and last sequence numbers (0, 0 when empty).
    pub first: u64,
    /// See `first`.
    pub last: u64,
    /// Records after the newest checkpoint (not covered by a signature).
    pub unsigned: u64,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records, {} checkpoints, chain intact",
            self.records, self.checkpoints
        )?;
        if self.unsigned > 0 {
            write!(
                f,
                "; {} records after the last checkpoint are unsigned ({}..={})",
                self.unsigned,
                self.last - self.unsigned + 1,
                self.last
            )?;
        }
        Ok(())
    }
}

fn manifest_list(manifest: &Value, name: &str) -> Result<Vec<String>, String> {
    manifest[name]
        .as_array()
        .ok_or(format!("{MANIFEST}: {name} is not a list"))?
        .iter()
        .map(|v| {
            v.as_str()
                .filter(|s| !s.contains("..") && !s.starts_with('/'))
                .map(str::to_string)
                .ok_or(format!("{MANIFEST}: {name} holds a bad file name"))
        })
        .collect()
}

/// Verifies the export in `dir` against `public_key` (a note verifier key,
/// as `get-audit-public-key` writes it). `Err` names the first bad record,
/// checkpoint or file and why.
pub fn verify_dir(dir: &Path, public_key: &str) -> Result<VerifyReport, String> {
    let verifier = Verifier::parse(public_key).map_err(|e| format!("public key: {e}"))?;
    let manifest_path = dir.join(MANIFEST);
    let manifest: Value = serde_json::from_slice(
        &fs::read(&manifest_path).map_err(|e| format!("{MANIFEST}: missing or unreadable: {e}"))?,
    )
    .map_err(|e| format!("{MANIFEST}: not JSON: {e}"))?;
    if manifest["format"] != FORMAT {
        return Err(format!("{MANIFEST}: not a {FORMAT} export"));
    }
    let record_files = manifest_list(&manifest, "recordFiles")?;
    let checkpoint_files = manifest_list(&manifest, "checkpointFiles")?;
    for name in record_files.iter().chain(&checkpoint_files) {
        if !dir.join(name).is_file() {
            return Err(format!("file {name} is missing (the manifest lists it)"));
        }
    }
    for (sub, listed) in [
        (RECORDS_DIR, &record_files),
        (CHECKPOINTS_DIR, &checkpoint_files),
    ] {
        if let Ok(entries) = fs::read_dir(dir.join(sub)) {
            for entry in entries.flatten() {
                let name = format!("{sub}/{}", entry.file_name().to_string_lossy());
                if !listed.contains(&name) {
                    return Err(format!("file {name} is not in the manifest"));
                }
            }
        }
    }

    // Checkpoints: signatures first, then the roots as records stream by.
    let mut checkpoints: BTreeMap<u64, (String, Hash)> = BTreeMap::new();
    let mut previous_size = None;
    for name in &checkpoint_files {
        let note =
            fs::read_to_string(dir.join(name)).map_err(|e| format!("checkpoint {name}: {e}"))?;
        let checkpoint = verifier
            .open(&note)
            .map_err(|e| format!("checkpoint {name}: {e}"))?;
        if previous_size.is_some_and(|p| checkpoint.size <= p) {
            return Err(format!(
                "checkpoint {name}: its tree size {} does not grow past the checkpoint before it",
                checkpoint.size
            ));
        }
        previous_size = Some(checkpoint.size);
        checkpoints.insert(checkpoint.size, (name.clone(), checkpoint.root));
    }

    let first_expected = manifest["firstSequence"].as_u64();
    let mut expected: Option<u64> = first_expected;
    let mut previous: Option<Hash> = None;
    let mut count = 0u64;
    let mut first = 0u64;
    let mut last = 0u64;
    for name in &record_files {
        let file = fs::File::open(dir.join(name)).map_err(|e| format!("file {name}: {e}"))?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut line_no = 0usize;
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_line(&mut line)
                .map_err(|e| format!("file {name}: {e}"))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let at = format!("{name} line {line_no}");
            if n > MAX_LINE {
                return Err(format!("{at}: a record longer than {MAX_LINE} bytes"));
            }
            let record: Value = serde_json::from_str(line.trim_end_matches('\n'))
                .map_err(|e| format!("{at}: not a JSON record: {e}"))?;
            let link = link_of(&record).map_err(|e| format!("{at}: {e}"))?;
            let seq = link.sequence;
            let want = expected.unwrap_or(seq);
            if seq != want {
                return Err(if seq > want {
                    format!(
                        "record {want} is missing: record {seq} follows record {}",
                        want.wrapping_sub(1)
                    )
                } else {
                    format!("record {seq} ({at}) is out of place: record {want} was expected")
                });
            }
            if record_hash(&record) != Some(link.hash) {
                return Err(format!(
                    "record {seq} ({at}): its hash does not match its contents (changed)"
                ));
            }
            let want_previous = match previous {
                Some(p) => p,
                None if seq == 1 => ZERO_HASH,
                None => match checkpoints.get(&(seq - 1)) {
                    Some((_, root)) => *root,
                    None => {
                        return Err(format!(
                            "record {seq} ({at}): the first record is not anchored (no checkpoint of size {})",
                            seq - 1
                        ))
                    }
                },
            };
            if link.previous_hash != want_previous {
                return Err(format!(
                    "record {seq} ({at}): its previousHash {} is not the hash of the record before it",
                    to_hex(&link.previous_hash)
                ));
            }
            if let Some((cp, root)) = checkpoints.get(&seq) {
                if *root != link.hash {
                    return Err(format!(
                        "checkpoint {cp}: its root hash is not the hash of record {seq}"
                    ));
                }
            }
            if count == 0 {
                first = seq;
            }
            count += 1;
            last = seq;
            previous = Some(link.hash);
            expected = Some(seq + 1);
        }
    }
    if let Some(manifest_last) = manifest["lastSequence"].as_u64() {
        if count > 0 && last < manifest_last {
            return Err(format!(
                "records {}..={manifest_last} are missing: the log ends at record {last}",
                last + 1
            ));
        }
    }
    for (size, (name, _)) in &checkpoints {
        if *size > last {
            return Err(format!(
                "checkpoint {name}: it signs {size} records but the log ends at record {last} (records cut)"
            ));
        }
    }
    let signed_through = checkpoints.keys().next_back().copied().unwrap_or(0);
    Ok(VerifyReport {
        records: count,
        checkpoints: checkpoints.len(),
        first,
        last,
        unsigned: last.saturating_sub(signed_through.max(first.saturating_sub(1))),
    })
}

use std::io::Read as _;
