// SPDX-License-Identifier: MIT
//
// tokio-bench: the workloads of weft-bench (bench/weft-bench.c), which are
// Tokio's benches/rt_multi_threaded.rs with the same names and sizes, run on
// a Tokio multi-threaded runtime so that bench/compare.sh can set the two
// side by side:
//
//   spawn_many_local        a task on a worker spawns 10,000 tasks
//   spawn_many_remote_idle  the main thread spawns 10,000 tasks into an idle
//                           runtime and awaits their join handles
//   yield_many              200 tasks yield 1,000 times each
//   ping_pong               1,000 concurrent oneshot round trips, each with
//                           its own pair of tasks
//   chained_spawn           each task spawns the next, 1,000 deep
//
// The structure follows weft-bench rather than Tokio's file where the two
// differ, so that both runtimes do the same work:
//
// - weft_block_on() runs its future as a task on a worker while the calling
//   thread sleeps on its join handle. block_on_task() does the same here
//   (rt.spawn + rt.block_on(handle)), so "local" spawns really come from a
//   worker. (Tokio's own bench calls rt.block_on(fut), which polls fut on the
//   main thread, so its tokio::spawn calls go through the inject queue.)
// - Completion: an atomic countdown whose last decrement sends on a oneshot
//   that the waiting side awaits (Tokio's bench: a std mpsc channel and a
//   blocking recv() inside block_on). The latch is reached through a
//   &'static, like weft's pointer to it, not an Arc clone per task.
// - One runtime per workload (worker_threads(N), enable_all()), one warm-up
//   iteration and --reps timed ones; the median is reported. Ops per
//   iteration as in weft-bench: NUM_SPAWN, YIELD_TASKS * NUM_YIELD,
//   NUM_PINGS, CHAIN_DEPTH.
//
// task_memory (run first, as in weft-bench) parks 100,000 tasks on a
// tokio::sync::Notify and reports the growth of the resident set per task,
// so that peak RSS means the same thing for both programs.
//
// Output: a table for people, then lines for scripts:
//   bench: <workload> workers=<n> ops_per_sec=<f> ns_per_op=<f> reps=<n> runtime=tokio
//   bench: bytes_per_task=<f> runtime=tokio
//   bench: peak_rss_kib=<n> runtime=tokio
//
// Written for Tokio 1.24 and Rust 1.63 (Debian 12): no newer language or
// library features.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::runtime::{Builder, Runtime};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

const NUM_SPAWN: usize = 10_000; // spawn_many_*
const YIELD_TASKS: usize = 200; // yield_many
const NUM_YIELD: usize = 1_000;
const NUM_PINGS: usize = 1_000; // ping_pong
const CHAIN_DEPTH: usize = 1_000; // chained_spawn
const MEM_TASKS: usize = 100_000; // task_memory

// ------------------------------------------------------------------ latch

/// A countdown: whoever brings it to zero sends on a oneshot, and a future
/// awaiting the receiver learns that all the work is done. Leaked once per
/// workload and re-armed for each iteration.
struct Latch {
    rem: AtomicUsize,
    tx: Mutex<Option<oneshot::Sender<()>>>,
}

impl Latch {
    fn leak() -> &'static Latch {
        Box::leak(Box::new(Latch {
            rem: AtomicUsize::new(0),
            tx: Mutex::new(None),
        }))
    }

    /// Set the count to @n and return the receiver to await. Call before
    /// spawning the tasks that count down (spawning publishes the store).
    fn arm(&self, n: usize) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        *self.tx.lock().unwrap() = Some(tx);
        self.rem.store(n, Ordering::Relaxed);
        rx
    }

    fn count_down(&self) {
        // AcqRel: everything each task did happens before the last send.
        if self.rem.fetch_sub(1, Ordering::AcqRel) == 1 {
            let tx = self.tx.lock().unwrap().take().expect("latch not armed");
            tx.send(()).expect("latch receiver dropped");
        }
    }
}

