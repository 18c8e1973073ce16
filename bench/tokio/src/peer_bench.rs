// SPDX-License-Identifier: MIT
//
// tokio-peer-bench: the peer benchmark of issue 10 (messages between nodes
// over TCP with length-delimited frames) on Tokio + tokio-util, for
// bench/peer-compare.sh to set against weft's bench/peer-bench, which runs
// the same workload on weft's peer layer (include/weft/peer.h) with the
// same framing and handshake.
//
//   tokio-peer-bench [--mode pair|broadcast] [--size S] [--count M]
//                    [--workers W] [--peers P]
//
// A node is what a gossip node built the idiomatic Tokio way has:
//  - a TcpListener accept task on 127.0.0.1 (kernel-picked port);
//  - per connection, a reader task: FramedRead with LengthDelimitedCodec
//    (4-byte big-endian length, frames up to 8 MiB) that pushes each
//    message (BytesMut) with the sender's node id into the node's event
//    channel (tokio mpsc, bounded, 4096);
//  - per peer a send queue (tokio mpsc, bounded, 1024, of Bytes) and a
//    writer task that takes messages from it and writes them with
//    FramedWrite: feed (no flush) while the queue has more, flush when it
//    is empty;
//  - a peer table (a Mutex'd Vec, read by every send): sending to a peer or
//    broadcasting to all is try_send into each queue under the lock, and,
//    for queues that are full, a send().await after it (so no message is
//    dropped and each peer's order holds).
// Handshake, right after connect: each side sends one 16-byte frame,
// b"WEFT", version u8 = 1, type u8 (1 hello, 2 welcome), listen port u16
// big-endian, node id u64 big-endian; the dialer sends hello, the acceptor
// answers welcome; then messages flow.
//
// Modes (all nodes in this process, one multi-threaded runtime of W
// workers, default the online CPUs):
//  - pair: nodes A and B; A dials B; A sends M messages of S bytes to B
//    through its send queue (waiting for room when it is full); B's event
//    consumer checks their order and contents and records the latency.
//  - broadcast: node A and P receiver nodes (default 10), A dials each; A
//    broadcasts each message (one shared Bytes) to all; every receiver
//    checks and records; throughput counts deliveries (P * M).
// A message (S >= 16), as bench/peer-bench.c makes it: bytes 0..8 the
// sequence number (u64 little-endian, from 0), 8..16 the send time (u64
// little-endian, ns of CLOCK_MONOTONIC, taken when the message is made,
// just before it is queued), then byte i = (seq * 31 + i * 7) mod 256.
// Latency: receive time (when the consumer takes it from the event
// channel) - send time, into a log-linear histogram (bench/loadgen.h's:
// 128 buckets per power of two).
//
// Output: one line for scripts,
//   peer: mode=pair size=S count=M secs=F msgs_per_sec=F p50_us=F p99_us=F
//         errors=N
// (one line; secs from the first send to the last delivery). Exit status
// 1 on any error (handshake, frame, order, contents, a lost message: no
// message for 10 s), else 0.

use std::convert::TryInto;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

mod cli;

const NAME: &str = "tokio-peer-bench";
const MAX_FRAME: usize = 8 << 20;
const EVENT_QUEUE: usize = 4096;
const SEND_QUEUE: usize = 1024;
const MAGIC: &[u8; 4] = b"WEFT";
const VERSION: u8 = 1;
const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const HANDSHAKE_LEN: usize = 16;
const HEADER: usize = 16; // sequence number and send time
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ERROR_REPORTS: u64 = 10;

static ERRORS: AtomicU64 = AtomicU64::new(0);
// Set once the result is in: the teardown's resets are no errors.
static DONE: AtomicBool = AtomicBool::new(false);

