// SPDX-License-Identifier: MIT
//
// server.rs: what tokio-echo-server and tokio-frame-echo-server share, the
// part of a weft example server that is not its connection handler:
//
//   NAME [--host ADDR] [--port N] [--workers N]
//
// The same command line and output as examples/echo-server and
// examples/frame-echo: --port 0 lets the kernel pick, and the first line on
// stdout (flushed) is "NAME: listening on HOST:PORT" with the actual port.
// --workers N: worker threads of the multi-threaded runtime (default: the
// online CPUs, as weft).
//
// A TcpListener accept loop that sets TCP_NODELAY on each accepted socket
// (the weft servers do: setsockopt right after accept) and tokio::spawn()s
// the handler, one task per connection. On an accept error it waits 100 ms
// (as weft's servers back off) unless the error is ECONNABORTED. As in
// weft's servers, the accept loop is a task on a worker (not block_on on
// the main thread) and the main thread waits in sigwait() for SIGINT or
// SIGTERM; then it shuts the runtime down (no drain: open connections are
// closed), prints the connections served and exits 0.

use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::cli;

static SERVED: AtomicU64 = AtomicU64::new(0); // connections accepted

async fn accept_loop<F, Fut>(name: &'static str, listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
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
                eprintln!("{}: accept: {}", name, e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Parse the command line, serve each accepted connection with `serve`
/// until SIGINT or SIGTERM, and exit the process (status 0, or 1 on a bad
/// command line or a failed start).
pub fn run<F, Fut>(name: &'static str, default_port: u16, serve: F) -> !
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let text = format!(
        "usage: {} [--host ADDR] [--port N] [--workers N]\n\
         \n  --host ADDR   numeric IPv4 or IPv6 address (default 127.0.0.1)\
         \n  --port N      TCP port; 0 lets the kernel pick (default {})\
         \n  --workers N   worker threads (default: online CPUs)\n\
         \nRuns until SIGINT or SIGTERM.\n",
        name, default_port
    );
    let mut host = String::from("127.0.0.1");
    let mut port: u64 = default_port as u64;
    let mut workers = cli::online_cpus();
    for (opt, val) in cli::options(&text, &["--host", "--port", "--workers"]) {
        match opt.as_str() {
            "--host" => host = val,
            "--port" => port = cli::number(name, &opt, &val, 0, 65535),
            _ => workers = cli::number(name, &opt, &val, 1, 256),
        }
    }
    let ip: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            eprintln!("{}: {}: not a numeric IPv4 or IPv6 address", name, host);
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

    let rt = cli::runtime(name, workers);
    let listener = match rt.block_on(TcpListener::bind(SocketAddr::new(ip, port as u16))) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{}: listen on {}:{}: {}", name, host, port, e);
            std::process::exit(1);
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a.port(),
        Err(e) => {
            eprintln!("{}: local address: {}", name, e);
            std::process::exit(1);
        }
    };
    // The accept loop runs on a worker, as weft's acceptor task does.
    rt.spawn(accept_loop(name, listener, serve));
    println!("{}: listening on {}:{}", name, host, local);
    let _ = std::io::stdout().flush();

    let mut sig: libc::c_int = 0;
    while unsafe { libc::sigwait(&sigs, &mut sig) } != 0 {}
    // No drain: the connections still open are dropped (closed).
    rt.shutdown_timeout(Duration::from_secs(1));
    println!(
        "{}: {}, served {} connections",
        name,
        if sig == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        },
        SERVED.load(Ordering::Relaxed)
    );
    std::process::exit(0);
}
