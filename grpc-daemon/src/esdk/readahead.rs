//! [`ReadAhead`]: reads the next chunks of a stream on another thread while
//! the caller encrypts or decrypts the current one, so the kernel's copy of
//! the input overlaps the cryptography. Memory stays constant: a few
//! chunks, reused.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zeroize::{Zeroize, Zeroizing};

/// The longest [`ReadAhead`] waits awake for the reader thread's next
/// chunk before it sleeps until the thread wakes it.
const SPIN: Duration = Duration::from_micros(100);

/// A [`Read`] over chunks another thread reads from the inner stream. The
/// chunks (which may hold plaintext) are wiped when the reader is dropped.
pub struct ReadAhead {
    filled: Option<Receiver<io::Result<Vec<u8>>>>,
    empty: SyncSender<Vec<u8>>,
    current: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
    thread: Option<JoinHandle<()>>,
    /// Set for [`ReadAhead::inline`]: no thread, chunks read on demand.
    inline: Option<Inline>,
    /// How long the next wait for a chunk stays awake (at most [`SPIN`]):
    /// about twice the recent waits that ended soon after the spin gave
    /// up, halved after a long wait (a busy machine: spinning is wasted).
    spin: Duration,
}

/// The source and spare buffers of an inline [`ReadAhead`].
struct Inline {
    inner: Box<dyn Read + Send>,
    chunk: usize,
    spare: Vec<Vec<u8>>,
}

impl ReadAhead {
    /// Starts reading `inner` in chunks of `chunk` bytes, at most `depth`
    /// chunks ahead.
    pub fn new<R: Read + Send + 'static>(mut inner: R, chunk: usize, depth: usize) -> ReadAhead {
        let depth = depth.max(1);
        let (fill_tx, fill_rx) = sync_channel::<io::Result<Vec<u8>>>(depth);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(depth + 1);
        for _ in 0..depth {
            let _ = empty_tx.send(Vec::new());
        }
        let thread = std::thread::spawn(move || {
            loop {
                // A buffer handed back, or a new one when the caller still
                // holds every buffer (a frame spanning several chunks):
                // waiting for one then would wait for ever. The filled
                // channel's bound still keeps the thread at most `depth`
                // chunks ahead.
                let buf = match empty_rx.try_recv() {
                    Ok(buf) => buf,
                    Err(std::sync::mpsc::TryRecvError::Empty) => Vec::new(),
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                };
                let mut buf = Zeroizing::new(buf);
                buf.resize(chunk.max(1), 0);
                let mut n = 0;
                let result = loop {
                    if n == buf.len() {
                        break Ok(());
                    }
                    match inner.read(&mut buf[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let end = n == 0;
                let message = match result {
                    Ok(()) => Ok(std::mem::take(&mut *buf)),
                    Err(e) => Err(e),
                };
                let failed = message.is_err();
                if let Err(unsent) = fill_tx.send(message) {
                    if let Ok(mut v) = unsent.0 {
                        v.zeroize();
                    }
                    break;
                }
                if end || failed {
                    break;
                }
            }
        });
        ReadAhead {
            filled: Some(fill_rx),
            empty: empty_tx,
            current: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
            thread: Some(thread),
            inline: None,
            spin: SPIN,
        }
    }

    /// The same reader without a thread: each chunk of `chunk` bytes is
    /// read when it is asked for. On one core (or a busy machine) this is
    /// the faster form: the chunk is still in this core's cache when it is
    /// encrypted, and no thread hands buffers back and forth.
    pub fn inline<R: Read + Send + 'static>(inner: R, chunk: usize) -> ReadAhead {
        let (empty, _) = sync_channel::<Vec<u8>>(0);
        ReadAhead {
            filled: None,
            empty,
            current: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
            thread: None,
            inline: Some(Inline {
                inner: Box::new(inner),
                chunk: chunk.max(1),
                spare: Vec::new(),
            }),
            spin: Duration::ZERO,
        }
    }

    /// How `tinfoil encrypt-file` / `decrypt-file` read a file: on
    /// another thread ([`ReadAhead::new`], chunks of
    /// [`READ_AHEAD_CHUNK`](super::READ_AHEAD_CHUNK), at most
    /// [`READ_AHEAD_DEPTH`](super::READ_AHEAD_DEPTH) ahead) when this
    /// process may run on two cores or more: the kernel's copy of the input
    /// then runs beside the cryptography, which itself stays on one core.
    /// Else [`ReadAhead::inline`] in chunks of [`IO_CHUNK`](super::IO_CHUNK).
    pub fn for_cores<R: Read + Send + 'static>(inner: R) -> ReadAhead {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores >= 2 {
            ReadAhead::new(inner, super::READ_AHEAD_CHUNK, super::READ_AHEAD_DEPTH)
        } else {
            ReadAhead::inline(inner, super::IO_CHUNK)
        }
    }

    /// The next filled chunk (empty at the end of the input).
    fn receive(&mut self) -> io::Result<Vec<u8>> {
        if let Some(inline) = self.inline.as_mut() {
            let mut buf = Zeroizing::new(inline.spare.pop().unwrap_or_default());
            buf.resize(inline.chunk, 0);
            let mut n = 0;
            while n < buf.len() {
                match inline.inner.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(n);
            return Ok(std::mem::take(&mut *buf));
        }
        let stopped = || io::Error::other("the read-ahead thread stopped");
        let Some(rx) = self.filled.as_ref() else {
            return Err(stopped());
        };
        // The next chunk is usually a few microseconds away (the kernel
        // copies 256 KiB in about 30): wait for it awake, briefly, rather
        // than sleep and have the reader wake this thread (an
        // inter-processor interrupt per chunk, costly in a VM). Then sleep.
        let start = Instant::now();
        loop {
            match rx.try_recv() {
                Ok(message) => return message,
                Err(TryRecvError::Disconnected) => return Err(stopped()),
                Err(TryRecvError::Empty) => {}
            }
            if start.elapsed() >= self.spin {
                break;
            }
            std::hint::spin_loop();
        }
        let message = rx.recv().unwrap_or_else(|_| Err(stopped()));
        let waited = start.elapsed();
        self.spin = if waited < SPIN {
            (waited * 2).min(SPIN)
        } else {
            self.spin / 2
        };
        message
    }

    /// Hands a chunk back for reuse (its contents are overwritten).
    fn give_back(&mut self, mut buf: Vec<u8>) {
        match self.inline.as_mut() {
            Some(inline) if inline.spare.len() < 2 => inline.spare.push(buf),
            Some(_) => buf.zeroize(),
            None => {
                // Never blocks: a buffer the thread has no room for is wiped.
                if let Err(e) = self.empty.try_send(buf) {
                    let (std::sync::mpsc::TrySendError::Full(mut b)
                    | std::sync::mpsc::TrySendError::Disconnected(mut b)) = e;
                    b.zeroize();
                }
            }
        }
    }
}

