//! The secret-stream conformance checklist (spec `hyperswarm.md` §10.2, items 1–25: the cases of
//! `@hyperswarm/secret-stream` 6.9.2's `test.js`), one test per item, each proving in Rust the
//! property the JS case proves. Where a case is about a JS-only mechanism (key-pair promises,
//! `autoStart`, slab memory, the `'message'` event) the doc comment says how it maps.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use common::Xorshift;
use p2pswarm::crypto::{ns, KeyPair};
use p2pswarm::noise::{Handshake, HandshakeResult, Pattern};
use p2pswarm::secret_stream::unordered::OVERHEAD;
use p2pswarm::secret_stream::{stream_id, Config, Engine, Error, Event, SecretStream};
use p2pswarm::udx::{StreamConfig, UdxSocket, UdxStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Upper bound for anything that must fail or finish: a hang is a test failure, not a timeout
/// of the whole suite.
const LIMIT: Duration = Duration::from_secs(5);

/// Raw bytes of the XX handshake messages with their `uint24` prefixes: msg1, msg2, msg3.
const MSG1_LEN: usize = 3 + 32;
const MSG2_LEN: usize = 3 + 96;
const MSG3_LEN: usize = 3 + 64;
/// The header frame: prefix + stream id (32) + secretstream header (24).
const HEADER_FRAME_LEN: usize = 3 + 56;

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("hung instead of finishing")
}

fn kp(seed: u8) -> KeyPair {
    KeyPair::from_seed(&[seed; 32])
}

/// Opens an XX pair over an in-memory pipe with the given configurations.
async fn open_pair_with<T: AsyncRead + AsyncWrite + Unpin>(
    a: T,
    b: T,
    ca: Config,
    cb: Config,
) -> (SecretStream<T>, SecretStream<T>) {
    let (a, b) = bounded(async {
        tokio::join!(
            SecretStream::handshake(a, ca),
            SecretStream::handshake(b, cb)
        )
    })
    .await;
    (a.expect("initiator opens"), b.expect("responder opens"))
}

async fn open_pair() -> (SecretStream<DuplexStream>, SecretStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(1 << 16);
    open_pair_with(a, b, Config::new(true), Config::new(false)).await
}

/// An IK handshake finished in memory (the hyperdht path), client first.
fn premade_pair() -> (HandshakeResult, HandshakeResult) {
    let server = KeyPair::generate();
    let mut i = Handshake::new(
        Pattern::IK,
        true,
        KeyPair::generate(),
        &ns::PEER_HANDSHAKE,
        Some(*server.public_key()),
    )
    .expect("client");
    let mut r =
        Handshake::new(Pattern::IK, false, server, &ns::PEER_HANDSHAKE, None).expect("server");
    r.read_message(&i.write_message(b"client payload").expect("m1"))
        .expect("server reads");
    i.read_message(&r.write_message(b"server payload").expect("m2"))
        .expect("client reads");
    (
        i.finish().expect("client done"),
        r.finish().expect("server done"),
    )
}

type Tap = Arc<Mutex<Vec<u8>>>;

fn tapped(tap: &Tap) -> Vec<u8> {
    tap.lock().expect("tap").clone()
}

/// A pipe whose bytes are recorded in each direction: `(a, b, a_to_b, b_to_a)`.
fn tapped_pipe() -> (DuplexStream, DuplexStream, Tap, Tap) {
    let (a, mid_a) = tokio::io::duplex(1 << 16);
    let (mid_b, b) = tokio::io::duplex(1 << 16);
    let (ar, aw) = tokio::io::split(mid_a);
    let (br, bw) = tokio::io::split(mid_b);
    let a_to_b = Tap::default();
    let b_to_a = Tap::default();
    tokio::spawn(relay(ar, bw, a_to_b.clone()));
    tokio::spawn(relay(br, aw, b_to_a.clone()));
    (a, b, a_to_b, b_to_a)
}

async fn relay(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, tap: Tap) {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tap.lock().expect("tap").extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A transport that reads and writes at most one byte per call.
struct OneByteAtATime<T>(T);

impl<T: AsyncRead + Unpin> AsyncRead for OneByteAtATime<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut one = [0u8; 1];
        let mut small = ReadBuf::new(&mut one);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut small))?;
        buf.put_slice(small.filled());
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for OneByteAtATime<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(1);
        Pin::new(&mut self.0).poll_write(cx, &buf[..n])
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A transport that yields `prefix` before reading from the inner one (bytes read earlier by
/// someone else, handed to the stream at start: JS `start(raw, { data })`).
struct Prefixed<T> {
    prefix: Vec<u8>,
    pos: usize,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A transport that fails on its very first read or write.
struct FailsAtOnce {
    on_read: bool,
}

fn boom() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "boom: raw stream failed")
}

impl AsyncRead for FailsAtOnce {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.on_read {
            Poll::Ready(Err(boom()))
        } else {
            Poll::Pending
        }
    }
}

impl AsyncWrite for FailsAtOnce {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.on_read {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(boom()))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ---- sans-IO helpers ----------------------------------------------------------------------

/// Moves bytes between two engines until both are quiet; returns the bytes moved `(a→b, b→a)`.
fn pump(a: &mut Engine, b: &mut Engine, now: Instant) -> (Vec<u8>, Vec<u8>) {
    let (mut ab, mut ba) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        if let Some(bytes) = a.poll_transmit() {
            moved = true;
            b.handle_input(now, &bytes);
            ab.extend_from_slice(&bytes);
        }
        if let Some(bytes) = b.poll_transmit() {
            moved = true;
            a.handle_input(now, &bytes);
            ba.extend_from_slice(&bytes);
        }
        if !moved {
            return (ab, ba);
        }
    }
}