fn error(what: String) {
    if DONE.load(Ordering::Relaxed) {
        return;
    }
    if ERRORS.fetch_add(1, Ordering::Relaxed) < MAX_ERROR_REPORTS {
        eprintln!("{}: {}", NAME, what);
    }
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

// ------------------------------------------------------------ histogram

// bench/loadgen.h's: values below 2 * SUB ns exact, then each power of two
// cut into SUB equal buckets (< 0.8% error).
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (2 * SUB + (63 - SUB_BITS as u64) * SUB) as usize;

struct Hist {
    count: Vec<u64>,
    total: u64,
    max: u64,
}

impl Hist {
    fn new() -> Hist {
        Hist {
            count: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < 2 * SUB {
            return v as usize;
        }
        let m = 63 - v.leading_zeros();
        let shift = m - SUB_BITS;
        (2 * SUB + (m - SUB_BITS - 1) as u64 * SUB + ((v >> shift) - SUB)) as usize
    }

    // The middle of bucket idx.
    fn value(idx: usize) -> u64 {
        let idx = idx as u64;
        if idx < 2 * SUB {
            return idx;
        }
        let k = idx - 2 * SUB;
        let shift = k / SUB + 1;
        let lo = (SUB + k % SUB) << shift;
        lo + ((1u64 << shift) >> 1)
    }

    fn record(&mut self, v: u64) {
        self.count[Hist::index(v)] += 1;
        self.total += 1;
        if v > self.max {
            self.max = v;
        }
    }

    fn merge(&mut self, other: &Hist) {
        for (a, b) in self.count.iter_mut().zip(other.count.iter()) {
            *a += *b;
        }
        self.total += other.total;
        if other.max > self.max {
            self.max = other.max;
        }
    }

    // The value at quantile q (0 < q <= 1), in ns; 0 when empty.
    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64 + 0.999999) as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.count.iter().enumerate() {
            seen += *c;
            if seen >= rank {
                return Hist::value(i).min(self.max);
            }
        }
        self.max
    }
}

// ------------------------------------------------------------- messages

// Byte i (>= HEADER) of message seq: bench/peer-bench.c's pattern().
fn pattern(seq: u64, i: usize) -> u8 {
    seq.wrapping_mul(31)
        .wrapping_add((i as u64).wrapping_mul(7)) as u8
}

fn make_msg(seq: u64, size: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(size);

    b.resize(size, 0);
    for (i, x) in b.iter_mut().enumerate().skip(HEADER) {
        *x = pattern(seq, i);
    }
    b[0..8].copy_from_slice(&seq.to_le_bytes());
    b[8..16].copy_from_slice(&now_ns().to_le_bytes());
    b.freeze()
}

fn check_body(m: &[u8], seq: u64) -> bool {
    m.iter()
        .enumerate()
        .skip(HEADER)
        .all(|(i, x)| *x == pattern(seq, i))
}

fn handshake(kind: u8, port: u16, id: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(HANDSHAKE_LEN);
    b.put_slice(MAGIC);
    b.put_u8(VERSION);
    b.put_u8(kind);
    b.put_u16(port);
    b.put_u64(id);
    b.freeze()
}

// The peer's node id from its handshake frame, which must be of `kind`.
fn parse_handshake(f: &[u8], kind: u8) -> Result<u64, String> {
    if f.len() != HANDSHAKE_LEN || &f[0..4] != MAGIC || f[4] != VERSION || f[5] != kind {
        return Err(format!(
            "bad handshake frame (want type {}): {:02x?}",
            kind, f
        ));
    }
    Ok(u64::from_be_bytes(f[8..16].try_into().unwrap()))
}

// ----------------------------------------------------------------- node

type Reader = FramedRead<OwnedReadHalf, LengthDelimitedCodec>;
type Writer = FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>;
type Event = (u64, BytesMut); // (sender's node id, message)

struct Peer {
    id: u64,
    queue: mpsc::Sender<Bytes>,
}

struct Node {
    id: u64,
    port: u16,
    events: mpsc::Sender<Event>,
    peers: Mutex<Vec<Peer>>,
}

