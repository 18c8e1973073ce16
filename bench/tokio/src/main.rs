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
// The timer workloads (weft's issue 6, the timer wheel), as in weft-bench:
//
//   timer_churn             one task arms and cancels 1,000,000 timeouts:
//                           time::timeout(10 s, pending()) polled once (the
//                           first poll registers the timer entry with the
//                           driver) and dropped (which deregisters it);
//                           ns per arm + cancel. The loop runs unconstrained:
//                           Sleep::poll spends coop budget, and once the
//                           budget is gone it returns Pending without
//                           registering anything.
//   timers_10k, timers_100k N tasks, spawned by one task, each sleep
//                           1..100 ms from their first poll (the same
//                           splitmix64 durations as weft-bench), and record
//                           how late they woke: wall time, mean, p99 and
//                           max lateness, and the p99 of the wait from
//                           spawn to first poll (the spawn backlog).
//                           Tokio's timer wheel has 1 ms slots and rounds
//                           deadlines up to the next one.
//   sleep_rss               1,000,000 tasks pending in 10 s sleeps: RSS
//                           growth per pending sleep and peak RSS, in a
//                           child process (tokio-bench run again with
//                           --sleep-rss-child) for a fresh heap and its
//                           own ru_maxrss.
//
// The timer workloads run at most TIMER_REPS timed reps.
//
// Output: tables for people, then lines for scripts:
//   bench: <workload> workers=<n> ops_per_sec=<f> ns_per_op=<f> reps=<n> runtime=tokio
//   bench: <timers_*> workers=<n> tasks=<n> wall_ms=<f> mean_us=<f> p99_us=<f>
//          max_us=<f> early=<n> start_p99_us=<f> reps=<n>
//          runtime=tokio                                                (one line)
//   bench: sleep_rss workers=<n> sleeps=<n> peak_rss_kib=<n> rss_delta_kib=<n>
//          bytes_per_sleep=<f> runtime=tokio                            (one line)
//   bench: bytes_per_task=<f> runtime=tokio
//   bench: peak_rss_kib=<n> runtime=tokio            (all but sleep_rss)
//
// Written for Tokio 1.24 and Rust 1.63 (Debian 12): no newer language or
// library features.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

const NUM_SPAWN: usize = 10_000; // spawn_many_*
const YIELD_TASKS: usize = 200; // yield_many
const NUM_YIELD: usize = 1_000;
const NUM_PINGS: usize = 1_000; // ping_pong
const CHAIN_DEPTH: usize = 1_000; // chained_spawn
const MEM_TASKS: usize = 100_000; // task_memory
const CHURN_OPS: usize = 1_000_000; // timer_churn
const RSS_SLEEPS: usize = 1_000_000; // sleep_rss
const LONG_SLEEP: Duration = Duration::from_secs(10); // timer_churn, sleep_rss
const TIMER_REPS: usize = 5; // the most reps of a timer workload
const MPSC_MSGS: u64 = 100_000; // mpsc_*: values per iteration
const MPSC_CAP: usize = 1_024; // mpsc_bounded_*
const MUTEX_OPS: usize = 100_000; // mutex_*: lock/unlock pairs
const MUTEX_TASKS: usize = 4; // mutex_contended

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

// ----------------------------------------------------------- timer_churn

/// Polls the future it borrows once: Ready(true) if that poll was Pending.
struct PollOnce<'a, F> {
    inner: Pin<&'a mut F>,
}

impl<'a, F: Future> Future for PollOnce<'a, F> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        Poll::Ready(self.inner.as_mut().poll(cx).is_pending())
    }
}

/// Arms and cancels CHURN_OPS timers from one task: a 10 s timeout on a
/// future that never finishes, polled once (Pending: the first poll
/// registers the timer entry), then dropped (which deregisters it).
fn timer_churn(rt: &Runtime) {
    block_on_task(
        rt,
        tokio::task::unconstrained(async {
            for _ in 0..CHURN_OPS {
                let t = tokio::time::timeout(LONG_SLEEP, std::future::pending::<()>());
                tokio::pin!(t);
                if !(PollOnce { inner: t.as_mut() }).await {
                    fail("timer_churn: a 10 s timeout was ready");
                }
            }
        }),
    );
}

// ---------------------------------------------------------------- timers

const TIMER_SEED: u64 = 0x7469_6d65_7273; // "timers"
const TIMER_MIN_NS: u64 = 1_000_000; // 1 ms
const TIMER_MAX_NS: u64 = 100_000_000; // 100 ms