fn events(e: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

fn messages(e: &mut Engine) -> Vec<Vec<u8>> {
    events(e)
        .into_iter()
        .filter_map(|ev| match ev {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Two started engines after a full XX exchange, their `Open` events consumed.
fn open_engines(ca: &Config, cb: &Config, now: Instant) -> (Engine, Engine) {
    let mut a = Engine::new(ca).expect("a");
    let mut b = Engine::new(cb).expect("b");
    a.start(now);
    b.start(now);
    pump(&mut a, &mut b, now);
    assert!(a.is_open() && b.is_open());
    assert!(matches!(events(&mut a)[..], [Event::Open]));
    assert!(matches!(events(&mut b)[..], [Event::Open]));
    (a, b)
}

/// Plays the XX initiator by hand on `raw` up to msg3: returns the engine, msg3 and the
/// genuine header frame (neither is written).
async fn manual_initiator_until_msg3(raw: &mut DuplexStream) -> (Engine, Vec<u8>, Vec<u8>) {
    let now = Instant::now();
    let mut a = Engine::new(&Config::new(true)).expect("initiator");
    a.start(now);
    let m1 = a.poll_transmit().expect("msg1");
    assert_eq!(m1.len(), MSG1_LEN);
    raw.write_all(&m1).await.expect("write msg1");
    let mut m2 = vec![0u8; MSG2_LEN];
    bounded(raw.read_exact(&mut m2)).await.expect("read msg2");
    a.handle_input(now, &m2);
    assert!(a.is_open());
    let out = a.poll_transmit().expect("msg3 + header");
    assert_eq!(out.len(), MSG3_LEN + HEADER_FRAME_LEN);
    (a, out[..MSG3_LEN].to_vec(), out[MSG3_LEN..].to_vec())
}

/// Whether an error is the expected one.
type ErrorCheck = fn(&Error) -> bool;

fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("len").to_le_bytes();
    let mut f = vec![len[0], len[1], len[2]];
    f.extend_from_slice(payload);
    f
}

// ---- items 1–4: open, confidentiality, TCP, fragmentation ---------------------------------

/// Item 1: two streams piped together open, and each learns (and proves) the other's static
/// public key; both agree on the handshake hash.
#[tokio::test]
async fn piped_streams_open_and_learn_each_others_public_key() {
    let (ka, kb) = (kp(0xa1), kp(0xb2));
    let (a, b) = tokio::io::duplex(1 << 16);
    let (a, b) = open_pair_with(
        a,
        b,
        Config {
            key_pair: Some(ka.clone()),
            ..Config::new(true)
        },
        Config {
            key_pair: Some(kb.clone()),
            ..Config::new(false)
        },
    )
    .await;
    assert!(a.is_initiator() && !b.is_initiator());
    assert_eq!(a.public_key(), Some(ka.public_key()));
    assert_eq!(b.public_key(), Some(kb.public_key()));
    assert_eq!(a.remote_public_key(), Some(kb.public_key()));
    assert_eq!(b.remote_public_key(), Some(ka.public_key()));
    assert!(a.handshake_hash().is_some());
    assert_eq!(a.handshake_hash(), b.handshake_hash());
}

/// Item 2: written plaintext arrives intact in both directions, and never appears in the raw
/// bytes on the wire.
#[tokio::test]
async fn plaintext_arrives_intact_and_never_appears_on_the_wire() {
    let (ra, rb, a_to_b, b_to_a) = tapped_pipe();
    let (mut a, mut b) = open_pair_with(ra, rb, Config::new(true), Config::new(false)).await;
    let hello =
        b"a plaintext that must never be visible to anyone watching the raw stream".repeat(4);
    let reply = b"and the reply is secret just the same".to_vec();
    a.send(&hello).await.expect("send");
    assert_eq!(bounded(b.recv()).await.expect("recv"), Some(hello.clone()));
    b.send(&reply).await.expect("send");
    assert_eq!(bounded(a.recv()).await.expect("recv"), Some(reply.clone()));

    let (wire_ab, wire_ba) = (tapped(&a_to_b), tapped(&b_to_a));
    assert!(wire_ab.len() > hello.len(), "the message crossed the wire");
    assert!(wire_ba.len() > reply.len(), "the reply crossed the wire");
    for (wire, text) in [(&wire_ab, &hello[..]), (&wire_ba, &reply[..])] {
        // Not even a 16-byte piece of the plaintext may show.
        for piece in text.chunks(16).filter(|p| p.len() == 16) {
            assert!(
                !wire.windows(16).any(|w| w == piece),
                "plaintext {:?} visible on the wire",
                String::from_utf8_lossy(piece)
            );
        }
    }
}

/// Item 3: works over a real TCP socket on 127.0.0.1: the initiator sends its data and ends
/// (JS `end(data)`), the responder receives it and the end, ends too, and both close.
#[tokio::test]
async fn works_over_a_real_tcp_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (client, server) = bounded(async {
        tokio::join!(TcpStream::connect(addr), async {
            listener.accept().await.map(|(s, _)| s)
        })
    })
    .await;
    let (mut a, mut b) = open_pair_with(
        client.expect("connect"),
        server.expect("accept"),
        Config::new(true),
        Config::new(false),
    )
    .await;
    a.send(b"hello over tcp").await.expect("send");
    a.end().await.expect("end");
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"hello over tcp".to_vec())
    );
    assert_eq!(bounded(b.recv()).await.expect("end"), None);
    b.end().await.expect("end");
    assert_eq!(bounded(a.recv()).await.expect("end"), None);
    for s in [&a, &b] {
        assert!(s.engine().is_local_ended() && s.engine().is_remote_ended());
        assert!(s.engine().error().is_none());
    }
}

