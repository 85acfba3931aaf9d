//! dht-rpc datagrams, node ids and round-trip tokens generated at test time by the pinned JS
//! `dht-rpc` 6.27.0 (`tests/interop/js/gen-dht-vectors.js`), reproduced byte for byte: every
//! request/response flag combination plus random ones (encode and decode), tolerant and broken
//! datagrams decoded exactly as dht-rpc decodes or drops them, ids validated against the source,
//! tokens under both secrets across rotations, and dht-rpc's token check with its
//! INVALID_TOKEN reply.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use common::{hex, hex32, node_output};
use p2pswarm::encoding::{to_vec, Encode};
use p2pswarm::rpc::message::{
    errors, node_id, validate_id, Message, Request, Response, REQUEST, RESPONSE,
};
use p2pswarm::rpc::token::Tokens;
use serde_json::Value;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing in {v}"))
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("array {k} missing in {v}"))
}

fn num(v: &Value, k: &str) -> u64 {
    s(v, k).parse().expect("decimal string")
}

fn int(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("integer {k} missing in {v}"))
}

fn boolean(v: &Value, k: &str) -> bool {
    v[k].as_bool()
        .unwrap_or_else(|| panic!("bool {k} missing in {v}"))
}

fn opt32(v: &Value, k: &str) -> Option<[u8; 32]> {
    v[k].as_str().map(hex32)
}

fn opt_bytes(v: &Value, k: &str) -> Option<Vec<u8>> {
    v[k].as_str().map(hex)
}

fn addr(v: &Value) -> SocketAddrV4 {
    SocketAddrV4::new(
        s(v, "host").parse::<Ipv4Addr>().expect("ipv4"),
        u16::try_from(int(v, "port")).expect("port"),
    )
}

fn addrs(v: &Value, k: &str) -> Vec<SocketAddrV4> {
    v[k].as_array()
        .map(|a| a.iter().map(addr).collect())
        .unwrap_or_default()
}

fn tid(v: &Value) -> u16 {
    u16::try_from(int(v, "tid")).expect("tid")
}

fn request_of(v: &Value) -> Request {
    Request {
        tid: tid(v),
        to: addr(&v["to"]),
        id: opt32(v, "id"),
        token: opt32(v, "token"),
        internal: boolean(v, "internal"),
        command: num(v, "command"),
        target: opt32(v, "target"),
        value: opt_bytes(v, "value"),
    }
}

fn response_of(v: &Value) -> Response {
    Response {
        tid: tid(v),
        to: addr(&v["to"]),
        id: opt32(v, "id"),
        token: opt32(v, "token"),
        closer_nodes: addrs(v, "closerNodes"),
        error: num(v, "error"),
        value: opt_bytes(v, "value"),
    }
}

fn check_encoding<T: Encode>(value: &T, msg: &Message, want: &[u8]) {
    assert_eq!(value.encoded_len(), want.len(), "encoded_len of {msg:?}");
    assert_eq!(to_vec(value), want, "encoding of {msg:?}");
    assert_eq!(msg.encode(), want);
    assert_eq!(Message::decode(want).as_ref(), Ok(msg), "decoding");
}

/// `(previous, current)` after `rotations` rotations of the given secrets.
fn tokens_after(v: &Value, rotations: u64) -> Tokens {
    let mut t = Tokens::from_secrets(hex32(s(v, "previous")), hex32(s(v, "current")));
    for _ in 0..rotations {
        t.rotate();
    }
    t
}