/// The sleep of task @i of a timers run, as weft-bench's
/// timer_duration_ns(): the i-th number of a splitmix64 stream that starts
/// at TIMER_SEED, uniform in TIMER_MIN_NS..=TIMER_MAX_NS.
fn timer_duration_ns(i: u64) -> u64 {
    let mut z = TIMER_SEED.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    TIMER_MIN_NS + z % (TIMER_MAX_NS - TIMER_MIN_NS + 1)
}

/// What the sleepers of a timers workload share, leaked once per workload:
/// a slot of each array per sleeper, written by that sleeper only and
/// published to main by the latch's release sequence.
struct TimersRun {
    done: &'static Latch,
    lateness: Box<[AtomicI64]>, // wake time - deadline, ns
    start: Box<[AtomicI64]>,    // first poll - spawn, ns
}

/// @now - @deadline in ns, negative if @now is earlier.
fn lateness_ns(now: Instant, deadline: Instant) -> i64 {
    match now.checked_duration_since(deadline) {
        Some(d) => d.as_nanos() as i64,
        None => -((deadline - now).as_nanos() as i64),
    }
}

/// What one timers run measured; lateness in us.
struct TimerStats {
    wall_ms: f64,
    mean_us: f64,
    p99_us: f64,
    max_us: f64,
    start_p99_us: f64, // p99 of spawn -> first poll
    early: usize,
}

/// Sorts @v and returns its p99 in us: the smallest value that at least
/// 99% of the samples do not exceed (nearest rank), as in weft-bench.
fn p99_us(v: &mut [i64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    v[(v.len() * 99 + 99) / 100 - 1] as f64 / 1e3
}

/// One run: a task spawns the sleepers from its worker and awaits them;
/// each sleeps its duration from its first poll (`sleep(d)` takes the
/// deadline then), and records how long it waited to be polled at all.
fn timers_run(
    rt: &Runtime,
    run: &'static TimersRun,
    all: &mut Vec<i64>,
    starts: &mut Vec<i64>,
) -> TimerStats {
    let n = run.lateness.len();
    let rx = run.done.arm(n);
    let t0 = Instant::now();
    block_on_task(rt, async move {
        for i in 0..n {
            let spawned = Instant::now();
            tokio::spawn(async move {
                let now = Instant::now();
                run.start[i].store(lateness_ns(now, spawned), Ordering::Relaxed);
                let deadline = now + Duration::from_nanos(timer_duration_ns(i as u64));
                tokio::time::sleep_until(deadline.into()).await;
                run.lateness[i].store(lateness_ns(Instant::now(), deadline), Ordering::Relaxed);
                run.done.count_down();
            });
        }
        latch_wait(rx).await;
    });
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;

    all.clear();
    starts.clear();
    for (l, s) in run.lateness.iter().zip(run.start.iter()) {
        all.push(l.load(Ordering::Relaxed));
        starts.push(s.load(Ordering::Relaxed));
    }
    let sum: f64 = all.iter().map(|&l| l as f64).sum();
    TimerStats {
        wall_ms,
        mean_us: sum / n as f64 / 1e3,
        p99_us: p99_us(all),
        max_us: all[n - 1] as f64 / 1e3,
        start_p99_us: p99_us(starts),
        early: all.iter().filter(|&&l| l < 0).count(),
    }
}

fn print_timer_row(name: &str, workers: usize, tasks: usize, rep: &str, st: &TimerStats) {
    println!(
        "{:<24} {:>7} {:>7} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6} {:>12.1}",
        name,
        workers,
        tasks,
        rep,
        st.wall_ms,
        st.mean_us,
        st.p99_us,
        st.max_us,
        st.early,
        st.start_p99_us
    );
    let _ = std::io::stdout().flush();
}

/// One runtime, one warm-up run and @reps timed ones, each printed; returns
/// the median of each figure over the timed runs, and the total of early
/// wakes.
fn run_timers(name: &str, tasks: usize, workers: usize, reps: usize) -> TimerStats {
    let rt = new_runtime(workers);
    let run: &'static TimersRun = Box::leak(Box::new(TimersRun {
        done: Latch::leak(),
        lateness: (0..tasks).map(|_| AtomicI64::new(0)).collect(),
        start: (0..tasks).map(|_| AtomicI64::new(0)).collect(),
    }));
    let mut all = Vec::with_capacity(tasks);
    let mut starts = Vec::with_capacity(tasks);

    timers_run(&rt, run, &mut all, &mut starts); // warm-up
    let mut st = Vec::with_capacity(reps);
    for i in 0..reps {
        let s = timers_run(&rt, run, &mut all, &mut starts);
        print_timer_row(name, workers, tasks, &(i + 1).to_string(), &s);
        st.push(s);
    }
    drop(rt);

    let med = |f: fn(&TimerStats) -> f64| median(&mut st.iter().map(f).collect::<Vec<f64>>());
    let m = TimerStats {
        wall_ms: med(|s| s.wall_ms),
        mean_us: med(|s| s.mean_us),
        p99_us: med(|s| s.p99_us),
        max_us: med(|s| s.max_us),
        start_p99_us: med(|s| s.start_p99_us),
        early: st.iter().map(|s| s.early).sum(),
    };
    print_timer_row(name, workers, tasks, "median", &m);
    m
}