/// Item 4: works when the raw bytes are delivered (and written) one byte at a time — the
/// handshake, a small message and a 40 000-byte message.
#[tokio::test]
async fn one_byte_at_a_time_delivery_keeps_messages_whole() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (mut a, mut b) = open_pair_with(
        OneByteAtATime(a),
        OneByteAtATime(b),
        Config::new(true),
        Config::new(false),
    )
    .await;
    let big = Xorshift::new(4).bytes(40_000);
    let ((), got) = bounded(async {
        tokio::join!(
            async {
                a.send(b"small").await.expect("send small");
                a.send(&big).await.expect("send big");
            },
            async {
                let m1 = b.recv().await.expect("recv small");
                let m2 = b.recv().await.expect("recv big");
                (m1, m2)
            }
        )
    })
    .await;
    assert_eq!(got.0, Some(b"small".to_vec()));
    assert_eq!(got.1.as_deref(), Some(&big[..]));
    b.send(b"back").await.expect("send back");
    assert_eq!(
        bounded(a.recv()).await.expect("recv"),
        Some(b"back".to_vec())
    );
}

// ---- items 5–6: late start, throughput ----------------------------------------------------

/// Item 5 (JS `autoStart: false` + `start(socket)` later): a stream made before its transport
/// exists accepts writes, sends nothing and runs no timers until started; attached to a
/// transport later, it handshakes and then delivers the buffered writes in order.
#[tokio::test]
async fn stream_started_later_buffers_writes_until_started() {
    let mut engine = Engine::new(&Config {
        timeout: Some(Duration::from_millis(100)),
        ..Config::new(true)
    })
    .expect("engine");
    let now = Instant::now();
    engine.write(now, b"first").expect("write before start");
    engine.write(now, b"second").expect("write before start");
    assert!(
        engine.transmit_buf().is_empty(),
        "nothing sent before start"
    );
    assert_eq!(engine.poll_timeout(), None, "no timer before start");
    engine.handle_timeout(now + Duration::from_secs(1));
    assert!(engine.error().is_none(), "the timeout is not armed yet");

    tokio::time::sleep(Duration::from_millis(20)).await; // the transport turns up later
    let (ra, rb) = tokio::io::duplex(1 << 16);
    let (a, b) = bounded(async {
        tokio::join!(
            SecretStream::handshake_with_engine(ra, engine),
            SecretStream::handshake(rb, Config::new(false))
        )
    })
    .await;
    let (_a, mut b) = (a.expect("late initiator opens"), b.expect("responder"));
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"first".to_vec())
    );
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"second".to_vec())
    );
}

/// Item 6: a large transfer in 64 KiB writes arrives complete and unchanged. JS sends 1 GiB;
/// this sends 64 MiB (debug builds), or 1 GiB with `P2PSWARM_SS_FULL=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_transfer_in_64_kib_writes_arrives_unchanged() {
    const CHUNK: usize = 64 * 1024;
    let total: usize = if std::env::var_os("P2PSWARM_SS_FULL").is_some() {
        1 << 30
    } else {
        64 << 20
    };
    let (mut a, mut b) = open_pair().await;
    let block = Arc::new(Xorshift::new(6).bytes(CHUNK));
    let chunks = total / CHUNK;
    let src = block.clone();
    let writer = tokio::spawn(async move {
        for i in 0..chunks {
            a.send(&rotated(&src, i)).await.expect("send");
        }
        a.end().await.expect("end");
        a
    });
    let reader = tokio::spawn(async move {
        let mut got = 0usize;
        let mut i = 0usize;
        while let Some(m) = b.recv().await.expect("recv") {
            assert_eq!(m.len(), CHUNK, "message {i} keeps its boundary");
            assert!(
                m == rotated(&block, i),
                "message {i} corrupted or out of order"
            );
            got += m.len();
            i += 1;
        }
        got
    });
    let (w, r) = tokio::join!(writer, reader);
    w.expect("writer");
    assert_eq!(r.expect("reader"), total);
}

/// Chunk `i` of the bulk transfer: the block rotated by a step of `i`, so that any loss,
/// duplication or reordering shows.
fn rotated(block: &[u8], i: usize) -> Vec<u8> {
    let r = (i * 7919) % block.len();
    let mut c = block[r..].to_vec();
    c.extend_from_slice(&block[..r]);
    c
}

// ---- items 7–9: garbage on the wire -------------------------------------------------------

/// Item 7: garbage as the handshake response errors the initiator — 65 536 zero bytes (an
/// empty Noise frame first), and a short bogus frame.
#[tokio::test]
async fn garbage_handshake_response_errors_the_initiator() {
    for garbage in [vec![0u8; 65_536], frame(&[1, 2, 3, 4, 5])] {
        let (a, mut raw) = tokio::io::duplex(1 << 17);
        let initiator = tokio::spawn(SecretStream::handshake(a, Config::new(true)));
        let mut m1 = vec![0u8; MSG1_LEN];
        bounded(raw.read_exact(&mut m1)).await.expect("msg1");
        assert_eq!(&m1[..3], &[32, 0, 0], "msg1 is a 32-byte Noise frame");
        raw.write_all(&garbage).await.expect("write garbage");
        let err = bounded(initiator)
            .await
            .expect("join")
            .expect_err("the initiator must fail");
        assert!(matches!(err, Error::Handshake(_)), "{err:?}");
        // The failed initiator wrote nothing after msg1.
        let mut rest = Vec::new();
        drop(bounded(raw.read_to_end(&mut rest)).await);
        assert!(rest.is_empty(), "no msg3 after a bad msg2");
    }
}

/// Item 8: after the handshake, a garbage frame where the header is expected errors the
/// receiver (wrong stream id; and a frame of the wrong size).
#[tokio::test]
async fn garbage_where_the_header_is_expected_errors_the_receiver() {
    let cases: [(Vec<u8>, ErrorCheck); 2] = [
        (frame(&Xorshift::new(8).bytes(56)), |e| {
            matches!(e, Error::InvalidHeader)
        }),
        (frame(&[0xee; 10]), |e| {
            matches!(e, Error::InvalidHeaderMessage(10))
        }),
    ];
    for (garbage, expected) in cases {
        let (mut raw, b) = tokio::io::duplex(1 << 16);
        let responder = tokio::spawn(SecretStream::handshake(b, Config::new(false)));
        let (_a, msg3, _header) = manual_initiator_until_msg3(&mut raw).await;
        raw.write_all(&msg3).await.expect("msg3");
        let mut b = bounded(responder)
            .await
            .expect("join")
            .expect("the responder opens after msg3");
        raw.write_all(&garbage).await.expect("garbage header");
        let err = bounded(b.recv()).await.expect_err("bad header must fail");
        assert!(expected(&err), "{err:?}");
        assert!(b.send(b"x").await.is_err(), "the stream is destroyed");
    }
}