async fn reader(peer: u64, mut fr: Reader, events: mpsc::Sender<Event>) {
    while let Some(frame) = fr.next().await {
        match frame {
            Ok(m) => {
                if events.send((peer, m)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                error(format!("from node {}: {}", peer, e));
                return;
            }
        }
    }
}

// Feed while the queue has more, flush when it is empty.
async fn writer(mut queue: mpsc::Receiver<Bytes>, mut fw: Writer) {
    while let Some(m) = queue.recv().await {
        if fw.feed(m).await.is_err() {
            break;
        }
        let mut ok = true;
        while let Ok(m) = queue.try_recv() {
            if fw.feed(m).await.is_err() {
                ok = false;
                break;
            }
        }
        if !ok || fw.flush().await.is_err() {
            break;
        }
    }
}

impl Node {
    async fn start(id: u64) -> std::io::Result<(Arc<Node>, mpsc::Receiver<Event>)> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let node = Arc::new(Node {
            id,
            port: listener.local_addr()?.port(),
            events: tx,
            peers: Mutex::new(Vec::new()),
        });
        tokio::spawn(Node::accept_loop(node.clone(), listener));
        Ok((node, rx))
    }

    async fn accept_loop(node: Arc<Node>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    tokio::spawn(Node::accept_conn(node.clone(), sock));
                }
                Err(e) => {
                    error(format!("node {}: accept: {}", node.id, e));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn accept_conn(node: Arc<Node>, sock: TcpStream) {
        let _ = sock.set_nodelay(true);
        let (rd, wr) = sock.into_split();
        let mut fr = FramedRead::new(rd, codec());
        let mut fw = FramedWrite::new(wr, codec());
        let peer = match fr.next().await {
            Some(Ok(f)) => match parse_handshake(&f, HELLO) {
                Ok(id) => id,
                Err(e) => return error(format!("node {}: {}", node.id, e)),
            },
            _ => return error(format!("node {}: no hello", node.id)),
        };
        if let Err(e) = fw.send(handshake(WELCOME, node.port, node.id)).await {
            return error(format!("node {}: welcome: {}", node.id, e));
        }
        node.attach(peer, fr, fw);
    }

    // Connect to the node listening on `port`; returns its id.
    async fn dial(node: &Arc<Node>, port: u16) -> Result<u64, String> {
        let sock = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect to port {}: {}", port, e))?;
        let _ = sock.set_nodelay(true);
        let (rd, wr) = sock.into_split();
        let mut fr = FramedRead::new(rd, codec());
        let mut fw = FramedWrite::new(wr, codec());
        fw.send(handshake(HELLO, node.port, node.id))
            .await
            .map_err(|e| format!("hello: {}", e))?;
        let peer = match fr.next().await {
            Some(Ok(f)) => parse_handshake(&f, WELCOME)?,
            _ => return Err(format!("no welcome from port {}", port)),
        };
        node.attach(peer, fr, fw);
        Ok(peer)
    }

    fn attach(&self, peer: u64, fr: Reader, fw: Writer) {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        tokio::spawn(reader(peer, fr, self.events.clone()));
        tokio::spawn(writer(rx, fw));
        self.peers.lock().unwrap().push(Peer {
            id: peer,
            queue: tx,
        });
    }

    // Queue `msg` to peer `to`, or to every peer (None): try_send under
    // the table's lock, then wait for room in the queues that were full.
    // Returns the number of queues it went into.
    async fn send(&self, to: Option<u64>, msg: Bytes) -> usize {
        let mut full = Vec::new();
        let mut sent = 0;
        {
            let peers = self.peers.lock().unwrap();
            for p in peers.iter().filter(|p| to.map_or(true, |id| id == p.id)) {
                match p.queue.try_send(msg.clone()) {
                    Ok(()) => sent += 1,
                    Err(TrySendError::Full(_)) => full.push(p.queue.clone()),
                    Err(TrySendError::Closed(_)) => {}
                }
            }
        }
        for q in full {
            if q.send(msg.clone()).await.is_ok() {
                sent += 1;
            }
        }
        sent
    }
}

// ------------------------------------------------------------- workload

struct Stats {
    hist: Hist,
    received: u64,
    last_ns: u64,
}

// A receiver's event consumer: `count` messages from node `from`, in order.
async fn consume(
    mut events: mpsc::Receiver<Event>,
    me: u64,
    from: u64,
    count: u64,
    size: usize,
) -> Stats {
    let mut st = Stats {
        hist: Hist::new(),
        received: 0,
        last_ns: 0,
    };
    let mut expect = 0u64;

    while st.received < count {
        let (peer, m) = match tokio::time::timeout(IDLE_TIMEOUT, events.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                error(format!("node {}: event channel closed", me));
                break;
            }
            Err(_) => {
                error(format!(
                    "node {}: no message for {} s after {} of {}",
                    me,
                    IDLE_TIMEOUT.as_secs(),
                    st.received,
                    count
                ));
                break;
            }
        };
        let now = now_ns();
        if peer != from || m.len() != size {
            error(format!(
                "node {}: a {}-byte message from node {} (want {} bytes from {})",
                me,
                m.len(),
                peer,
                size,
                from
            ));
            continue;
        }
        let seq = u64::from_le_bytes(m[0..8].try_into().unwrap());
        let sent = u64::from_le_bytes(m[8..16].try_into().unwrap());
        if seq != expect {
            error(format!(
                "node {}: message {} where {} was due",
                me, seq, expect
            ));
        }
        expect = seq.wrapping_add(1);
        if !check_body(&m, seq) {
            error(format!(
                "node {}: message {} differs from what was sent",
                me, seq
            ));
        }
        st.hist.record(now.saturating_sub(sent));
        st.received += 1;
        st.last_ns = now;
    }
    st
}

