//! A Rust UDX endpoint speaking the line protocol of `tests/interop/js/udx-peer.js` (bulk mode),
//! so `bench/udx-bench.js` can pair Rust and JS peers in any combination.
//!
//! `udx-peer --local-id ID --remote-id RID [--host 127.0.0.1] [--bytes N] [--recv-bytes R] [--role a|b]`
//! prints `bound PORT`, reads `connect HOST:PORT` from stdin, sends N bytes of the role's
//! xorshift32 stream while receiving and checking the peer's N bytes, ends, waits for the close,
//! prints `done sent=N received=N messages=0` and, on stderr, `cpu user_us=U sys_us=S`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use p2pswarm::udx::{StreamConfig, UdxSocket};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

struct Xorshift(u32);

impl Xorshift {
    fn fill(&mut self, out: &mut [u8]) {
        let mut s = self.0;
        for b in out {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *b = s as u8;
        }
        self.0 = s;
    }
}

/// The test data: the role's xorshift32 stream, or (`--data block`, for benchmarks) a 1 MiB
/// block of it repeated, so producing and checking bytes is a memcpy/memcmp.
enum Gen {
    Stream(Xorshift),
    Block { block: Vec<u8>, pos: usize },
}

impl Gen {
    fn new(seed: u32, block: bool) -> Self {
        let mut x = Xorshift(seed);
        if block {
            let mut b = vec![0u8; 1 << 20];
            x.fill(&mut b);
            Gen::Block { block: b, pos: 0 }
        } else {
            Gen::Stream(x)
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        match self {
            Gen::Stream(x) => x.fill(out),
            Gen::Block { block, pos } => {
                let mut i = 0;
                while i < out.len() {
                    let n = (out.len() - i).min(block.len() - *pos);
                    out[i..i + n].copy_from_slice(&block[*pos..*pos + n]);
                    i += n;
                    *pos = (*pos + n) % block.len();
                }
            }
        }
    }

    /// Index of the first byte of `data` that differs from the stream (the stream advances).
    fn check(&mut self, data: &[u8], scratch: &mut [u8]) -> Option<usize> {
        if let Gen::Block { block, pos } = self {
            let mut i = 0;
            while i < data.len() {
                let n = (data.len() - i).min(block.len() - *pos);
                if data[i..i + n] != block[*pos..*pos + n] {
                    return (0..n)
                        .find(|&k| data[i + k] != block[*pos + k])
                        .map(|k| i + k);
                }
                i += n;
                *pos = (*pos + n) % block.len();
            }
            return None;
        }
        let want = &mut scratch[..data.len()];
        self.fill(want);
        (0..data.len()).find(|&i| data[i] != want[i])
    }
}

const SEED_A: u32 = 0x9E37_79B9;
const SEED_B: u32 = 0x7F4A_7C15;

struct Opts {
    local_id: u32,
    remote_id: u32,
    host: String,
    bytes: usize,
    recv_bytes: Option<usize>,
    role_a: bool,
    block: bool,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        local_id: 1,
        remote_id: 2,
        host: "127.0.0.1".into(),
        bytes: 0,
        recv_bytes: None,
        role_a: true,
        block: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--local-id" => o.local_id = val()?.parse().map_err(|e| format!("--local-id: {e}"))?,
            "--remote-id" => {
                o.remote_id = val()?.parse().map_err(|e| format!("--remote-id: {e}"))?;
            }
            "--host" => o.host = val()?,
            "--data" => o.block = val()? == "block",
            "--bytes" => o.bytes = val()?.parse().map_err(|e| format!("--bytes: {e}"))?,
            "--recv-bytes" => {
                o.recv_bytes = Some(val()?.parse().map_err(|e| format!("--recv-bytes: {e}"))?);
            }
            "--role" => o.role_a = val()? == "a",
            "--timeout-ms" | "--end-mode" => {
                val()?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// User and system CPU microseconds of this process, from /proc/self/stat.
fn cpu_us() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick_us = 10_000; // USER_HZ = 100 on Linux
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * tick_us
    };
    (get(11), get(12))
}

async fn run(o: Opts) -> Result<String, String> {
    let addr: SocketAddr = format!("{}:0", o.host)
        .parse()
        .map_err(|e| format!("host: {e}"))?;
    let sock = UdxSocket::bind(addr)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let stream = sock
        .create_stream(o.local_id, StreamConfig::default())
        .map_err(|e| e.to_string())?;
    println!("bound {}", sock.local_addr().port());
    let mut line = String::new();
    BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    let target = line
        .trim()
        .strip_prefix("connect ")
        .ok_or("expected `connect HOST:PORT`")?;
    let target: SocketAddr = target
        .parse()
        .map_err(|e| format!("connect address: {e}"))?;
    stream
        .connect(o.remote_id, target)
        .map_err(|e| e.to_string())?;

    let (mut rd, mut wr) = tokio::io::split(stream);
    let n = o.bytes;
    let (send_seed, recv_seed) = if o.role_a {
        (SEED_A, SEED_B)
    } else {
        (SEED_B, SEED_A)
    };
    let writer = async move {
        let mut gen = Gen::new(send_seed, o.block);
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0;
        while sent < n {
            let k = buf.len().min(n - sent);
            gen.fill(&mut buf[..k]);
            wr.write_all(&buf[..k])
                .await
                .map_err(|e| format!("write: {e}"))?;
            sent += k;
        }
        wr.shutdown().await.map_err(|e| format!("end: {e}"))?;
        Ok::<_, String>((sent, wr))
    };
    let reader = async move {
        let mut gen = Gen::new(recv_seed, o.block);
        let mut buf = vec![0u8; 1 << 16];
        let mut scratch = vec![0u8; 1 << 16];
        let mut got = 0usize;
        loop {
            let k = rd.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if k == 0 {
                return Ok::<_, String>((got, rd));
            }
            if let Some(i) = gen.check(&buf[..k], &mut scratch) {
                return Err(format!("mismatch at {}", got + i));
            }
            got += k;
        }
    };
    let (w, r) = tokio::join!(writer, reader);
    let ((sent, wr), (got, rd)) = (w?, r?);
    let expected = o.recv_bytes.unwrap_or(n);
    if got != expected {
        return Err(format!("error ESHORT received {got} of {expected}"));
    }
    let stream = rd.unsplit(wr);
    tokio::time::timeout(Duration::from_secs(30), stream.closed())
        .await
        .map_err(|_| "close timed out".to_string())?
        .map_err(|e| format!("error {e}"))?;
    Ok(format!("done sent={sent} received={got} messages=0"))
}

fn main() -> ExitCode {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("udx-peer: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("udx-peer: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(300), run(opts)).await });
    let (user, sys) = cpu_us();
    let code = match result {
        Ok(Ok(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            println!(
                "{}",
                if e.starts_with("error") || e.starts_with("mismatch") {
                    e
                } else {
                    format!("error {e}")
                }
            );
            ExitCode::from(1)
        }
        Err(_) => {
            println!("timeout");
            ExitCode::from(2)
        }
    };
    eprintln!("cpu user_us={user} sys_us={sys}");
    code
}