/// Item 9: a garbage frame after a valid header (where data is expected) errors the receiver,
/// and no data is emitted.
#[tokio::test]
async fn garbage_payload_after_the_header_errors_the_receiver_without_data() {
    let cases: [(Vec<u8>, ErrorCheck); 2] = [
        (frame(&Xorshift::new(9).bytes(40)), |e| {
            matches!(e, Error::Decrypt)
        }),
        (frame(&[0xee; 5]), |e| matches!(e, Error::InvalidMessage(5))),
    ];
    for (garbage, expected) in cases {
        let (mut raw, b) = tokio::io::duplex(1 << 16);
        let responder = tokio::spawn(SecretStream::handshake(b, Config::new(false)));
        let (_a, msg3, header) = manual_initiator_until_msg3(&mut raw).await;
        raw.write_all(&msg3).await.expect("msg3");
        raw.write_all(&header).await.expect("header");
        let mut b = bounded(responder).await.expect("join").expect("opens");
        raw.write_all(&garbage).await.expect("garbage payload");
        let first = bounded(b.recv()).await;
        let err = first.expect_err("the first thing surfaced is the error, not data");
        assert!(expected(&err), "{err:?}");
        assert_eq!(b.engine().raw_bytes_read(), garbage.len() as u64 - 3);
    }
}

// ---- items 10–11: pre-made handshakes -----------------------------------------------------

/// Item 10: with pre-made handshake keys on both sides data flows, and the wire carries no
/// Noise message: each direction starts with its 59-byte header frame.
#[tokio::test]
async fn premade_handshake_keys_carry_data_with_no_noise_on_the_wire() {
    let (ci, si) = premade_pair();
    let hash = ci.hash;
    let (ra, rb, a_to_b, b_to_a) = tapped_pipe();
    let mut a = SecretStream::from_handshake(ra, ci, &Config::default());
    let mut b = SecretStream::from_handshake(rb, si, &Config::default());
    a.send(b"from a").await.expect("send");
    b.send(b"from b").await.expect("send");
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"from a".to_vec())
    );
    assert_eq!(
        bounded(a.recv()).await.expect("recv"),
        Some(b"from b".to_vec())
    );
    assert_eq!(a.handshake_hash(), Some(&hash));

    for (wire, initiator) in [(tapped(&a_to_b), true), (tapped(&b_to_a), false)] {
        assert_eq!(
            wire.len(),
            HEADER_FRAME_LEN + 3 + 17 + 6,
            "header frame and one data frame only"
        );
        assert_eq!(&wire[..3], &[56, 0, 0]);
        assert_eq!(&wire[3..35], &stream_id(&hash, initiator));
    }
}

/// Item 11 (JS `start(null, { handshake, data })`): a stream started later from a pre-made
/// handshake, given the raw bytes someone already read (header + two frames), processes them
/// and then continues live — three messages in order.
#[tokio::test]
async fn late_start_with_already_read_bytes_processes_them_then_continues_live() {
    let (ci, si) = premade_pair();
    let (ra, mut rb) = tokio::io::duplex(1 << 16);
    let mut a = SecretStream::from_handshake(ra, ci, &Config::default());
    a.send(b"one").await.expect("send");
    a.send(b"two").await.expect("send");
    // Someone else reads the raw side first: the header frame and both data frames.
    let mut early = vec![0u8; HEADER_FRAME_LEN + 2 * (3 + 17 + 3)];
    bounded(rb.read_exact(&mut early))
        .await
        .expect("early bytes");

    let mut b = SecretStream::from_handshake(
        Prefixed {
            prefix: early,
            pos: 0,
            inner: rb,
        },
        si,
        &Config::default(),
    );
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"one".to_vec())
    );
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"two".to_vec())
    );
    a.send(b"three").await.expect("send live");
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"three".to_vec())
    );
    b.send(b"and back").await.expect("send back");
    assert_eq!(
        bounded(a.recv()).await.expect("recv"),
        Some(b"and back".to_vec())
    );
}

// ---- items 12–15: destroy, raw errors, key pairs ------------------------------------------

/// Item 12: `destroy(err)` on both ends after the handshake: each stream reports exactly that
/// error (event, state, every later call) and hands nothing more to its raw stream. Rust
/// cannot push an error into a foreign `AsyncWrite`; the raw transport is released as is.
#[tokio::test]
async fn destroy_with_an_error_on_both_ends_surfaces_that_error_on_both() {
    let now = Instant::now();
    let (mut a, mut b) = open_engines(&Config::new(true), &Config::new(false), now);
    let err = Error::Io(Arc::new(io::Error::other("custom destroy reason")));
    a.write(now, b"queued then dropped").expect("write");
    a.destroy(Some(err.clone()));
    b.destroy(Some(err.clone()));
    for e in [&mut a, &mut b] {
        let evs = events(e);
        assert_eq!(evs.len(), 1, "{evs:?}");
        let Event::Destroyed(Error::Io(got)) = &evs[0] else {
            panic!("{evs:?}")
        };
        let Error::Io(orig) = &err else {
            unreachable!()
        };
        assert!(Arc::ptr_eq(got, orig), "the very same error");
        assert!(matches!(e.error(), Some(Error::Io(g)) if Arc::ptr_eq(g, orig)));
        assert!(matches!(e.write(now, b"x"), Err(Error::Io(g)) if Arc::ptr_eq(&g, orig)));
        assert!(
            e.transmit_buf().is_empty(),
            "nothing more for the raw stream"
        );
        assert!(!e.is_open());
    }

    // The async adapter: destroy on both ends, every later call fails with `Destroyed`, and
    // the raw streams see no further byte.
    let (ra, rb, a_to_b, b_to_a) = tapped_pipe();
    let (mut a, mut b) = open_pair_with(ra, rb, Config::new(true), Config::new(false)).await;
    tokio::task::yield_now().await;
    let before = (tapped(&a_to_b).len(), tapped(&b_to_a).len());
    a.destroy();
    b.destroy();
    for s in [&mut a, &mut b] {
        assert!(matches!(s.send(b"x").await, Err(Error::Destroyed)));
        assert!(matches!(s.recv().await, Err(Error::Destroyed)));
        let mut buf = [0u8; 4];
        let io = s.read(&mut buf).await.expect_err("read fails");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionAborted);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!((tapped(&a_to_b).len(), tapped(&b_to_a).len()), before);
}