#[test]
fn rust_matches_js_dht_rpc() {
    let seed = std::env::var("P2PSWARM_DHT_VECTOR_SEED").unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        (t.as_nanos() as u64 & 0xffff_ffff_ffff).to_string()
    });
    eprintln!("gen-dht-vectors seed {seed} (set P2PSWARM_DHT_VECTOR_SEED to replay)");
    let out = node_output("gen-dht-vectors.js", &["--count", "60", "--seed", &seed]);
    let v: Value = serde_json::from_str(&out).expect("json");

    // --- requests: every flag combination, then random ones
    let requests = arr(&v, "requests");
    for (i, e) in requests.iter().enumerate() {
        let req = request_of(e);
        let want = hex(s(e, "hex"));
        assert_eq!(want[0], REQUEST);
        if i < 32 {
            assert_eq!(u64::from(want[1]), i as u64, "flag combination {i}");
            assert_eq!(req.flags(), i as u64);
        }
        check_encoding(&req, &Message::Request(req.clone()), &want);
    }

    // --- responses, and their tokens (H256k(S1, to.host))
    let responses = arr(&v, "responses");
    for (i, e) in responses.iter().enumerate() {
        let res = response_of(e);
        let want = hex(s(e, "hex"));
        assert_eq!(want[0], RESPONSE);
        if i < 32 {
            assert_eq!(u64::from(want[1]), i as u64, "flag combination {i}");
            assert_eq!(res.flags(), i as u64);
        }
        if let Some(secret) = e["tokenSecret"].as_str() {
            let t = Tokens::from_secrets([0; 32], hex32(secret));
            assert_eq!(Some(t.token(*res.to.ip())), res.token, "reply token");
        }
        check_encoding(&res, &Message::Response(res.clone()), &want);
    }

    // --- decoding as dht-rpc decodes (or drops) datagrams
    let decodes = arr(&v, "decodes");
    let mut accepted = 0usize;
    for d in decodes {
        let bytes = hex(s(d, "hex"));
        let from = addr(&d["from"]);
        let what = format!("decode case {:?} {}", s(d, "case"), s(d, "hex"));
        let got = Message::decode(&bytes);
        let r = &d["result"];
        if r.is_null() {
            assert!(got.is_err(), "{what}: JS drops it, Rust decoded {got:?}");
            continue;
        }
        accepted += 1;
        let msg = got.unwrap_or_else(|e| panic!("{what}: JS decodes it, Rust failed: {e}"));
        let valid_id = msg.id().filter(|id| validate_id(id, &from)).copied();
        assert_eq!(valid_id, opt32(r, "validId"), "{what}: validated id");
        assert_eq!(msg.tid(), tid(r), "{what}");
        assert_eq!(msg.to(), addr(&r["to"]), "{what}");
        match (&msg, s(r, "type")) {
            (Message::Request(q), "request") => {
                assert_eq!(q.token, opt32(r, "token"), "{what}");
                assert_eq!(q.internal, boolean(r, "internal"), "{what}");
                assert_eq!(q.command, num(r, "command"), "{what}");
                assert_eq!(q.target, opt32(r, "target"), "{what}");
                assert_eq!(q.value, opt_bytes(r, "value"), "{what}");
            }
            (Message::Response(p), "response") => {
                assert_eq!(p.token, opt32(r, "token"), "{what}");
                assert_eq!(p.closer_nodes, addrs(r, "closerNodes"), "{what}");
                assert_eq!(p.error, num(r, "error"), "{what}");
                assert_eq!(p.value, opt_bytes(r, "value"), "{what}");
            }
            (m, t) => panic!("{what}: JS decoded a {t}, Rust {m:?}"),
        }
        // The canonical re-encoding reads back to the same message.
        assert_eq!(Message::decode(&msg.encode()).as_ref(), Ok(&msg), "{what}");
    }
    assert!(accepted > 0 && accepted < decodes.len());

    // --- node ids
    for n in arr(&v, "nodeIds") {
        let a = addr(n);
        assert_eq!(node_id(&a), hex32(s(n, "id")), "id of {a}");
    }

    // --- tokens under both secrets, after rotations
    for t in arr(&v, "tokens") {
        let tokens = tokens_after(t, int(t, "rotations"));
        let expect =
            Tokens::from_secrets(hex32(s(t, "afterPrevious")), hex32(s(t, "afterCurrent")));
        for h in arr(t, "hosts") {
            let host: Ipv4Addr = s(h, "host").parse().expect("host");
            let cur = hex32(s(h, "current"));
            let prev = hex32(s(h, "previous"));
            assert_eq!(tokens.token(host), cur, "S1 token for {host}");
            assert_eq!(tokens.previous_token(host), prev, "S0 token for {host}");
            assert_eq!(expect.token(host), cur);
            assert_eq!(expect.previous_token(host), prev);
            assert!(tokens.verify(host, &cur) && tokens.verify(host, &prev));
        }
    }

    // --- dht-rpc's token check, and its INVALID_TOKEN reply
    let checks = arr(&v, "tokenChecks");
    let mut rejected = 0usize;
    for c in checks {
        let tokens = tokens_after(c, int(c, "rotations"));
        let from = addr(&c["from"]);
        let Ok(Message::Request(req)) = Message::decode(&hex(s(c, "request"))) else {
            panic!("token check request does not decode: {c}");
        };
        let token = req.token.expect("token check requests carry a token");
        let ok = boolean(c, "accepted");
        assert_eq!(tokens.verify(*from.ip(), &token), ok, "verify: {c}");
        if ok {
            continue;
        }
        rejected += 1;
        let reply = Response {
            tid: req.tid,
            to: from,
            id: opt32(c, "tableId"),
            token: Some(tokens.token(*from.ip())),
            closer_nodes: addrs(c, "closerNodes"),
            error: errors::INVALID_TOKEN,
            value: None,
        };
        check_encoding(
            &reply,
            &Message::Response(reply.clone()),
            &hex(s(c, "reply")),
        );
    }
    assert!(rejected > 0 && rejected < checks.len());

    eprintln!(
        "checked {} requests, {} responses, {} decodes, {} token checks",
        requests.len(),
        responses.len(),
        decodes.len(),
        checks.len()
    );
}
