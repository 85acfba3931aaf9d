//! Bad input on a live stream: garbage handshakes, flipped bits, truncated frames, oversized
//! length prefixes, a wrong remote static key, a peer that vanishes. Each ends in a typed
//! error and a closed stream within a bounded time — never a panic, never a hang.

#![allow(clippy::panic, clippy::too_many_lines)]

use std::time::Duration;

use p2pswarm::crypto::KeyPair;
use p2pswarm::noise::NoiseError;
use p2pswarm::secret_stream::{Config, Error, SecretStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

const LIMIT: Duration = Duration::from_secs(10);

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("hung instead of failing")
}

/// A pipe whose bytes from `a` to `b` pass through `tamper` (offset, byte) -> Option<byte>
/// (None drops the rest and closes).
fn tampered_pipe(
    tamper: impl Fn(usize, u8) -> Option<u8> + Send + 'static,
) -> (DuplexStream, DuplexStream) {
    let (a, mid_a) = tokio::io::duplex(1 << 16);
    let (mid_b, b) = tokio::io::duplex(1 << 16);
    let (mut ar, mut aw) = tokio::io::split(mid_a);
    let (mut br, mut bw) = tokio::io::split(mid_b);
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut off = 0usize;
        'outer: loop {
            let n = match ar.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut out = Vec::with_capacity(n);
            for &byte in &buf[..n] {
                let Some(x) = tamper(off, byte) else {
                    let _ = bw.write_all(&out).await;
                    break 'outer;
                };
                out.push(x);
                off += 1;
            }
            if bw.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = bw.shutdown().await;
    });
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut br, &mut aw).await;
        let _ = aw.shutdown().await;
    });
    (a, b)
}

async fn open_over<T: AsyncRead + AsyncWrite + Unpin>(
    a: T,
    b: T,
) -> (
    Result<SecretStream<T>, Error>,
    Result<SecretStream<T>, Error>,
) {
    bounded(async {
        tokio::join!(
            SecretStream::handshake(a, Config::new(true)),
            SecretStream::handshake(b, Config::new(false))
        )
    })
    .await
}

#[tokio::test]
async fn garbage_instead_of_a_handshake() {
    let (mut raw, peer) = tokio::io::duplex(4096);
    let responder = tokio::spawn(SecretStream::handshake(peer, Config::new(false)));
    raw.write_all(&[40, 0, 0]).await.expect("w");
    raw.write_all(&[0xab; 40]).await.expect("w");
    let err = bounded(responder)
        .await
        .expect("join")
        .expect_err("must fail");
    assert!(matches!(err, Error::Handshake(_)), "{err:?}");
}

#[tokio::test]
async fn oversized_length_prefix_during_handshake() {
    let (mut raw, peer) = tokio::io::duplex(4096);
    let responder = tokio::spawn(SecretStream::handshake(peer, Config::new(false)));
    raw.write_all(&[0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .expect("w");
    let err = bounded(responder)
        .await
        .expect("join")
        .expect_err("must fail");
    assert!(matches!(err, Error::FrameTooLarge(0xff_ffff)), "{err:?}");
}

#[tokio::test]
async fn peer_closes_before_the_handshake_completes() {
    let (mut raw, peer) = tokio::io::duplex(4096);
    let responder = tokio::spawn(SecretStream::handshake(peer, Config::new(false)));
    raw.write_all(&[32, 0, 0, 1, 2]).await.expect("w");
    drop(raw);
    let err = bounded(responder)
        .await
        .expect("join")
        .expect_err("must fail");
    assert!(matches!(err, Error::EndedBeforeOpen), "{err:?}");
}

#[tokio::test]
async fn wrong_remote_static_key() {
    let (a, b) = tokio::io::duplex(4096);
    let expected = *KeyPair::generate().public_key();
    let cfg = Config {
        remote_public_key: Some(expected),
        ..Config::new(true)
    };
    let (ra, rb) = bounded(async {
        tokio::join!(
            SecretStream::handshake(a, cfg),
            SecretStream::handshake(b, Config::new(false))
        )
    })
    .await;
    let err = ra.expect_err("initiator must refuse");
    assert!(
        matches!(
            err,
            Error::Handshake(NoiseError::UnexpectedRemoteKey { .. })
        ),
        "{err:?}"
    );
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    // The responder saw its peer go away before msg3.
    assert!(rb.is_err());
}

#[tokio::test]
async fn flipped_bit_in_a_data_frame() {
    // Initiator→responder bytes: msg1 35, msg3 67, header 59, then data frames. Flip a bit
    // inside the first data frame's ciphertext.
    let (a, b) = tampered_pipe(|off, byte| {
        Some(if off == 35 + 67 + 59 + 10 {
            byte ^ 0x04
        } else {
            byte
        })
    });
    let (a, b) = open_over(a, b).await;
    let (mut a, mut b) = (a.expect("a"), b.expect("b"));
    a.send(b"this message will be corrupted on the way")
        .await
        .expect("send");
    let err = bounded(b.recv()).await.expect_err("must fail");
    assert!(matches!(err, Error::Decrypt), "{err:?}");
    // the stream stays failed
    assert!(matches!(b.send(b"x").await, Err(Error::Decrypt)));
    let mut buf = [0u8; 8];
    assert!(b.read(&mut buf).await.is_err());
}

#[tokio::test]
async fn truncated_frame_then_end_of_stream() {
    // Cut the initiator's bytes in the middle of its first data frame.
    let (a, b) = tampered_pipe(|off, byte| (off < 35 + 67 + 59 + 12).then_some(byte));
    let (a, b) = open_over(a, b).await;
    let (mut a, mut b) = (a.expect("a"), b.expect("b"));
    a.send(&[9u8; 100]).await.expect("send");
    let err = bounded(b.recv()).await.expect_err("must fail");
    assert!(matches!(err, Error::TruncatedFrame), "{err:?}");
}

#[tokio::test]
async fn data_frame_shorter_than_the_overhead() {
    let (a, b) = tampered_pipe(|_, byte| Some(byte));
    let (a, b) = open_over(a, b).await;
    let (a, mut b) = (a.expect("a"), b.expect("b"));
    // Write a raw 5-byte frame under the initiator's secret stream.
    let mut raw = a.into_inner();
    raw.write_all(&[5, 0, 0, 1, 2, 3, 4, 5])
        .await
        .expect("raw write");
    let err = bounded(b.recv()).await.expect_err("must fail");
    assert!(matches!(err, Error::InvalidMessage(5)), "{err:?}");
}