/// Item 13: a raw-stream error on the very first read (or write) surfaces as the stream's
/// error, with its kind and message intact.
#[tokio::test]
async fn raw_stream_error_in_the_first_tick_is_the_stream_error() {
    for (on_read, initiator) in [(true, true), (true, false), (false, true)] {
        let err = bounded(SecretStream::handshake(
            FailsAtOnce { on_read },
            Config::new(initiator),
        ))
        .await
        .expect_err("must fail");
        let Error::Io(inner) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(inner.kind(), io::ErrorKind::ConnectionReset);
        assert!(err.to_string().contains("boom: raw stream failed"), "{err}");
        let back: io::Error = err.into();
        assert_eq!(back.kind(), io::ErrorKind::ConnectionReset);
    }
    // A pre-made stream (open at once) fails on its first read just the same.
    let (ci, _) = premade_pair();
    let mut s = SecretStream::from_handshake(FailsAtOnce { on_read: true }, ci, &Config::default());
    let err = bounded(s.recv()).await.expect_err("must fail");
    assert!(matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset));
    assert!(matches!(s.engine().error(), Some(Error::Io(_))));
}

/// Item 14 (JS key pair given as a promise): the key pair is produced asynchronously after the
/// peer already started; the peer waits, and then sees exactly that public key.
#[tokio::test]
async fn key_pair_supplied_later_is_the_one_the_remote_sees() {
    let (ra, rb) = tokio::io::duplex(1 << 16);
    let (tx, rx) = tokio::sync::oneshot::channel::<KeyPair>();
    let responder = tokio::spawn(SecretStream::handshake(rb, Config::new(false)));
    let initiator = tokio::spawn(async move {
        let key_pair = rx.await.expect("key pair");
        SecretStream::handshake(
            ra,
            Config {
                key_pair: Some(key_pair),
                ..Config::new(true)
            },
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!responder.is_finished(), "the peer waits for the key pair");
    let key_pair = kp(0x14);
    tx.send(key_pair.clone()).expect("deliver key pair");
    let a = bounded(initiator).await.expect("join").expect("initiator");
    let b = bounded(responder).await.expect("join").expect("responder");
    assert_eq!(a.public_key(), Some(key_pair.public_key()));
    assert_eq!(b.remote_public_key(), Some(key_pair.public_key()));
}

/// Item 15 (JS rejecting key-pair promise): when the key pair cannot be had, that side fails
/// with that error and releases its raw stream without writing; the peer then fails too
/// (its raw stream ended before the stream opened) instead of hanging — in either role.
#[tokio::test]
async fn failing_key_pair_source_errors_both_sides() {
    for failing_initiator in [true, false] {
        let (ra, rb) = tokio::io::duplex(1 << 16);
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<KeyPair, io::Error>>();
        let failing = tokio::spawn(async move {
            let key_pair = rx.await.expect("outcome").map_err(Error::from)?;
            SecretStream::handshake(
                ra,
                Config {
                    key_pair: Some(key_pair),
                    ..Config::new(failing_initiator)
                },
            )
            .await
        });
        let peer = tokio::spawn(SecretStream::handshake(rb, Config::new(!failing_initiator)));
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(Err(io::Error::other("no key pair today")))
            .expect("deliver failure");
        let err = bounded(failing)
            .await
            .expect("join")
            .expect_err("the side without a key pair fails");
        assert!(err.to_string().contains("no key pair today"), "{err}");
        let peer_err = bounded(peer)
            .await
            .expect("join")
            .expect_err("the peer fails too");
        assert!(matches!(peer_err, Error::EndedBeforeOpen), "{peer_err:?}");
    }
}

// ---- item 16: end ordering ----------------------------------------------------------------

/// Item 16: if B ends first and A then sends data and ends, B still receives the data; both
/// sides then close cleanly.
#[tokio::test]
async fn data_sent_after_the_remote_ended_is_still_delivered() {
    let (mut a, mut b) = open_pair().await;
    b.end().await.expect("b ends first");
    assert_eq!(bounded(a.recv()).await.expect("a sees the end"), None);
    a.send(b"late but delivered")
        .await
        .expect("a can still send");
    a.end().await.expect("a ends");
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"late but delivered".to_vec())
    );
    assert_eq!(bounded(b.recv()).await.expect("end"), None);
    for s in [&a, &b] {
        assert!(s.engine().is_local_ended() && s.engine().is_remote_ended());
        assert!(s.engine().error().is_none());
    }
}

// ---- items 17–20: timeout and keep-alive --------------------------------------------------

