//! UDX packets (`udx::packet`) and a `udx::Socket` with one connected stream under arbitrary
//! datagrams.
//!
//! Input: the whole input is first parsed as one datagram; then it is read as a script of
//! operations `[op] ...` against a socket whose stream (local id 1) is connected to
//! `127.0.0.1:9` (remote id 2):
//! * op 0-3: a datagram: raw bytes (`[len: 2] [bytes]`), or, with op bit 4, a UDX header
//!   addressed to the stream (`[flags] [data_offset] [window: 4] [seq] [ack]` with small or full
//!   32-bit seq/ack, then `[len: 2] [rest]`), from the remote or another address;
//! * op 4: the clock advances by `[ms: 2]` and timers run;
//! * op 5: the clock jumps to the earliest timer;
//! * op 6: the application writes `[len: 2]` bytes, sends a message, reads, ends or destroys;
//! * op 7: nothing (transmits and events are drained after every op anyway).
//!
//! Properties:
//! * `Header::parse`, `Packet::parse`, `peek_id`, `sack_blocks` never panic and agree with each
//!   other: a header exactly when `is_udx`, a packet when `data_offset` fits, the payload is the
//!   datagram's tail, the header re-serialises to the first 20 bytes;
//! * the socket never panics; everything the stream transmits is a well-formed UDX packet of at
//!   most `MAX_DATAGRAM` bytes addressed to the remote with the remote's id.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use p2pswarm::udx::packet::{is_udx, peek_id, HEADER_LEN, MAGIC, MAX_DATAGRAM, VERSION};
use p2pswarm::udx::{Datagram, Header, Packet, Remote, Socket, StreamConfig};
use p2pswarm_fuzz::Input;

const LOCAL_ID: u32 = 1;
const REMOTE_ID: u32 = 2;
const MAX_OPS: usize = 256;

fn check_packet(d: &[u8]) {
    let header = Header::parse(d);
    assert_eq!(header.is_some(), is_udx(d));
    assert_eq!(peek_id(d), header.map(|h| h.id));
    let Some(h) = header else {
        assert!(Packet::parse(d).is_none());
        return;
    };
    let mut out = Vec::new();
    h.write(&mut out);
    assert_eq!(&out[..], &d[..HEADER_LEN], "header does not re-serialise");
    let fits = usize::from(h.data_offset) <= d.len() - HEADER_LEN;
    let Some(p) = Packet::parse(d) else {
        assert!(!fits, "a packet whose data_offset fits was refused");
        return;
    };
    assert!(fits);
    assert_eq!(p.header, h);
    assert_eq!(
        p.payload.len(),
        d.len() - HEADER_LEN - usize::from(h.data_offset)
    );
    assert_eq!(p.payload, &d[d.len() - p.payload.len()..]);
    let blocks = p.sack_blocks().count();
    assert!(blocks * 8 <= d.len() - HEADER_LEN);
}

fn remote_addr() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9))
}

fn u32_of(inp: &mut Input<'_>, small: bool) -> u32 {
    if small {
        u32::from(inp.byte())
    } else {
        u32::from_le_bytes(inp.array())
    }
}

/// Drains events and transmits, checking every packet the socket sends.
fn drain(sock: &mut Socket, now: Instant, buf: &mut Vec<u8>) {
    for _ in 0..1024 {
        let Some(t) = sock.poll_transmit(now, buf) else {
            break;
        };
        assert_eq!(t.dest, remote_addr(), "sent somewhere else");
        assert!(buf.len() <= MAX_DATAGRAM, "datagram of {} bytes", buf.len());
        let p = Packet::parse(buf).expect("the stream sent a malformed packet");
        assert_eq!(p.header.id, REMOTE_ID);
    }
    for _ in 0..1024 {
        if sock.poll_event().is_none() {
            break;
        }
    }
}

fn run_socket(data: &[u8]) {
    let mut inp = Input::new(data);
    let start = Instant::now();
    let mut now = start;
    let mut sock = Socket::new();
    let cfg = StreamConfig {
        recv_window: 64 * 1024,
        ..StreamConfig::default()
    };
    sock.create_stream(now, LOCAL_ID, cfg)
        .expect("create stream");
    sock.connect(
        now,
        LOCAL_ID,
        Remote {
            id: REMOTE_ID,
            addr: remote_addr(),
        },
    )
    .expect("connect");
    let mut buf = Vec::new();
    let mut ops = 0;
    while !inp.is_empty() && ops < MAX_OPS {
        ops += 1;
        let op = inp.byte();
        match op & 7 {
            0..=3 => {
                let from = if op & 0x20 == 0 {
                    remote_addr()
                } else {
                    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 7))
                };
                let d = if op & 0x10 != 0 {
                    let small = op & 0x40 != 0;
                    let h = Header {
                        flags: inp.byte(),
                        data_offset: inp.byte() % 64,
                        id: LOCAL_ID,
                        rwnd: u32_of(&mut inp, false),
                        seq: u32_of(&mut inp, small),
                        ack: u32_of(&mut inp, small),
                    };
                    let mut d = Vec::new();
                    h.write(&mut d);
                    d.extend_from_slice(inp.chunk16());
                    d
                } else {
                    inp.chunk16().to_vec()
                };
                let routed = sock.handle_datagram(now, from, &d);
                if peek_id(&d).is_some_and(|id| id != LOCAL_ID) {
                    assert_eq!(routed, Datagram::Raw);
                }
                if d.len() < HEADER_LEN || d[0] != MAGIC || d[1] != VERSION {
                    assert_eq!(routed, Datagram::Raw);
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(inp.u16()));
                sock.handle_timeout(now);
            }
            5 => {
                if let Some(t) = sock.poll_timeout() {
                    now = now.max(t);
                    sock.handle_timeout(now);
                }
            }
            6 => {
                let what = inp.byte();
                let Some(s) = sock.stream_mut(LOCAL_ID) else {
                    continue;
                };
                match what % 5 {
                    0 => {
                        let n = usize::from(inp.u16());
                        let _ = s.write(vec![what; n]);
                    }
                    1 => {
                        let _ = s.send_message(inp.chunk16().to_vec());
                    }
                    2 => while s.read().is_some() {},
                    3 => {
                        let _ = s.end();
                    }
                    _ => s.destroy(),
                }
            }
            _ => {}
        }
        drain(&mut sock, now, &mut buf);
    }
}

fuzz_target!(|data: &[u8]| {
    check_packet(data);
    run_socket(data);
});
