// SPDX-License-Identifier: MIT
//
// tokio-frame-echo-server: the idiomatic Tokio + tokio-util length-delimited
// echo server, for bench/frame-compare.sh to set against examples/frame-echo
// (weft) under the same load (bench/frame-bench).
//
//   tokio-frame-echo-server [--host ADDR] [--port N] [--workers N]
//
// The command line, output, accept loop and shutdown are server.rs's
// (shared with tokio-echo-server): the same as examples/frame-echo,
// "tokio-frame-echo-server: listening on HOST:PORT" first, default port
// 7001.
//
// One task per connection (tokio::spawn from the accept loop, TCP_NODELAY
// set) drives a Framed<TcpStream, LengthDelimitedCodec> with the codec's
// defaults, which are examples/frame-echo's: a 4-byte big-endian length,
// frames up to 8 MiB. Each frame read (StreamExt::next) is sent straight
// back (SinkExt::send: encode and flush), as examples/frame-echo sends each
// frame with a flush. A frame over the maximum or a connection that ends
// inside a frame closes that connection only (reported on stderr).

mod cli;
mod server;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

const NAME: &str = "tokio-frame-echo-server";

async fn serve(sock: TcpStream) {
    let mut framed = Framed::new(sock, LengthDelimitedCodec::new());
    while let Some(frame) = framed.next().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::ConnectionReset {
                    eprintln!("{}: connection closed: {}", NAME, e);
                }
                return;
            }
        };
        if framed.send(frame.freeze()).await.is_err() {
            return;
        }
    }
}

fn main() {
    server::run(NAME, 7001, serve);
}