/// Item 17: with a 200 ms timeout the stream survives while the peer keeps sending every
/// 100 ms (for 1 s), and is destroyed with `TimedOut` 200 ms after the peer goes silent.
/// Both the configured timeout on the async stream and `set_timeout` on an open engine.
#[tokio::test(start_paused = true)]
async fn timeout_destroys_after_the_remote_goes_silent_not_while_data_flows() {
    let (ra, rb) = tokio::io::duplex(1 << 16);
    let (mut a, mut b) = open_pair_with(
        ra,
        rb,
        Config {
            timeout: Some(Duration::from_millis(200)),
            ..Config::new(true)
        },
        Config::new(false),
    )
    .await;
    let (received, ()) = tokio::join!(
        async {
            let mut n = 0;
            while n < 10 {
                let m = a.recv().await.expect("no timeout while data flows");
                assert_eq!(m, Some(vec![n]));
                n += 1;
            }
            n
        },
        async {
            for i in 0..10u8 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                b.send(&[i]).await.expect("send");
            }
        }
    );
    assert_eq!(received, 10);
    let silent_since = tokio::time::Instant::now();
    let err = a.recv().await.expect_err("times out once silent");
    assert!(matches!(err, Error::TimedOut), "{err:?}");
    let waited = silent_since.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited <= Duration::from_millis(202),
        "timed out after {waited:?}"
    );

    // The sans-IO `set_timeout` on an already open stream.
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let (mut x, mut y) = open_engines(&Config::new(true), &Config::new(false), t0);
    x.set_timeout(Some(ms(200)));
    for i in 1..=10u32 {
        let t = t0 + ms(100) * i;
        x.handle_timeout(t);
        assert!(x.error().is_none(), "alive at {i}00 ms");
        y.write(t, b"tick").expect("write");
        x.handle_input(t, &y.poll_transmit().expect("frame"));
    }
    assert_eq!(messages(&mut x).len(), 10);
    x.handle_timeout(t0 + ms(1000) + ms(199));
    assert!(x.error().is_none());
    x.handle_timeout(t0 + ms(1000) + ms(200));
    assert!(matches!(x.error(), Some(Error::TimedOut)));
}

/// Item 18: `set_keep_alive(500 ms)`: once the stream is idle for 500 ms a 20-byte empty frame
/// appears on the raw stream (sans-IO engine, and the async stream with the same setting
/// observed on a tapped pipe); a peer without keep-alive sees it as an empty message.
#[tokio::test(start_paused = true)]
async fn keep_alive_sends_a_20_byte_empty_frame_once_idle() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let (mut a, mut b) = open_engines(&Config::new(true), &Config::new(false), t0);
    a.set_keep_alive(Some(ms(500)));
    a.handle_timeout(t0 + ms(499));
    assert!(a.poll_transmit().is_none(), "not idle long enough");
    a.handle_timeout(t0 + ms(500));
    let ka = a.poll_transmit().expect("keep-alive");
    assert_eq!(ka.len(), 20);
    assert_eq!(&ka[..3], &[17, 0, 0]);
    b.handle_input(t0 + ms(500), &ka);
    assert_eq!(messages(&mut b), vec![Vec::<u8>::new()]);

    let (ra, rb, a_to_b, _) = tapped_pipe();
    let (mut a, mut b) = open_pair_with(
        ra,
        rb,
        Config {
            keep_alive: Some(ms(500)),
            ..Config::new(true)
        },
        Config::new(false),
    )
    .await;
    let handshake_bytes = MSG1_LEN + MSG3_LEN + HEADER_FRAME_LEN;
    assert!(
        tokio::time::timeout(ms(499), a.recv()).await.is_err(),
        "nothing arrives"
    );
    assert_eq!(
        tapped(&a_to_b).len(),
        handshake_bytes,
        "no frame before 500 ms"
    );
    assert!(tokio::time::timeout(ms(2), a.recv()).await.is_err());
    let wire = tapped(&a_to_b);
    assert_eq!(
        wire.len(),
        handshake_bytes + 20,
        "one 20-byte frame at 500 ms"
    );
    assert_eq!(&wire[handshake_bytes..handshake_bytes + 3], &[17, 0, 0]);
    assert_eq!(bounded(b.recv()).await.expect("recv"), Some(Vec::new()));
}

/// Item 19: setting the keep-alive again replaces the previous timer: the old interval no
/// longer fires, the new one does (reported by `poll_timeout`), never two frames per
/// interval; `None` switches it off.
#[test]
fn setting_keep_alive_again_replaces_the_previous_timer() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let (mut a, _b) = open_engines(&Config::new(true), &Config::new(false), t0);
    a.set_keep_alive(Some(ms(500)));
    assert_eq!(a.poll_timeout(), Some(t0 + ms(500)));
    a.set_keep_alive(Some(ms(1000)));
    let due = a.poll_timeout().expect("armed");
    assert!(due >= t0 + ms(1000), "the new value is in force");
    a.handle_timeout(t0 + ms(500));
    a.handle_timeout(t0 + ms(999));
    assert!(a.poll_transmit().is_none(), "the 500 ms timer is gone");
    a.handle_timeout(due);
    assert_eq!(a.poll_transmit().map(|f| f.len()), Some(20));
    // Replacing many times still yields one frame per (new) interval.
    for _ in 0..5 {
        a.set_keep_alive(Some(ms(1000)));
    }
    let next = a.poll_timeout().expect("armed");
    assert_eq!(next, due + ms(1000));
    a.handle_timeout(next);
    assert_eq!(a.poll_transmit().map(|f| f.len()), Some(20));
    a.handle_timeout(next);
    assert!(a.poll_transmit().is_none(), "one frame per interval");
    a.set_keep_alive(None);
    assert_eq!(a.poll_timeout(), None);
    a.handle_timeout(next + ms(10_000));
    assert!(a.poll_transmit().is_none(), "switched off");
}

