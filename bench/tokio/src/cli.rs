// SPDX-License-Identifier: MIT
//
// cli.rs: the command-line handling the bench/tokio programs share
// (server.rs, so tokio-echo-server and tokio-frame-echo-server, and
// tokio-peer-bench): options that each take a value, as "--opt VALUE" or
// "--opt=VALUE", and --help; and the runtime they start.

/// Print `text` (on stdout for status 0, else on stderr) and exit.
pub fn usage(text: &str, code: i32) -> ! {
    if code == 0 {
        print!("{}", text);
    } else {
        eprint!("{}", text);
    }
    std::process::exit(code);
}

/// The (option, value) pairs of the command line, in order. Each option
/// must be one of `allowed`; --help or -h prints `usage_text` and exits 0,
/// anything else (or an option without its value) prints it on stderr and
/// exits 1.
pub fn options(usage_text: &str, allowed: &[&str]) -> Vec<(String, String)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (opt, inline) = match a.find('=') {
            Some(p) if a.starts_with("--") => (&a[..p], Some(&a[p + 1..])),
            _ => (a, None),
        };
        if opt == "--help" || opt == "-h" {
            usage(usage_text, 0);
        }
        if !allowed.contains(&opt) {
            usage(usage_text, 1);
        }
        let val = match inline {
            Some(v) => v.to_string(),
            None => {
                i += 1;
                match args.get(i) {
                    Some(v) => v.clone(),
                    None => usage(usage_text, 1),
                }
            }
        };
        out.push((opt.to_string(), val));
        i += 1;
    }
    out
}

/// `s` as a number in min..=max, or exit 1 saying what `opt` wants.
pub fn number(name: &str, opt: &str, s: &str, min: u64, max: u64) -> u64 {
    match s.parse::<u64>() {
        Ok(v) if v >= min && v <= max => v,
        _ => {
            eprintln!("{}: {} wants a number in {}..{}", name, opt, min, max);
            std::process::exit(1);
        }
    }
}

/// The online CPUs: the default number of workers, as weft's.
pub fn online_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}

/// The multi-threaded runtime with `workers` worker threads and all
/// drivers (weft always has its I/O and timer drivers), or exit 1.
pub fn runtime(name: &str, workers: u64) -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers as usize)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: runtime: {}", name, e);
            std::process::exit(1);
        }
    }
}
