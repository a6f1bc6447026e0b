//! Measures the queue engine: enqueue, receive + delete, and both at once.
//!
//! ```text
//! cargo run --release -p strato-queue --example throughput -- \
//!     [--messages N] [--batch 10] [--concurrency 8] [--body-bytes 256] \
//!     [--durability process-crash|fsync] [--dir PATH] [--fifo]
//! ```
//!
//! Prints one JSON line: messages/s and p50/p99 latency (ms) per batch
//! operation for each phase, and the index's heap bytes per stored message
//! (live bytes of Rust's heap, counted by this program's allocator; SQLite's
//! own page cache is outside it and bounded by its cache size).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strato_queue::{Durability, NewMessage, QueueEngine, QueueOptions, SqliteQueueEngine};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the counter has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Lossless: a `Layout`'s size never exceeds `isize::MAX`.
        LIVE_BYTES.fetch_add(layout.size().cast_signed(), Ordering::Relaxed);
        // SAFETY: same layout the caller gave us, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Lossless: a `Layout`'s size never exceeds `isize::MAX`.
        LIVE_BYTES.fetch_sub(layout.size().cast_signed(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Lossless: `layout`'s size, and `new_size` by realloc's contract,
        // never exceed `isize::MAX`.
        LIVE_BYTES.fetch_add(
            new_size.cast_signed() - layout.size().cast_signed(),
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller
        // guarantees `new_size` is valid for it.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Args {
    messages: usize,
    batch: usize,
    concurrency: usize,
    body_bytes: usize,
    /// FIFO queue: each message gets one of [`FIFO_GROUPS`] groups and a
    /// unique dedup id (so the index also holds a dedup entry per message).
    fifo: bool,
    durability: Durability,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        messages: 100_000,
        batch: 10,
        concurrency: 8,
        body_bytes: 256,
        fifo: false,
        durability: Durability::ProcessCrash,
        dir: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        if flag == "--fifo" {
            args.fifo = true;
            continue;
        }
        let value = argv.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--messages" => args.messages = number()?,
            "--batch" => args.batch = number()?.max(1),
            "--concurrency" => args.concurrency = number()?.max(1),
            "--body-bytes" => args.body_bytes = number()?,
            "--durability" => {
                args.durability = match value.as_str() {
                    "fsync" => Durability::Fsync,
                    "process-crash" => Durability::ProcessCrash,
                    other => return Err(format!("unknown durability {other}")),
                }
            }
            "--dir" => args.dir = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// Latencies of one kind of batch operation, in microseconds.
#[derive(Default)]
struct Latencies(Vec<u64>);

impl Latencies {
    fn record(&mut self, since: Instant) {
        self.0
            .push(u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX));
    }

    fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    fn json(&mut self) -> String {
        self.0.sort_unstable();
        // The nearest rank, rounded half up, in integers.
        let at = |per_cent: usize| {
            let index = (self.0.len().saturating_sub(1) * per_cent + 50) / 100;
            self.0.get(index).map_or(0.0, |&us| us as f64 / 1000.0)
        };
        format!(
            "{{\"ops\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
            self.0.len(),
            at(50),
            at(99)
        )
    }
}

fn rate(messages: usize, elapsed: Duration) -> f64 {
    (messages as f64 / elapsed.as_secs_f64()).round()
}

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("queue: {0}")]
    Queue(#[from] strato_queue::QueueError),
    #[error("temporary directory: {0}")]
    Io(#[source] std::io::Error),
    #[error("worker task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

const FIFO_GROUPS: usize = 100;

/// Numbers FIFO messages for their group and dedup ids.
static FIFO_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn batch_of(body: &Bytes, size: usize, fifo: bool) -> Vec<NewMessage> {
    (0..size)
        .map(|_| {
            let (group_id, dedup_id) = if fifo {
                let n = FIFO_COUNTER.fetch_add(1, Ordering::Relaxed);
                (Some(format!("g{}", n % FIFO_GROUPS)), Some(n.to_string()))
            } else {
                (None, None)
            };
            NewMessage {
                body: body.clone(),
                metadata: Bytes::from_static(b"{\"attempt\":0}"),
                group_id,
                dedup_id,
                ..NewMessage::default()
            }
        })
        .collect()
}

/// Splits `total` messages into batches handed out to workers as they ask.
struct Work {
    left: AtomicUsize,
    batch: usize,
}

impl Work {
    /// The run's messages, handed out in batches to the workers.
    fn shared(args: &Args) -> Arc<Work> {
        Arc::new(Work {
            left: AtomicUsize::new(args.messages),
            batch: args.batch,
        })
    }

    fn next(&self) -> Option<usize> {
        let mut left = self.left.load(Ordering::Relaxed);
        loop {
            if left == 0 {
                return None;
            }
            let take = left.min(self.batch);
            match self.left.compare_exchange(
                left,
                left - take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(take),
                Err(actual) => left = actual,
            }
        }
    }
}

async fn send_phase(
    engine: &Arc<SqliteQueueEngine>,
    args: &Args,
    body: &Bytes,
) -> Result<(Duration, Latencies), BenchError> {
    let work = Work::shared(args);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (engine, work, body, fifo) =
                (engine.clone(), work.clone(), body.clone(), args.fifo);
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                while let Some(size) = work.next() {
                    let at = Instant::now();
                    engine.send("bench", batch_of(&body, size, fifo)).await?;
                    latencies.record(at);
                }
                Ok::<_, BenchError>(latencies)
            })
        })
        .collect();
    let mut all = Latencies::default();
    for task in tasks {
        all.merge(task.await??);
    }
    Ok((started.elapsed(), all))
}