/// Item 20: a keep-alive (and a timeout) set before `start()` is not armed before, and is
/// honoured after start.
#[test]
fn keep_alive_set_before_start_is_honoured_after_start() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut a = Engine::new(&Config::new(true)).expect("a");
    let mut b = Engine::new(&Config::new(false)).expect("b");
    a.set_keep_alive(Some(ms(500)));
    b.set_timeout(Some(ms(3000)));
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(b.poll_timeout(), None);
    a.handle_timeout(t0 + ms(10_000));
    b.handle_timeout(t0 + ms(10_000));
    assert!(a.transmit_buf().is_empty() && b.error().is_none());

    let t1 = t0 + ms(10_000);
    a.start(t1);
    b.start(t1);
    pump(&mut a, &mut b, t1);
    assert!(a.is_open() && b.is_open());
    events(&mut b);
    assert_eq!(a.poll_timeout(), Some(t1 + ms(500)));
    a.handle_timeout(t1 + ms(500));
    let ka = a.poll_transmit().expect("keep-alive after start");
    assert_eq!(ka.len(), 20);
    b.handle_input(t1 + ms(500), &ka);
    assert_eq!(b.poll_timeout(), Some(t1 + ms(3500)));
    b.handle_timeout(t1 + ms(3500));
    assert!(matches!(b.error(), Some(Error::TimedOut)));
}

// ---- items 21–22: oversized writes, owned state -------------------------------------------

/// Item 21: a 32 MiB message cannot be sent as one atomic write: `send` fails with
/// `MessageTooLarge` and not one byte of it reaches the peer, which never sees a partial or
/// oversized message. Deliberate difference from JS, which destroys both streams: the Rust
/// stream refuses the write and stays usable (see `Error::MessageTooLarge`).
#[tokio::test]
async fn a_32_mib_write_is_refused_and_nothing_reaches_the_peer() {
    let (ra, rb, a_to_b, _) = tapped_pipe();
    let (mut a, mut b) = open_pair_with(ra, rb, Config::new(true), Config::new(false)).await;
    tokio::task::yield_now().await;
    let before = tapped(&a_to_b).len();
    let huge = vec![7u8; 32 << 20];
    let err = bounded(a.send(&huge)).await.expect_err("too large");
    assert!(
        matches!(err, Error::MessageTooLarge(n) if n == 32 << 20),
        "{err:?}"
    );
    assert_eq!(
        io::Error::from(err).kind(),
        io::ErrorKind::InvalidInput,
        "an io caller sees InvalidInput"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(tapped(&a_to_b).len(), before, "nothing was written");
    a.send(b"next").await.expect("still usable");
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"next".to_vec())
    );
}

/// Item 22 (JS: keys and state are not slab-backed): the stream owns its keys and state —
/// overwriting or dropping the caller's seed, handshake result and message buffers afterwards
/// changes nothing.
#[tokio::test]
async fn stream_state_is_owned_independently_of_caller_buffers() {
    let mut seed = [0x22u8; 32];
    let key_pair = KeyPair::from_seed(&seed);
    let expected = *key_pair.public_key();
    let config = Config {
        key_pair: Some(key_pair),
        ..Config::new(true)
    };
    seed.fill(0); // the source buffer goes away
    assert_eq!(seed, [0; 32]);
    let (ra, rb) = tokio::io::duplex(1 << 16);
    let (_a, b) = open_pair_with(ra, rb, config, Config::new(false)).await;
    assert_eq!(b.remote_public_key(), Some(&expected));

    let (ci, si) = premade_pair();
    let (ra, rb) = tokio::io::duplex(1 << 16);
    let mut a = SecretStream::from_handshake(ra, ci.clone(), &Config::default());
    let mut b = SecretStream::from_handshake(rb, si.clone(), &Config::default());
    let hash = ci.hash;
    drop((ci, si)); // zeroized on drop
    let mut msg = b"owned message".to_vec();
    a.send(&msg).await.expect("send");
    msg.fill(0);
    let got = bounded(b.recv()).await.expect("recv").expect("message");
    assert_eq!(got, b"owned message");
    a.send(b"second").await.expect("send");
    assert_eq!(
        bounded(b.recv()).await.expect("recv"),
        Some(b"second".to_vec())
    );
    assert_eq!(got, b"owned message", "earlier messages are independent");
    assert_eq!(a.handshake_hash(), Some(&hash));
}

// ---- items 23–25: unordered messages over UDX ---------------------------------------------

/// Two engines opened over a real UDX stream pair on loopback: `(sockets, (a, ua), (b, ub))`.
async fn udx_engines() -> (
    (UdxSocket, UdxSocket),
    (Engine, UdxStream),
    (Engine, UdxStream),
) {
    let sa = UdxSocket::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind a");
    let sb = UdxSocket::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind b");
    let ua = sa.create_stream(1, StreamConfig::default()).expect("a");
    let ub = sb.create_stream(2, StreamConfig::default()).expect("b");
    ua.connect(2, sb.local_addr()).expect("connect a");
    ub.connect(1, sa.local_addr()).expect("connect b");
    let a = Engine::new(&Config::new(true)).expect("engine a");
    let b = Engine::new(&Config::new(false)).expect("engine b");
    let (a, b) = bounded(async { tokio::join!(open_over_udx(a, ua), open_over_udx(b, ub)) }).await;
    ((sa, sb), a, b)
}

/// Drives an engine's handshake over a UDX stream until it is open and its output is written.
async fn open_over_udx(mut engine: Engine, mut raw: UdxStream) -> (Engine, UdxStream) {
    engine.start(Instant::now());
    let mut buf = vec![0u8; 4096];
    loop {
        if let Some(out) = engine.poll_transmit() {
            raw.write_all(&out).await.expect("udx write");
        }
        if engine.is_open() {
            assert!(matches!(engine.poll_event(), Some(Event::Open)));
            return (engine, raw);
        }
        let n = raw.read(&mut buf).await.expect("udx read");
        assert!(n > 0, "udx stream ended during the handshake");
        engine.handle_input(Instant::now(), &buf[..n]);
    }
}

