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
// loop (in block_on, as #[tokio::main] runs it) that sets TCP_NODELAY on
// each accepted socket (examples/echo-server.c does: setsockopt right after
// accept) and tokio::spawn()s one task per connection; the task reads into
// a 16 KiB buffer (weft's BUF_SIZE) and write_all()s what it got back, until
// EOF or an error. On an accept error it waits 100 ms (as weft's server
// backs off) unless the error is ECONNABORTED. It runs until killed
// (SIGTERM's default action: bench/echo-compare.sh stops it that way).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NAME: &str = "tokio-echo-server";
const BUF_SIZE: usize = 16 * 1024;

fn usage(code: i32) -> ! {
    let text = format!(
        "usage: {} [--host ADDR] [--port N] [--workers N]\n\
         \n  --host ADDR   numeric IPv4 or IPv6 address (default 127.0.0.1)\
         \n  --port N      TCP port; 0 lets the kernel pick (default 7000)\
         \n  --workers N   worker threads (default: online CPUs)\n\
         \nRuns until killed.\n",
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
    rt.block_on(async move {
        let listener = match TcpListener::bind(SocketAddr::new(ip, port as u16)).await {
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
        println!("{}: listening on {}:{}", NAME, host, local);
        let _ = std::io::stdout().flush();

        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
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
    });
}