const TIMERS_WORKLOADS: [(&str, usize); 2] = [("timers_10k", 10_000), ("timers_100k", 100_000)];

// ------------------------------------------------------------- sleep_rss

/// Sleep 10 s; count @parked down once pending (the timer is registered).
async fn parked_sleep(parked: &'static Latch) {
    let s = tokio::time::sleep(LONG_SLEEP);
    tokio::pin!(s);
    CountWhenParked {
        inner: s.as_mut(),
        latch: parked,
        counted: false,
    }
    .await;
    fail("sleep_rss: a 10 s sleep ended before all were pending");
}

struct SleepRss {
    peak_rss_kib: i64,
    delta_kib: i64,
    bytes_per_sleep: f64,
}

/// Memory of pending sleeps: spawn RSS_SLEEPS sleepers from main, wait
/// until every one is pending, read the RSS, and drop the runtime, which
/// drops them all. Run it in a fresh process (sleep_rss_in_child).
fn sleep_rss(workers: usize) -> SleepRss {
    let rt = new_runtime(workers);
    block_on_task(&rt, async {});
    let parked = Latch::leak();
    let rx = parked.arm(RSS_SLEEPS);
    let state_size = std::mem::size_of_val(&parked_sleep(parked));

    let before = rss_bytes();
    let t0 = Instant::now();
    for _ in 0..RSS_SLEEPS {
        rt.spawn(parked_sleep(parked));
    }
    block_on_task(&rt, latch_wait(rx));
    let t1 = Instant::now();
    let after = rss_bytes();
    let peak_rss_kib = peak_rss_kib();
    drop(rt);
    let t2 = Instant::now();

    let (before, after) = match (before, after) {
        (Some(b), Some(a)) => (b as f64, a as f64),
        _ => fail("cannot read /proc/self/statm"),
    };
    let r = SleepRss {
        peak_rss_kib,
        delta_kib: ((after - before) / 1024.0) as i64,
        bytes_per_sleep: (after - before) / RSS_SLEEPS as f64,
    };
    println!(
        "sleep_rss: {} pending 10 s sleeps ({} bytes of future state each): \
         RSS +{} KiB, {:.1} bytes/sleep, peak RSS {} KiB; \
         spawned and pending in {:.0} ms, dropped in {:.0} ms",
        RSS_SLEEPS,
        state_size,
        r.delta_kib,
        r.bytes_per_sleep,
        r.peak_rss_kib,
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3
    );
    r
}

