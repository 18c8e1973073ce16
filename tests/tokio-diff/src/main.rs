// One case a line (tests/tokio-diff/gen.py), one answer a line: the frames
// in hex, each followed by a comma, then END or ERR; for an encode, the
// bytes in hex or ERR. weft_side.c answers the same lines.
use bytes::{Bytes, BytesMut};
use std::io::BufRead;
use tokio_util::codec::{length_delimited, Decoder, Encoder};

fn hex(b: &[u8]) -> String { b.iter().map(|x| format!("{:02x}", x)).collect() }
fn unhex(s: &str) -> Vec<u8> { (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i+2], 16).unwrap()).collect() }

fn main() {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split(' ').collect();
        // kind w le off strip adj max hex
        let w: usize = f[1].parse().unwrap();
        let le = f[2] == "1";
        let off: usize = f[3].parse().unwrap();
        let strip: i64 = f[4].parse().unwrap();
        let adj: isize = f[5].parse().unwrap();
        let max: usize = f[6].parse().unwrap();
        let data = if f.len() > 7 { unhex(f[7]) } else { vec![] };
        let mut b = length_delimited::Builder::new();
        b.length_field_length(w).length_field_offset(off).length_adjustment(adj).max_frame_length(max);
        if le { b.little_endian(); } else { b.big_endian(); }
        if strip >= 0 { b.num_skip(strip as usize); }
        let mut codec = b.new_codec();
        let mut out = String::new();
        if f[0] == "D" {
            let mut buf = BytesMut::from(&data[..]);
            loop {
                let before = buf.len();
                match codec.decode(&mut buf) {
                    Ok(Some(fr)) => {
                        if before - buf.len() < off + w {
                            // tokio returns a frame that ends inside its
                            // own length field; weft refuses it.
                            eprintln!("inside-header frame");
                            out.push_str("ERR"); break;
                        }
                        out.push_str(&hex(&fr)); out.push(',');
                    }
                    Ok(None) => { out.push_str("END"); break; }
                    Err(_) => { out.push_str("ERR"); break; }
                }
            }
        } else {
            let mut dst = BytesMut::new();
            match codec.encode(Bytes::from(data), &mut dst) {
                Ok(()) => out.push_str(&hex(&dst)),
                Err(_) => out.push_str("ERR"),
            }
        }
        println!("{}", out);
    }
}
