//! The test-only clock: time read from a file, so end-to-end tests can move
//! the daemon's clock (`tinfoild serve --test-only-clock-file PATH`).
//! Never use it in production: whoever can write the file controls when
//! keys are destroyed and rotated.

use std::path::PathBuf;

use hsm_core::{Clock, SystemClock, UnixSeconds};

/// A clock whose time is the integer (Unix seconds) held in a file, re-read
/// on every call. An unreadable or malformed file gives the system time.
#[derive(Debug, Clone)]
pub struct FileClock {
    path: PathBuf,
}

impl FileClock {
    /// A clock reading `path`.
    pub fn new(path: PathBuf) -> Self {
        FileClock { path }
    }
}

impl Clock for FileClock {
    fn now(&self) -> UnixSeconds {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| text.trim().parse::<UnixSeconds>().ok())
            .unwrap_or_else(|| SystemClock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_on_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        std::fs::write(&path, "1000\n").unwrap();
        let clock = FileClock::new(path.clone());
        assert_eq!(clock.now(), 1000);
        std::fs::write(&path, "2000").unwrap();
        assert_eq!(clock.now(), 2000);
    }

    #[test]
    fn malformed_file_falls_back_to_system_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        std::fs::write(&path, "not a number").unwrap();
        assert!(FileClock::new(path).now() > 1_600_000_000);
    }
}