/// Run sleep_rss in a child, tokio-bench again with --sleep-rss-child, and
/// pass on what it prints, as weft-bench does: a fresh heap, so the
/// sleepers do not reuse memory that earlier workloads freed (which would
/// hide their growth), and a ru_maxrss of its own. The child ends its
/// output with "sleep_rss_result <peak_rss_kib> <delta_kib> <bytes>".
fn sleep_rss_in_child(workers: usize) -> SleepRss {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {}", e)));
    let out = std::process::Command::new(exe)
        .args(&["--sleep-rss-child", "--workers", &workers.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| fail(&format!("sleep_rss child: {}", e)));
    let mut r = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 4 && f[0] == "sleep_rss_result" {
            r = Some(SleepRss {
                peak_rss_kib: f[1].parse().unwrap_or(-1),
                delta_kib: f[2].parse().unwrap_or(-1),
                bytes_per_sleep: f[3].parse().unwrap_or(-1.0),
            });
        } else {
            println!("{}", line);
        }
    }
    match r {
        Some(r) if out.status.success() => r,
        _ => fail("the sleep_rss child failed"),
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
    reps: usize,
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

/// One runtime, one warm-up iteration, @reps timed ones (at most
/// @max_reps unless that is 0).
fn run_workload(name: &str, max_reps: usize, workers: usize, reps: usize) -> Result {
    let reps = reps_for(max_reps, reps);
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
        "timer_churn" => {
            ops = CHURN_OPS as f64;
            Box::new(timer_churn)
        }
        "mpsc_bounded_1p" | "mpsc_bounded_4p" | "mpsc_unbounded_1p" | "mpsc_unbounded_4p" => {
            ops = MPSC_MSGS as f64;
            let p = if name.ends_with("4p") { 4 } else { 1 };
            if name.contains("unbounded") {
                Box::new(move |rt| mpsc_unbounded(rt, p))
            } else {
                Box::new(move |rt| mpsc_bounded(rt, p))
            }
        }
        "mutex_uncontended" | "mutex_contended" => {
            ops = MUTEX_OPS as f64;
            let tasks = if name == "mutex_contended" { MUTEX_TASKS } else { 1 };
            let done = Latch::leak();
            Box::new(move |rt| mutex_run(rt, tasks, done))
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
        reps,
    }
}

fn reps_for(max_reps: usize, reps: usize) -> usize {
    if max_reps > 0 && max_reps < reps {
        max_reps
    } else {
        reps
    }
}


// ------------------------------------------------- channels and mutex
// As weft-bench: P producer tasks send MPSC_MSGS u64s in all into one
// channel; the root task receives until every sender is dropped. The
// mutex workloads share MUTEX_OPS lock/unlock pairs among 1 or
// MUTEX_TASKS tasks on one tokio::sync::Mutex.

fn check_sum(got: u64, sum: u64) {
    if got != MPSC_MSGS || sum != MPSC_MSGS * (MPSC_MSGS - 1) / 2 {
        fail("mpsc lost values");
    }
}

fn mpsc_bounded(rt: &Runtime, producers: u64) {
    block_on_task(rt, async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(MPSC_CAP);
        let per = MPSC_MSGS / producers;
        for i in 0..producers {
            let tx = tx.clone();
            tokio::spawn(async move {
                for v in i * per..(i + 1) * per {
                    tx.send(v).await.expect("send");
                }
            });
        }
        drop(tx);
        let (mut got, mut sum) = (0u64, 0u64);
        while let Some(v) = rx.recv().await {
            got += 1;
            sum += v;
        }
        check_sum(got, sum);
    });
}

fn mpsc_unbounded(rt: &Runtime, producers: u64) {
    block_on_task(rt, async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let per = MPSC_MSGS / producers;
        for i in 0..producers {
            let tx = tx.clone();
            tokio::spawn(async move {
                for v in i * per..(i + 1) * per {
                    tx.send(v).expect("send");
                }
            });
        }
        drop(tx);
        let (mut got, mut sum) = (0u64, 0u64);
        while let Some(v) = rx.recv().await {
            got += 1;
            sum += v;
        }
        check_sum(got, sum);
    });
}

fn mutex_run(rt: &Runtime, tasks: usize, done: &'static Latch) {
    let m = std::sync::Arc::new(tokio::sync::Mutex::new(0u64));
    let rx = done.arm(tasks);
    for _ in 0..tasks {
        let m = m.clone();
        rt.spawn(async move {
            for _ in 0..MUTEX_OPS / tasks {
                *m.lock().await += 1;
            }
            done.count_down();
        });
    }
    block_on_task(rt, latch_wait(rx));
    if *m.try_lock().expect("mutex still held") != MUTEX_OPS as u64 {
        fail("mutex lost updates");
    }
}

/// Name and most reps (0: as many as --reps).
const WORKLOADS: [(&str, usize); 12] = [
    ("spawn_many_local", 0),
    ("spawn_many_remote_idle", 0),
    ("yield_many", 0),
    ("ping_pong", 0),
    ("chained_spawn", 0),
    ("timer_churn", TIMER_REPS),
    ("mpsc_bounded_1p", 0),
    ("mpsc_bounded_4p", 0),
    ("mpsc_unbounded_1p", 0),
    ("mpsc_unbounded_4p", 0),
    ("mutex_uncontended", 0),
    ("mutex_contended", 0),
];