struct Outcome {
    secs: f64,
    delivered: u64,
    hist: Hist,
}

async fn bench(broadcast: bool, size: usize, count: u64, peers: u64) -> Result<Outcome, String> {
    let (a, _a_events) = Node::start(1).await.map_err(|e| format!("listen: {}", e))?;
    let mut consumers = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..peers {
        let (node, events) = Node::start(2 + i)
            .await
            .map_err(|e| format!("listen: {}", e))?;
        let id = Node::dial(&a, node.port).await?;
        consumers.push(tokio::spawn(consume(events, id, a.id, count, size)));
        receivers.push(node);
    }
    let to = if broadcast {
        None
    } else {
        Some(receivers[0].id)
    };

    let t0 = now_ns();
    let sender = tokio::spawn(async move {
        for seq in 0..count {
            let want = if broadcast { peers as usize } else { 1 };
            let n = a.send(to, make_msg(seq, size)).await;
            if n != want {
                error(format!("message {} queued to {} of {} peers", seq, n, want));
            }
        }
        a
    });
    let a = sender.await.map_err(|e| format!("sender: {}", e))?;

    let mut out = Outcome {
        secs: 0.0,
        delivered: 0,
        hist: Hist::new(),
    };
    let mut last = t0;
    for c in consumers {
        let st = c.await.map_err(|e| format!("consumer: {}", e))?;
        out.hist.merge(&st.hist);
        out.delivered += st.received;
        last = last.max(st.last_ns);
    }
    out.secs = (last - t0) as f64 / 1e9;
    DONE.store(true, Ordering::Relaxed);
    drop(a);
    drop(receivers);
    Ok(out)
}

// ----------------------------------------------------------------- main

fn main() {
    let text = format!(
        "usage: {} [--mode pair|broadcast] [--size S] [--count M]\n\
         \x20                       [--workers W] [--peers P]\n\
         \n  --mode pair|broadcast  A to B, or A to P receivers (default pair)\
         \n  --size S               message bytes, >= 16 (default 64)\
         \n  --count M              messages A sends (default 100000)\
         \n  --workers W            runtime threads (default: online CPUs)\
         \n  --peers P              broadcast receivers (default 10)\n",
        NAME
    );
    let mut broadcast = false;
    let mut size: u64 = 64;
    let mut count: u64 = 100_000;
    let mut peers: u64 = 10;
    let mut workers = cli::online_cpus();
    let allowed = ["--mode", "--size", "--count", "--workers", "--peers"];
    for (opt, val) in cli::options(&text, &allowed) {
        match opt.as_str() {
            "--mode" => {
                broadcast = match val.as_str() {
                    "pair" => false,
                    "broadcast" => true,
                    _ => cli::usage(&text, 1),
                }
            }
            "--size" => size = cli::number(NAME, &opt, &val, HEADER as u64, MAX_FRAME as u64),
            "--count" => count = cli::number(NAME, &opt, &val, 1, 1 << 40),
            "--workers" => workers = cli::number(NAME, &opt, &val, 1, 256),
            _ => peers = cli::number(NAME, &opt, &val, 1, 1000),
        }
    }
    if !broadcast {
        peers = 1;
    }

    let rt = cli::runtime(NAME, workers);
    // On a worker, as weft's would be: block_on runs on this thread.
    let res = rt.block_on(rt.spawn(bench(broadcast, size as usize, count, peers)));
    let out = match res {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            eprintln!("{}: {}", NAME, e);
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{}: {}", NAME, e);
            std::process::exit(1);
        }
    };
    let want = count * peers;
    let errors = ERRORS.load(Ordering::Relaxed) + (want - out.delivered.min(want));
    let rate = if out.secs > 0.0 {
        out.delivered as f64 / out.secs
    } else {
        0.0
    };
    println!(
        "{}: mode={} peers={} workers={} delivered={} of {}",
        NAME,
        if broadcast { "broadcast" } else { "pair" },
        peers,
        workers,
        out.delivered,
        want
    );
    println!(
        "peer: mode={} size={} count={} secs={:.3} msgs_per_sec={:.1} p50_us={:.1} p99_us={:.1} errors={}",
        if broadcast { "broadcast" } else { "pair" },
        size,
        count,
        out.secs,
        rate,
        out.hist.quantile(0.50) as f64 / 1e3,
        out.hist.quantile(0.99) as f64 / 1e3,
        errors
    );
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(if errors > 0 { 1 } else { 0 });
}