async fn latch_wait(rx: oneshot::Receiver<()>) {
    rx.await.expect("latch sender dropped");
}

/// weft_block_on(): run @fut as a task on a worker; the calling thread
/// sleeps until its join handle is ready.
fn block_on_task<F>(rt: &Runtime, fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = rt.spawn(fut);
    rt.block_on(handle).expect("block_on task failed")
}

// ------------------------------------------------------------- workloads

fn spawn_many_local(rt: &Runtime, done: &'static Latch) {
    let rx = done.arm(NUM_SPAWN);
    block_on_task(rt, async move {
        for _ in 0..NUM_SPAWN {
            tokio::spawn(async move { done.count_down() });
        }
        latch_wait(rx).await;
    });
}

fn spawn_many_remote_idle(rt: &Runtime, handles: &mut Vec<JoinHandle<()>>) {
    let mut hs = std::mem::take(handles);
    for _ in 0..NUM_SPAWN {
        hs.push(rt.spawn(async {}));
    }
    // Await them in order, dropping each when done; hand the Vec back so
    // its buffer is reused like weft-bench's static array.
    *handles = block_on_task(rt, async move {
        for h in hs.drain(..) {
            h.await.expect("join");
        }
        hs
    });
}

fn yield_many(rt: &Runtime, done: &'static Latch) {
    let rx = done.arm(YIELD_TASKS);
    for _ in 0..YIELD_TASKS {
        rt.spawn(async move {
            for _ in 0..NUM_YIELD {
                tokio::task::yield_now().await;
            }
            done.count_down();
        });
    }
    block_on_task(rt, latch_wait(rx));
}

fn ping_pong(rt: &Runtime, done: &'static Latch) {
    let rx = done.arm(NUM_PINGS);
    block_on_task(rt, async move {
        // The spawner: NUM_PINGS pings from one worker.
        tokio::spawn(async move {
            for _ in 0..NUM_PINGS {
                // ping: spawn a pong, send on tx1, await rx2, count down.
                tokio::spawn(async move {
                    let (tx1, rx1) = oneshot::channel::<()>();
                    let (tx2, rx2) = oneshot::channel::<()>();
                    // pong: await rx1, then answer on tx2.
                    tokio::spawn(async move {
                        rx1.await.expect("pong receive");
                        tx2.send(()).expect("pong send");
                    });
                    tx1.send(()).expect("ping send");
                    rx2.await.expect("ping receive");
                    done.count_down();
                });
            }
        })
        .await
        .expect("join spawner");
        latch_wait(rx).await;
    });
}

/// One link: the last counts the latch down, the others spawn the next.
fn chain(done: &'static Latch, n: usize) {
    if n == 0 {
        done.count_down();
    } else {
        tokio::spawn(async move { chain(done, n - 1) });
    }
}

fn chained_spawn(rt: &Runtime, done: &'static Latch) {
    let rx = done.arm(1);
    block_on_task(rt, async move {
        tokio::spawn(async move { chain(done, CHAIN_DEPTH) });
        latch_wait(rx).await;
    });
}

// ----------------------------------------------------------- task_memory

/// Polls @inner; counts @latch down the first time it returns Pending (the
/// Notified future is then registered with the Notify).
struct CountWhenParked<'a, F> {
    inner: Pin<&'a mut F>,
    latch: &'static Latch,
    counted: bool,
}

impl<'a, F: Future> Future for CountWhenParked<'a, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        match this.inner.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(v),
            Poll::Pending => {
                if !this.counted {
                    this.counted = true;
                    this.latch.count_down();
                }
                Poll::Pending
            }
        }
    }
}

/// Park on @gate (its waiter list is intrusive: parking allocates nothing,
/// so the RSS growth is the tasks' own), then count @done down.
async fn gate_task(gate: &'static Notify, parked: &'static Latch, done: &'static Latch) {
    let notified = gate.notified();
    tokio::pin!(notified);
    CountWhenParked {
        inner: notified.as_mut(),
        latch: parked,
        counted: false,
    }
    .await;
    done.count_down();
}