fn usage() -> &'static str {
    "usage: tokio-bench [--workers N] [--reps N] [--filter SUBSTR]\n\
     \n\
     weft-bench's workloads (Tokio's rt_multi_threaded) on a Tokio runtime:\n\
     \x20 spawn_many_local spawn_many_remote_idle yield_many\n\
     \x20 ping_pong chained_spawn\n\
     plus task_memory (RSS per parked task, run first), the\n\
     timer workloads timer_churn timers_10k timers_100k, and\n\
     sleep_rss (RSS per pending sleep, in a child process),\n\
     mpsc_bounded_1p mpsc_bounded_4p mpsc_unbounded_1p\n\
     mpsc_unbounded_4p (100,000 u64s through one channel) and\n\
     mutex_uncontended mutex_contended (100,000 lock/unlock).\n\
     \n\
     \x20 --workers N      worker threads (default: available parallelism)\n\
     \x20 --reps N         timed iterations per workload, after one\n\
     \x20                  warm-up (default 10; the timer workloads\n\
     \x20                  at most 5); the median is shown\n\
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
    let mut rss_child = false;

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
            "--sleep-rss-child" => rss_child = true,
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
    if rss_child {
        let r = sleep_rss(workers);
        println!("sleep_rss_result {} {} {:.1}", r.peak_rss_kib, r.delta_kib, r.bytes_per_sleep);
        return;
    }
    let selected = |name: &str| filter.as_ref().map_or(true, |f| name.contains(f.as_str()));

    let bytes_per_task = if selected("task_memory") {
        task_memory(workers)
    } else {
        None
    };

    let mut results = Vec::new();
    for &(name, max_reps) in WORKLOADS.iter() {
        if !selected(name) {
            continue;
        }
        if results.is_empty() {
            println!(
                "{:<24} {:>7} {:>11} {:>14} {:>10} {:>10} {:>10}",
                "workload", "workers", "median ms", "ops/s", "ns/op", "min ms", "max ms"
            );
        }
        let r = run_workload(name, max_reps, workers, reps);
        println!(
            "{:<24} {:>7} {:>11.3} {:>14.1} {:>10.1} {:>10.3} {:>10.3}",
            name, workers, r.median_ms, r.ops_per_sec, r.ns_per_op, r.min_ms, r.max_ms
        );
        results.push((name, r));
    }

    let treps = reps_for(TIMER_REPS, reps);
    let mut tresults = Vec::new();
    for &(name, tasks) in TIMERS_WORKLOADS.iter() {
        if !selected(name) {
            continue;
        }
        if tresults.is_empty() {
            println!(
                "\n{:<24} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>6} {:>12}",
                "timers (lateness)",
                "workers",
                "tasks",
                "rep",
                "wall ms",
                "mean us",
                "p99 us",
                "max us",
                "early",
                "start p99 us"
            );
        }
        tresults.push((name, tasks, run_timers(name, tasks, workers, treps)));
    }

    let rss = if selected("sleep_rss") {
        println!();
        Some(sleep_rss_in_child(workers))
    } else {
        None
    };

    println!();
    for (name, r) in results.iter() {
        println!(
            "bench: {} workers={} ops_per_sec={:.1} ns_per_op={:.2} reps={} runtime=tokio",
            name, workers, r.ops_per_sec, r.ns_per_op, r.reps
        );
    }
    for (name, tasks, t) in tresults.iter() {
        println!(
            "bench: {} workers={} tasks={} wall_ms={:.3} mean_us={:.1} p99_us={:.1} \
             max_us={:.1} early={} start_p99_us={:.1} reps={} runtime=tokio",
            name,
            workers,
            tasks,
            t.wall_ms,
            t.mean_us,
            t.p99_us,
            t.max_us,
            t.early,
            t.start_p99_us,
            treps
        );
    }
    if let Some(r) = rss {
        println!(
            "bench: sleep_rss workers={} sleeps={} peak_rss_kib={} rss_delta_kib={} \
             bytes_per_sleep={:.1} runtime=tokio",
            workers, RSS_SLEEPS, r.peak_rss_kib, r.delta_kib, r.bytes_per_sleep
        );
    }
    if let Some(b) = bytes_per_task {
        println!("bench: bytes_per_task={:.1} runtime=tokio", b);
    }
    println!("bench: peak_rss_kib={} runtime=tokio", peak_rss_kib());
}
