//! One stream, several digests at once.
//!
//! The RPM format wants three digests of a multi-gigabyte image (the file's SHA-256,
//! the payload's SHA-256, the package's MD5). Each runs on its own thread, fed the same
//! chunks from a small pool of reusable buffers, so the stream is read once, memory
//! stays at `pool × chunk` bytes, and the digests cost the slowest of them rather than
//! their sum.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use anyhow::{Result, anyhow};

/// Bytes per chunk: large enough that per-chunk overhead vanishes, small enough that
/// the pool stays a few MiB.
pub const CHUNK: usize = 1 << 20;
/// Buffers in flight.
const POOL: usize = 8;

/// A piece of the stream. `file` is the index of the payload file it belongs to, if any.
pub struct Chunk {
    pub data: Arc<Vec<u8>>,
    pub file: Option<usize>,
}

/// A consumer of chunks, run on its own thread.
pub type Worker<'a> = Box<dyn FnMut(&Chunk) + Send + 'a>;

/// The feeding side, handed to the closure given to [`run`].
pub struct Feeder {
    pool: Vec<Arc<Vec<u8>>>,
    senders: Vec<SyncSender<Chunk>>,
    done: Receiver<()>,
}

impl Feeder {
    /// Fill a free buffer with `fill` (which appends to it and may stop short at the end
    /// of its source), hand it to every worker and return it for writing elsewhere.
    pub fn push<E>(
        &mut self,
        file: Option<usize>,
        fill: impl FnOnce(&mut Vec<u8>) -> std::result::Result<(), E>,
    ) -> Result<std::result::Result<Arc<Vec<u8>>, E>> {
        let index = self.acquire()?;
        let buffer = Arc::get_mut(&mut self.pool[index])
            .ok_or_else(|| anyhow!("a digest buffer is still in use"))?;
        buffer.clear();
        if let Err(err) = fill(buffer) {
            return Ok(Err(err));
        }
        let data = Arc::clone(&self.pool[index]);
        for sender in &self.senders {
            sender
                .send(Chunk {
                    data: Arc::clone(&data),
                    file,
                })
                .map_err(|_| anyhow!("a digest thread stopped early"))?;
        }
        Ok(Ok(data))
    }

    /// The index of a buffer no worker holds, waiting for one if all are busy.
    fn acquire(&mut self) -> Result<usize> {
        loop {
            if let Some(index) =
                (0..self.pool.len()).find(|&i| Arc::get_mut(&mut self.pool[i]).is_some())
            {
                return Ok(index);
            }
            self.done
                .recv()
                .map_err(|_| anyhow!("the digest threads stopped early"))?;
        }
    }
}

/// Start `workers`, let `feed` push the stream through them, and wait until every
/// worker has seen every chunk. The workers' state (their hashers) is the caller's again
/// when this returns.
pub fn run<'a, R>(
    workers: Vec<Worker<'a>>,
    feed: impl FnOnce(&mut Feeder) -> Result<R>,
) -> Result<R> {
    thread::scope(|scope| {
        let (done_tx, done_rx) = sync_channel::<()>(POOL * (workers.len() + 1));
        let mut senders = Vec::with_capacity(workers.len());
        let mut handles = Vec::with_capacity(workers.len());
        for mut worker in workers {
            let (tx, rx) = sync_channel::<Chunk>(POOL);
            let done = done_tx.clone();
            senders.push(tx);
            handles.push(scope.spawn(move || {
                for chunk in rx {
                    worker(&chunk);
                    drop(chunk);
                    // The feeder may be gone already (it failed); nothing to tell then.
                    let _ = done.try_send(());
                }
            }));
        }
        drop(done_tx);
        let mut feeder = Feeder {
            pool: (0..POOL)
                .map(|_| Arc::new(Vec::with_capacity(CHUNK)))
                .collect(),
            senders,
            done: done_rx,
        };
        let result = feed(&mut feeder);
        // Closing the channels ends the workers once they have drained them.
        drop(feeder);
        for handle in handles {
            if handle.join().is_err() {
                return Err(anyhow!("a digest thread panicked"));
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn every_worker_sees_every_chunk_in_order() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut whole = Sha256::new();
        let mut file_only = Sha256::new();
        let mut chunks = 0usize;
        run(
            vec![
                Box::new(|chunk: &Chunk| whole.update(&chunk.data[..])),
                Box::new(|chunk: &Chunk| {
                    if chunk.file.is_some() {
                        file_only.update(&chunk.data[..]);
                    }
                    chunks += 1;
                }),
            ],
            |feeder| {
                let mut written = 0;
                for (i, piece) in data.chunks(CHUNK / 3).enumerate() {
                    let file = (i % 2 == 0).then_some(0);
                    let chunk = feeder
                        .push(file, |buf| {
                            buf.extend_from_slice(piece);
                            Ok::<(), ()>(())
                        })?
                        .expect("fill cannot fail");
                    written += chunk.len();
                }
                assert_eq!(written, data.len());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(whole.finalize(), Sha256::digest(&data));
        let even: Vec<u8> = data
            .chunks(CHUNK / 3)
            .step_by(2)
            .flatten()
            .copied()
            .collect();
        assert_eq!(file_only.finalize(), Sha256::digest(&even));
        assert_eq!(chunks, data.len().div_ceil(CHUNK / 3));
    }

    #[test]
    fn a_failing_fill_is_returned_and_the_workers_stop() {
        let result = run(vec![Box::new(|_: &Chunk| {})], |feeder| {
            Ok(feeder.push(None, |_| Err("disk on fire"))?.err())
        })
        .unwrap();
        assert_eq!(result, Some("disk on fire"));
    }
}
