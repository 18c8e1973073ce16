// SPDX-License-Identifier: MIT
//
// tokio-echo-server: the idiomatic Tokio TCP echo server, for
// bench/echo-compare.sh to set against examples/echo-server (weft) under the
// same load (bench/echo-client).
//
//   tokio-echo-server [--host ADDR] [--port N] [--workers N]
//
// The same command line and output as examples/echo-server: --port 0 lets
// the kernel pick, and the first line on stdout (flushed) is
// "tokio-echo-server: listening on HOST:PORT" with the actual port.
// --workers N: worker threads of the multi-threaded runtime (default: the
// online CPUs, as weft).
//
// What it does, as Tokio's own examples/echo.rs does: a TcpListener accept
// loop that sets TCP_NODELAY on each accepted socket (examples/echo-server.c
// does: setsockopt right after accept) and tokio::spawn()s one task per
// connection; the task reads into a 16 KiB buffer (weft's BUF_SIZE) and
// write_all()s what it got back, until EOF or an error. On an accept error
// it waits 100 ms (as weft's server backs off) unless the error is
// ECONNABORTED. As in weft's server, the accept loop is a task on a worker
// (not block_on on the main thread) and the main thread waits in sigwait()
// for SIGINT or SIGTERM; then it shuts the runtime down (no drain: open
// connections are closed), prints the connections served and exits 0.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NAME: &str = "tokio-echo-server";
const BUF_SIZE: usize = 16 * 1024;

static SERVED: AtomicU64 = AtomicU64::new(0); // connections accepted

fn usage(code: i32) -> ! {
    let text = format!(
        "usage: {} [--host ADDR] [--port N] [--workers N]\n\
         \n  --host ADDR   numeric IPv4 or IPv6 address (default 127.0.0.1)\
         \n  --port N      TCP port; 0 lets the kernel pick (default 7000)\
         \n  --workers N   worker threads (default: online CPUs)\n\
         \nRuns until SIGINT or SIGTERM.\n",
        NAME
    );
    if code == 0 {
        print!("{}", text);
    } else {
        eprint!("{}", text);
    }
    std::process::exit(code);
}

fn number(opt: &str, s: &str, min: u64, max: u64) -> u64 {
    match s.parse::<u64>() {
        Ok(v) if v >= min && v <= max => v,
        _ => {
            eprintln!("{}: {} wants a number in {}..{}", NAME, opt, min, max);
            std::process::exit(1);
        }
    }
}

async fn serve(mut sock: TcpStream) {
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return, // EOF, or the peer is gone
            Ok(n) => n,
        };
        if sock.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                let _ = sock.set_nodelay(true);
                SERVED.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(sock));
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
            Err(e) => {
                // Out of fds or memory: retrying at once would spin.
                eprintln!("{}: accept: {}", NAME, e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn main() {
    let mut host = String::from("127.0.0.1");
    let mut port: u64 = 7000;
    let mut workers: u64 = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);

    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (opt, inline) = match a.find('=') {
            Some(p) if a.starts_with("--") => (&a[..p], Some(&a[p + 1..])),
            _ => (a, None),
        };
        if opt == "--help" || opt == "-h" {
            usage(0);
        }
        if opt != "--host" && opt != "--port" && opt != "--workers" {
            usage(1);
        }
        let val = match inline {
            Some(v) => v.to_string(),
            None => {
                i += 1;
                match args.get(i) {
                    Some(v) => v.clone(),
                    None => usage(1),
                }
            }
        };
        match opt {
            "--host" => host = val,
            "--port" => port = number(opt, &val, 0, 65535),
            _ => workers = number(opt, &val, 1, 256),
        }
        i += 1;
    }
    let ip: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            eprintln!("{}: {}: not a numeric IPv4 or IPv6 address", NAME, host);
            std::process::exit(1);
        }
    };

    // Threads inherit the signal mask, so block first: then only the
    // sigwait() below takes SIGINT and SIGTERM (as weft's echo-common.h).
    let sigs = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers as usize)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: runtime: {}", NAME, e);
            std::process::exit(1);
        }
    };
    let listener = match rt.block_on(TcpListener::bind(SocketAddr::new(ip, port as u16))) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{}: listen on {}:{}: {}", NAME, host, port, e);
            std::process::exit(1);
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a.port(),
        Err(e) => {
            eprintln!("{}: local address: {}", NAME, e);
            std::process::exit(1);
        }
    };
    // The accept loop runs on a worker, as weft's acceptor task does.
    rt.spawn(accept_loop(listener));
    println!("{}: listening on {}:{}", NAME, host, local);
    let _ = std::io::stdout().flush();

    let mut sig: libc::c_int = 0;
    while unsafe { libc::sigwait(&sigs, &mut sig) } != 0 {}
    // No drain: the connections still open are dropped (closed).
    rt.shutdown_timeout(Duration::from_secs(1));
    println!(
        "{}: {}, served {} connections",
        NAME,
        if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" },
        SERVED.load(Ordering::Relaxed)
    );
}
