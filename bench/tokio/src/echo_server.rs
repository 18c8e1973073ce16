// SPDX-License-Identifier: MIT
//
// tokio-echo-server: the idiomatic Tokio TCP echo server, for
// bench/echo-compare.sh to set against examples/echo-server (weft) under the
// same load (bench/echo-client).
//
//   tokio-echo-server [--host ADDR] [--port N] [--workers N]
//
// The command line, output, accept loop and shutdown are server.rs's
// (shared with tokio-frame-echo-server): the same as examples/echo-server,
// "tokio-echo-server: listening on HOST:PORT" first, default port 7000.
//
// What it does, as Tokio's own examples/echo.rs does: one task per
// connection (tokio::spawn from the accept loop, TCP_NODELAY set) reads
// into a 16 KiB buffer (weft's BUF_SIZE) and write_all()s what it got back,
// until EOF or an error.

mod cli;
mod server;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BUF_SIZE: usize = 16 * 1024;

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
    server::run("tokio-echo-server", 7000, serve);
}