async fn next_datagram(raw: &UdxStream) -> Vec<u8> {
    bounded(raw.recv_message())
        .await
        .expect("udx stream still open")
}

/// Reads from `raw` into `engine` until it emits one ordered message.
async fn next_ordered(engine: &mut Engine, raw: &mut UdxStream) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    loop {
        match engine.poll_event() {
            Some(Event::Message(m)) => return m,
            Some(ev) => panic!("unexpected {ev:?}"),
            None => {}
        }
        let n = bounded(raw.read(&mut buf)).await.expect("udx read");
        assert!(n > 0, "udx stream ended");
        engine.handle_input(Instant::now(), &buf[..n]);
    }
}

/// Item 23: over UDX, unordered messages are encrypted on the way out (`seal_datagram` + UDX
/// `send_message`, which is both JS `send` and `trySend`) and delivered to the peer, which
/// decrypts them (`open_datagram`, JS `'message'`) — in both directions.
#[tokio::test]
async fn udx_unordered_messages_are_encrypted_and_delivered() {
    let (_sockets, (mut a, ua), (mut b, ub)) = udx_engines().await;
    let texts: [&[u8]; 2] = [b"sent with send()", b"sent with trySend()"];
    for t in texts {
        let d = a.seal_datagram(t).expect("seal");
        assert_eq!(d.len(), t.len() + OVERHEAD);
        assert!(!d.windows(t.len()).any(|w| w == t), "encrypted");
        ua.send_message(&d).expect("udx send");
    }
    let mut got = HashSet::new();
    for _ in 0..texts.len() {
        let wire = next_datagram(&ub).await;
        assert!(
            !texts.iter().any(|t| wire.windows(t.len()).any(|w| w == *t)),
            "no plaintext on the wire"
        );
        got.insert(b.open_datagram(&wire).expect("authentic"));
    }
    let want: HashSet<Vec<u8>> = texts.iter().map(|t| t.to_vec()).collect();
    assert_eq!(got, want);

    let d = b.seal_datagram(b"reply").expect("seal");
    ub.send_message(&d).expect("udx send");
    let wire = next_datagram(&ua).await;
    assert_eq!(a.open_datagram(&wire), Some(b"reply".to_vec()));
    // Each direction has its own key: a side cannot open what it sealed itself.
    let own = a.seal_datagram(b"mine").expect("seal");
    assert_eq!(a.open_datagram(&own), None);
    assert!(a.error().is_none() && b.error().is_none());
}

/// Item 24: datagrams shorter than 24 bytes, or failing authentication (forged, tampered,
/// sealed with the wrong direction's key), are ignored silently: nothing is delivered and the
/// stream is not harmed — a genuine datagram and ordered data still go through.
#[tokio::test]
async fn short_or_unauthentic_datagrams_are_silently_ignored() {
    let (_sockets, (mut a, mut ua), (mut b, mut ub)) = udx_engines().await;
    let genuine = a.seal_datagram(b"genuine").expect("seal");
    let mut tampered = genuine.clone();
    *tampered.last_mut().expect("byte") ^= 1;
    let wrong_direction = b.seal_datagram(b"wrong key").expect("seal");
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![1; 23],
        genuine[..23].to_vec(),
        vec![0; 24],
        vec![0x55; 64],
        tampered,
        wrong_direction,
    ];
    for d in &bad {
        ua.send_message(d).expect("udx send");
    }
    ua.send_message(&genuine).expect("udx send");
    let mut delivered = Vec::new();
    for _ in 0..=bad.len() {
        let wire = next_datagram(&ub).await;
        if let Some(m) = b.open_datagram(&wire) {
            delivered.push(m);
        }
    }
    assert_eq!(delivered, vec![b"genuine".to_vec()]);
    assert!(b.error().is_none(), "ignored, not fatal");
    assert!(b.poll_event().is_none(), "no event either");
    a.write(Instant::now(), b"ordered still works")
        .expect("write");
    ua.write_all(&a.poll_transmit().expect("frame"))
        .await
        .expect("udx write");
    assert_eq!(next_ordered(&mut b, &mut ub).await, b"ordered still works");
    b.write(Instant::now(), b"both ways").expect("write");
    ub.write_all(&b.poll_transmit().expect("frame"))
        .await
        .expect("udx write");
    assert_eq!(next_ordered(&mut a, &mut ua).await, b"both ways");
}

/// Item 25 (JS `enableSend: false`): a side that does not take unordered messages emits none —
/// datagrams reaching it never surface as events or ordered data — while it can still send
/// them and the other side still receives every one.
#[tokio::test]
async fn side_not_taking_datagrams_emits_none_while_the_other_still_receives() {
    let (_sockets, (mut a, mut ua), (mut b, mut ub)) = udx_engines().await;
    // `a` plays enableSend:false: it never opens datagrams.
    for i in 0..3u8 {
        let d = b.seal_datagram(&[i; 8]).expect("seal");
        ub.send_message(&d).expect("udx send");
    }
    let mut got = HashSet::new();
    for i in 0..3u8 {
        let d = a.seal_datagram(&[0x80 | i; 8]).expect("a can still send");
        ua.send_message(&d).expect("udx send");
    }
    for _ in 0..3 {
        got.insert(
            b.open_datagram(&next_datagram(&ub).await)
                .expect("authentic"),
        );
    }
    let want: HashSet<Vec<u8>> = (0..3u8).map(|i| vec![0x80 | i; 8]).collect();
    assert_eq!(got, want, "the other side receives every message");

    // The datagrams that reached `a` did not turn into events or ordered data.
    b.write(Instant::now(), b"ordered").expect("write");
    ub.write_all(&b.poll_transmit().expect("frame"))
        .await
        .expect("udx write");
    assert_eq!(next_ordered(&mut a, &mut ua).await, b"ordered");
    assert!(a.poll_event().is_none(), "no message event from datagrams");
    assert!(a.error().is_none());
}