impl ReadAhead {
    /// The next chunk as the thread read it, handed over without a copy
    /// (what a [`Read`] call left of the current chunk comes first); empty
    /// at the end of the input. Every chunk but the last is full.
    pub fn next_chunk(&mut self) -> io::Result<Zeroizing<Vec<u8>>> {
        if self.pos < self.current.len() {
            let mut rest = std::mem::take(&mut *self.current);
            rest.drain(..self.pos);
            self.pos = 0;
            return Ok(Zeroizing::new(rest));
        }
        if self.done {
            return Ok(Zeroizing::new(Vec::new()));
        }
        match self.receive() {
            Ok(buf) => {
                self.done = buf.is_empty();
                Ok(Zeroizing::new(buf))
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// Takes back a chunk from [`ReadAhead::next_chunk`] for the thread to
    /// fill again (its contents are overwritten; wiped if it is not
    /// reused).
    pub fn recycle(&mut self, mut chunk: Zeroizing<Vec<u8>>) {
        if chunk.capacity() > 0 {
            let buf = std::mem::take(&mut *chunk);
            self.give_back(buf);
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            match self.receive() {
                Ok(buf) if buf.is_empty() => self.done = true,
                Ok(buf) => {
                    let old = std::mem::replace(&mut *self.current, buf);
                    // Stale contents are overwritten by the next read.
                    if old.capacity() > 0 {
                        self.give_back(old);
                    }
                    self.pos = 0;
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        if let Some(inline) = self.inline.as_mut() {
            inline.spare.iter_mut().for_each(Zeroize::zeroize);
        }
        // Stop the thread (its sends fail), then wipe what it had queued.
        if let Some(rx) = self.filled.take() {
            while let Ok(Ok(mut buf)) = rx.try_recv() {
                buf.zeroize();
            }
            drop(rx);
        }
        if let Some(t) = self.thread.take() {
            // A thread blocked in a read of a pipe that never ends is left
            // to the process exit rather than waited for.
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}