/// Current resident set size in bytes, from /proc/self/statm.
fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page <= 0 {
        return None;
    }
    Some(resident * page as u64)
}

/// Peak resident set size so far, in KiB (ru_maxrss).
fn peak_rss_kib() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return -1;
    }
    ru.ru_maxrss as i64
}

/// RSS growth per parked task: spawn MEM_TASKS gate tasks from main, wait
/// until every one has been polled and parked, and read RSS.
fn task_memory(workers: usize) -> Option<f64> {
    let rt = new_runtime(workers);
    // Let every worker start and touch its stack first.
    block_on_task(&rt, async {});

    let gate: &'static Notify = Box::leak(Box::new(Notify::new()));
    let parked = Latch::leak();
    let done = Latch::leak();
    let parked_rx = parked.arm(MEM_TASKS);
    let done_rx = done.arm(MEM_TASKS);
    let state_size = std::mem::size_of_val(&gate_task(gate, parked, done));

    let before = rss_bytes();
    for _ in 0..MEM_TASKS {
        rt.spawn(gate_task(gate, parked, done));
    }
    block_on_task(&rt, latch_wait(parked_rx));
    let after = rss_bytes();

    gate.notify_waiters();
    block_on_task(&rt, latch_wait(done_rx));
    drop(rt);

    match (before, after) {
        (Some(b), Some(a)) => {
            let grown = a as f64 - b as f64;
            println!(
                "task_memory: {} parked tasks ({} bytes of future state each): \
                 RSS +{} KiB, {:.1} bytes/task\n",
                MEM_TASKS,
                state_size,
                (grown / 1024.0) as i64,
                grown / MEM_TASKS as f64
            );
            Some(grown / MEM_TASKS as f64)
        }
        _ => {
            eprintln!("tokio-bench: cannot read /proc/self/statm");
            None
        }
    }
}

// --------------------------------------------------------------- harness

fn new_runtime(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot build runtime: {}", e)))
}

struct Result {
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    ops_per_sec: f64,
    ns_per_op: f64,
}

/// Median of @v (sorted in place); an even count gives the mean of the
/// middle two, as bench_median() does.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One runtime, one warm-up iteration, @reps timed ones.
fn run_workload(name: &str, workers: usize, reps: usize) -> Result {
    let rt = new_runtime(workers);
    let ops: f64;
    let mut iter: Box<dyn FnMut(&Runtime)> = match name {
        "spawn_many_local" => {
            ops = NUM_SPAWN as f64;
            let done = Latch::leak();
            Box::new(move |rt| spawn_many_local(rt, done))
        }
        "spawn_many_remote_idle" => {
            ops = NUM_SPAWN as f64;
            let mut handles = Vec::with_capacity(NUM_SPAWN);
            Box::new(move |rt| spawn_many_remote_idle(rt, &mut handles))
        }
        "yield_many" => {
            ops = (YIELD_TASKS * NUM_YIELD) as f64;
            let done = Latch::leak();
            Box::new(move |rt| yield_many(rt, done))
        }
        "ping_pong" => {
            ops = NUM_PINGS as f64;
            let done = Latch::leak();
            Box::new(move |rt| ping_pong(rt, done))
        }
        "chained_spawn" => {
            ops = CHAIN_DEPTH as f64;
            let done = Latch::leak();
            Box::new(move |rt| chained_spawn(rt, done))
        }
        _ => unreachable!(),
    };

    iter(&rt); // warm-up
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        iter(&rt);
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    drop(iter);
    drop(rt);

    let median_ms = median(&mut ms);
    Result {
        median_ms,
        min_ms: ms[0],
        max_ms: ms[reps - 1],
        ops_per_sec: ops / (median_ms / 1e3),
        ns_per_op: median_ms * 1e6 / ops,
    }
}