async fn drain_phase(
    engine: &Arc<SqliteQueueEngine>,
    args: &Args,
) -> Result<(Duration, Latencies, Latencies), BenchError> {
    // Counts beyond `isize::MAX` saturate: the workers stop on an empty
    // receive anyway.
    let left = Arc::new(AtomicIsize::new(
        isize::try_from(args.messages).unwrap_or(isize::MAX),
    ));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (engine, left, batch) = (engine.clone(), left.clone(), args.batch);
            tokio::spawn(async move {
                let (mut receives, mut deletes) = (Latencies::default(), Latencies::default());
                while left.load(Ordering::Relaxed) > 0 {
                    let at = Instant::now();
                    let received = engine
                        .receive("bench", batch, Duration::from_secs(60), Duration::ZERO)
                        .await?;
                    receives.record(at);
                    if received.is_empty() {
                        break;
                    }
                    left.fetch_sub(
                        isize::try_from(received.len()).unwrap_or(isize::MAX),
                        Ordering::Relaxed,
                    );
                    let receipts: Vec<String> =
                        received.into_iter().map(|m| m.receipt_handle).collect();
                    let at = Instant::now();
                    engine.delete("bench", &receipts).await?;
                    deletes.record(at);
                }
                Ok::<_, BenchError>((receives, deletes))
            })
        })
        .collect();
    let (mut receives, mut deletes) = (Latencies::default(), Latencies::default());
    for task in tasks {
        let (r, d) = task.await??;
        receives.merge(r);
        deletes.merge(d);
    }
    Ok((started.elapsed(), receives, deletes))
}

/// Each worker sends a batch, receives a batch and deletes it, over and over.
async fn combined_phase(
    engine: &Arc<SqliteQueueEngine>,
    args: &Args,
    body: &Bytes,
) -> Result<(Duration, [Latencies; 3]), BenchError> {
    let work = Work::shared(args);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (engine, work, body, batch, fifo) = (
                engine.clone(),
                work.clone(),
                body.clone(),
                args.batch,
                args.fifo,
            );
            tokio::spawn(async move {
                let mut latencies: [Latencies; 3] = Default::default();
                while let Some(size) = work.next() {
                    let at = Instant::now();
                    engine.send("bench", batch_of(&body, size, fifo)).await?;
                    latencies[0].record(at);
                    let at = Instant::now();
                    let received = engine
                        .receive("bench", batch, Duration::from_secs(60), Duration::ZERO)
                        .await?;
                    latencies[1].record(at);
                    let receipts: Vec<String> =
                        received.into_iter().map(|m| m.receipt_handle).collect();
                    let at = Instant::now();
                    engine.delete("bench", &receipts).await?;
                    latencies[2].record(at);
                }
                Ok::<_, BenchError>(latencies)
            })
        })
        .collect();
    let mut all: [Latencies; 3] = Default::default();
    for task in tasks {
        for (total, part) in all.iter_mut().zip(task.await??) {
            total.merge(part);
        }
    }
    Ok((started.elapsed(), all))
}

async fn run(args: Args) -> Result<String, BenchError> {
    let dir = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .map_err(BenchError::Io)?;
    let engine = SqliteQueueEngine::open(&dir.path().join("queues.db"), args.durability)?;
    engine
        .create_queue(
            "bench",
            QueueOptions {
                fifo: args.fifo,
                ..QueueOptions::default()
            },
        )
        .await?;
    let body = Bytes::from(vec![b'x'; args.body_bytes]);

    let heap_before = LIVE_BYTES.load(Ordering::Relaxed);
    let (send_time, mut send_latency) = send_phase(&engine, &args, &body).await?;
    let index_bytes = LIVE_BYTES.load(Ordering::Relaxed) - heap_before;
    let (drain_time, mut receive_latency, mut delete_latency) = drain_phase(&engine, &args).await?;
    let left = engine.counts("bench")?;
    let (combined_time, mut combined) = combined_phase(&engine, &args, &body).await?;
    engine.close().await;

    let durability = match args.durability {
        Durability::Fsync => "fsync",
        Durability::ProcessCrash => "process-crash",
    };
    Ok(format!(
        concat!(
            "{{\"messages\":{},\"batch\":{},\"concurrency\":{},\"body_bytes\":{},",
            "\"fifo\":{},\"durability\":\"{}\",",
            "\"send\":{{\"messages_per_s\":{},\"batch\":{}}},",
            "\"receive_delete\":{{\"messages_per_s\":{},\"receive\":{},\"delete\":{},",
            "\"left_in_queue\":{}}},",
            "\"combined\":{{\"messages_per_s\":{},\"send\":{},\"receive\":{},\"delete\":{}}},",
            "\"index_bytes_per_message\":{}}}"
        ),
        args.messages,
        args.batch,
        args.concurrency,
        args.body_bytes,
        args.fifo,
        durability,
        rate(args.messages, send_time),
        send_latency.json(),
        rate(args.messages, drain_time),
        receive_latency.json(),
        delete_latency.json(),
        left.visible + left.in_flight,
        rate(args.messages, combined_time),
        combined[0].json(),
        combined[1].json(),
        combined[2].json(),
        index_bytes / isize::try_from(args.messages.max(1)).unwrap_or(isize::MAX),
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("throughput: {err}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("throughput: {err}");
            ExitCode::FAILURE
        }
    }
}
