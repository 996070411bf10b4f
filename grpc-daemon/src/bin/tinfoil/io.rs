//! Binary-safe file flags: `-` is standard input or output. Inputs are
//! bounded and held in wiped buffers; outputs are created 0600.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zeroize::Zeroizing;

/// The largest input file read (the daemon's own limits are smaller).
pub const MAX_INPUT: u64 = 1024 * 1024;

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads a whole input file (or standard input for `-`), up to [`MAX_INPUT`].
pub fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut buf = Zeroizing::new(Vec::new());
    let result = if is_stdio(path) {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut buf))
    };
    result.map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(format!("{}: larger than {MAX_INPUT} bytes", path.display()));
    }
    Ok(buf)
}

/// Writes raw bytes to a file (created or truncated, mode 0600 when
/// created) or to standard output for `-`.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let result = if is_stdio(path) {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).and_then(|()| out.flush())
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(bytes))
    };
    result.map_err(|e| format!("{}: {e}", path.display()))
}