const WORKLOADS: [&str; 5] = [
    "spawn_many_local",
    "spawn_many_remote_idle",
    "yield_many",
    "ping_pong",
    "chained_spawn",
];

fn usage() -> &'static str {
    "usage: tokio-bench [--workers N] [--reps N] [--filter SUBSTR]\n\
     \n\
     weft-bench's workloads (Tokio's rt_multi_threaded) on a Tokio runtime:\n\
     \x20 spawn_many_local spawn_many_remote_idle yield_many\n\
     \x20 ping_pong chained_spawn\n\
     plus task_memory (RSS per parked task, run first).\n\
     \n\
     \x20 --workers N      worker threads (default: available parallelism)\n\
     \x20 --reps N         timed iterations per workload, after one\n\
     \x20                  warm-up (default 10); the median is shown\n\
     \x20 --filter SUBSTR  run only workloads whose name contains it\n\
     \x20 --help           this text\n"
}

fn fail(msg: &str) -> ! {
    let _ = std::io::stdout().flush();
    eprintln!("tokio-bench: {}", msg);
    std::process::exit(1);
}

fn parse_uint(opt: &str, s: &str, lo: usize, hi: usize) -> usize {
    match s.parse::<usize>() {
        Ok(v) if v >= lo && v <= hi => v,
        _ => fail(&format!("{} wants a number in {}..{}", opt, lo, hi)),
    }
}

fn main() {
    // Any panic, in a task too, is fatal (Tokio would otherwise catch it
    // and leave the main thread waiting on a latch forever).
    std::panic::set_hook(Box::new(|info| {
        let _ = std::io::stdout().flush();
        eprintln!("tokio-bench: {}", info);
        std::process::exit(1);
    }));

    let mut workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(256);
    let mut reps = 10;
    let mut filter: Option<String> = None;

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (opt, inline) = match arg.find('=') {
            Some(i) if arg.starts_with("--") => (arg[..i].to_string(), Some(arg[i + 1..].to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |opt: &str| -> String {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => v,
                None => {
                    eprint!("tokio-bench: {} wants a value\n{}", opt, usage());
                    std::process::exit(1);
                }
            }
        };
        match opt.as_str() {
            "--workers" | "-w" => workers = parse_uint("--workers", &value("--workers"), 1, 256),
            "--reps" | "-r" => reps = parse_uint("--reps", &value("--reps"), 1, 1_000_000),
            "--filter" | "-f" => filter = Some(value("--filter")),
            "--help" | "-h" => {
                print!("{}", usage());
                return;
            }
            _ => {
                eprint!("{}", usage());
                std::process::exit(1);
            }
        }
    }
    let selected = |name: &str| filter.as_ref().map_or(true, |f| name.contains(f.as_str()));

    let bytes_per_task = if selected("task_memory") {
        task_memory(workers)
    } else {
        None
    };

    println!(
        "{:<24} {:>7} {:>11} {:>14} {:>10} {:>10} {:>10}",
        "workload", "workers", "median ms", "ops/s", "ns/op", "min ms", "max ms"
    );
    let mut results = Vec::new();
    for name in WORKLOADS.iter() {
        if !selected(name) {
            continue;
        }
        let r = run_workload(name, workers, reps);
        println!(
            "{:<24} {:>7} {:>11.3} {:>14.1} {:>10.1} {:>10.3} {:>10.3}",
            name, workers, r.median_ms, r.ops_per_sec, r.ns_per_op, r.min_ms, r.max_ms
        );
        results.push((name, r));
    }

    println!();
    for (name, r) in results.iter() {
        println!(
            "bench: {} workers={} ops_per_sec={:.1} ns_per_op={:.2} reps={} runtime=tokio",
            name, workers, r.ops_per_sec, r.ns_per_op, reps
        );
    }
    if let Some(b) = bytes_per_task {
        println!("bench: bytes_per_task={:.1} runtime=tokio", b);
    }
    println!("bench: peak_rss_kib={} runtime=tokio", peak_rss_kib());
}
