//! hyperdht message encodings and record signatures generated at test time by the pinned JS
//! `hyperdht` 6.34.0 (`tests/interop/js/gen-hyperdht-vectors.js`), reproduced byte for byte:
//! every encoding of `lib/messages.js` and `hyperdht-address` over all optional-field
//! combinations plus random instances (Rust encodes the JS bytes and decodes them to what JS
//! decodes), arbitrary cut / mutated / extended / hand-made bytes decoded exactly as JS decodes
//! or rejects them, connect()'s key-string parsing and z-base-32, and announce / unannounce /
//! mutable signatures: identical signatures from the same seed, and the same accept / reject
//! verdict as a JS storage node for tampered signatures, keys, node ids, tokens, targets,
//! records and namespaces.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use common::{hex, hex32, hex64, node_output};
use p2pswarm::crypto::{KeyPair, PublicKey};
use p2pswarm::dht::messages::{
    parse_key, z32_decode, z32_encode, Announce, ErrorCode, Firewall, Handshake, Holepunch,
    HolepunchInfo, HolepunchPayload, HyperdhtAddress, LookupRawReply, Mode, MutableGetResponse,
    MutablePutRequest, MutableSignable, NoisePayload, PeerRecord, PluginRequest, RelayInfo,
    RelayThroughInfo, SecretStreamInfo, UdxInfo,
};
use p2pswarm::dht::sign::{
    sign_announce, sign_mutable, sign_unannounce, verify_announce, verify_announce_message,
    verify_mutable, verify_unannounce,
};
use p2pswarm::encoding::{from_slice, to_vec, Decode, Encode};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// JSON accessors

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("string {k} missing in {v}"))
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("array {k} missing in {v}"))
}

fn int(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("integer {k} missing in {v}"))
}

fn boolean(v: &Value, k: &str) -> bool {
    v[k].as_bool()
        .unwrap_or_else(|| panic!("bool {k} missing in {v}"))
}

fn bytes(v: &Value, k: &str) -> Vec<u8> {
    hex(s(v, k))
}

fn opt_bytes(v: &Value, k: &str) -> Option<Vec<u8>> {
    v[k].as_str().map(hex)
}

fn pk(v: &Value, k: &str) -> PublicKey {
    PublicKey(hex32(s(v, k)))
}

fn present(v: &Value, k: &str) -> Option<Value> {
    match &v[k] {
        Value::Null => None,
        x => Some(x.clone()),
    }
}

fn addr4(v: &Value) -> SocketAddrV4 {
    SocketAddrV4::new(
        s(v, "host").parse::<Ipv4Addr>().expect("ipv4"),
        u16::try_from(int(v, "port")).expect("port"),
    )
}

fn addr6(v: &Value) -> SocketAddrV6 {
    SocketAddrV6::new(
        s(v, "host").parse::<Ipv6Addr>().expect("ipv6"),
        u16::try_from(int(v, "port")).expect("port"),
        0,
        0,
    )
}

fn addrs4(v: &Value, k: &str) -> Vec<SocketAddrV4> {
    arr(v, k).iter().map(addr4).collect()
}

fn opt_addr4(v: &Value, k: &str) -> Option<SocketAddrV4> {
    present(v, k).map(|a| addr4(&a))
}

fn opt_addrs4(v: &Value, k: &str) -> Option<Vec<SocketAddrV4>> {
    present(v, k).map(|a| a.as_array().expect("array").iter().map(addr4).collect())
}

// ---------------------------------------------------------------------------------------------
// JSON (decoder shape, see the generator's header) -> Rust messages

fn peer_of(v: &Value) -> PeerRecord {
    PeerRecord {
        public_key: pk(v, "publicKey"),
        relay_addresses: addrs4(v, "relayAddresses"),
    }
}

fn announce_of(v: &Value) -> Announce {
    Announce {
        peer: present(v, "peer").map(|p| peer_of(&p)),
        refresh: v["refresh"].as_str().map(hex32),
        signature: v["signature"].as_str().map(hex64),
        bump: int(v, "bump"),
    }
}

fn lookup_of(v: &Value) -> LookupRawReply {
    LookupRawReply {
        peers: arr(v, "peers").iter().map(peer_of).collect(),
        bump: int(v, "bump"),
    }
}

fn mutable_signable_of(v: &Value) -> MutableSignable {
    MutableSignable {
        seq: int(v, "seq"),
        value: bytes(v, "value"),
    }
}

fn mutable_put_of(v: &Value) -> MutablePutRequest {
    MutablePutRequest {
        public_key: pk(v, "publicKey"),
        seq: int(v, "seq"),
        value: bytes(v, "value"),
        signature: hex64(s(v, "signature")),
    }
}

fn mutable_get_of(v: &Value) -> MutableGetResponse {
    MutableGetResponse {
        seq: int(v, "seq"),
        value: bytes(v, "value"),
        signature: hex64(s(v, "signature")),
    }
}

fn handshake_of(v: &Value) -> Handshake {
    Handshake {
        mode: Mode(int(v, "mode")),
        noise: bytes(v, "noise"),
        peer_address: opt_addr4(v, "peerAddress"),
        relay_address: opt_addr4(v, "relayAddress"),
    }
}

fn holepunch_of(v: &Value) -> Holepunch {
    Holepunch {
        mode: Mode(int(v, "mode")),
        id: int(v, "id"),
        payload: bytes(v, "payload"),
        peer_address: opt_addr4(v, "peerAddress"),
    }
}

fn noise_payload_of(v: &Value) -> NoisePayload {
    NoisePayload {
        version: int(v, "version"),
        error: ErrorCode(int(v, "error")),
        firewall: Firewall(int(v, "firewall")),
        holepunch: present(v, "holepunch").map(|h| HolepunchInfo {
            id: int(&h, "id"),
            relays: arr(&h, "relays")
                .iter()
                .map(|r| RelayInfo {
                    relay_address: addr4(&r["relayAddress"]),
                    peer_address: addr4(&r["peerAddress"]),
                })
                .collect(),
        }),
        addresses4: addrs4(v, "addresses4"),
        addresses6: arr(v, "addresses6").iter().map(addr6).collect(),
        udx: present(v, "udx").map(|u| UdxInfo {
            version: int(&u, "version"),
            reusable_socket: boolean(&u, "reusableSocket"),
            id: int(&u, "id"),
            seq: int(&u, "seq"),
        }),
        secret_stream: present(v, "secretStream").map(|x| SecretStreamInfo {
            version: int(&x, "version"),
        }),
        // JS neither reports nor writes relayThrough flags (it writes 0).
        relay_through: present(v, "relayThrough").map(|r| RelayThroughInfo {
            version: int(&r, "version"),
            flags: 0,
            public_key: pk(&r, "publicKey"),
            token: hex32(s(&r, "token")),
        }),
        relay_addresses: opt_addrs4(v, "relayAddresses"),
    }
}

fn holepunch_payload_of(v: &Value) -> HolepunchPayload {
    HolepunchPayload {
        connected: boolean(v, "connected"),
        punching: boolean(v, "punching"),
        error: ErrorCode(int(v, "error")),
        firewall: Firewall(int(v, "firewall")),
        round: int(v, "round"),
        addresses: opt_addrs4(v, "addresses"),
        remote_address: opt_addr4(v, "remoteAddress"),
        token: v["token"].as_str().map(hex32),
        remote_token: v["remoteToken"].as_str().map(hex32),
    }
}

fn plugin_request_of(v: &Value) -> PluginRequest {
    PluginRequest {
        plugin: s(v, "plugin").to_owned(),
        version: int(v, "version"),
        command: int(v, "command"),
        value: opt_bytes(v, "value"),
    }
}

fn address_of(v: &Value) -> HyperdhtAddress {
    HyperdhtAddress {
        key: pk(v, "key"),
        nodes: opt_addrs4(v, "nodes"),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// What the JS decoder can see of a decoded Rust message (relayThrough flags are dropped).
trait JsView {
    fn js_view(self) -> Self;
}

macro_rules! plain_js_view {
    ($($t:ty),*) => { $( impl JsView for $t { fn js_view(self) -> Self { self } } )* };
}
plain_js_view!(
    PeerRecord,
    Announce,
    LookupRawReply,
    MutableSignable,
    MutablePutRequest,
    MutableGetResponse,
    Handshake,
    Holepunch,
    HolepunchPayload,
    PluginRequest,
    HyperdhtAddress
);

impl JsView for NoisePayload {
    fn js_view(mut self) -> Self {
        if let Some(r) = &mut self.relay_through {
            r.flags = 0;
        }
        self
    }
}

/// The encoder input equals the bytes; the bytes decode to what JS decodes; the decoded
/// message re-encodes to its canonical form.
fn check_vector<T>(kind: &str, e: &Value, of: fn(&Value) -> T)
where
    T: Encode + for<'a> Decode<'a> + PartialEq + std::fmt::Debug + JsView,
{
    let value = of(&e["value"]);
    let want = hex(s(e, "hex"));
    assert_eq!(value.encoded_len(), want.len(), "{kind} encoded_len: {e}");
    assert_eq!(
        ::hex::encode(to_vec(&value)),
        s(e, "hex"),
        "{kind} encode: {e}"
    );
    let decoded = from_slice::<T>(&want).unwrap_or_else(|err| panic!("{kind} decode {err}: {e}"));
    assert_eq!(decoded, of(&e["decoded"]), "{kind} decode: {e}");
    assert_eq!(
        from_slice::<T>(&to_vec(&decoded)).as_ref(),
        Ok(&decoded),
        "{kind}"
    );
}

/// Arbitrary bytes decode exactly when JS decodes them, to the same message.
fn check_decode<T>(kind: &str, e: &Value, of: fn(&Value) -> T)
where
    T: Encode + for<'a> Decode<'a> + PartialEq + std::fmt::Debug + JsView,
{
    let input = hex(s(e, "hex"));
    let got = from_slice::<T>(&input);
    match present(e, "decoded") {
        None => assert!(
            got.is_err(),
            "{kind} JS rejects but Rust decoded {got:?}: {e}"
        ),
        Some(want) => {
            let got = got.unwrap_or_else(|err| panic!("{kind} JS decodes but Rust: {err}: {e}"));
            // The re-encoding decodes to the same message.
            assert_eq!(from_slice::<T>(&to_vec(&got)).as_ref(), Ok(&got), "{kind}");
            assert_eq!(got.js_view(), of(&want), "{kind} {}: {e}", s(e, "case"));
        }
    }
}

fn dispatch(kind: &str, e: &Value, decode_only: bool) {
    macro_rules! go {
        ($of:expr) => {
            if decode_only {
                check_decode(kind, e, $of)
            } else {
                check_vector(kind, e, $of)
            }
        };
    }
    match kind {
        "peer" => go!(peer_of),
        "announce" => go!(announce_of),
        "lookupRawReply" => go!(lookup_of),
        "mutableSignable" => go!(mutable_signable_of),
        "mutablePutRequest" => go!(mutable_put_of),
        "mutableGetResponse" => go!(mutable_get_of),
        "handshake" => go!(handshake_of),
        "holepunch" => go!(holepunch_of),
        "noisePayload" => go!(noise_payload_of),
        "holepunchPayload" => go!(holepunch_payload_of),
        "pluginRequest" => go!(plugin_request_of),
        "hyperdhtAddress" => go!(address_of),
        _ => panic!("unknown kind {kind}"),
    }
}

const KINDS: [(&str, usize); 12] = [
    ("peer", 0),
    ("announce", 4),
    ("lookupRawReply", 2),
    ("mutableSignable", 0),
    ("mutablePutRequest", 0),
    ("mutableGetResponse", 0),
    ("handshake", 2),
    ("holepunch", 1),
    ("noisePayload", 7),
    ("holepunchPayload", 6),
    ("pluginRequest", 1),
    ("hyperdhtAddress", 1),
];

fn check_announces(list: &[Value], unannounce: bool) {
    let name = if unannounce { "unannounce" } else { "announce" };
    assert!(!list.is_empty());
    for e in list {
        let kp = KeyPair::from_seed(&hex32(s(e, "seed")));
        assert_eq!(kp.public_key().to_hex(), s(e, "publicKey"));
        let target = hex32(s(e, "target"));
        let node_id = hex32(s(e, "nodeId"));
        let token = hex32(s(e, "token"));
        let peer = peer_of(&e["peer"]);
        let refresh = e["refresh"].as_str().map(hex32);
        let want = hex64(s(e, "signature"));
        let (sig, ok, bad_ns) = if unannounce {
            (
                sign_unannounce(&kp, &target, &node_id, &token, &peer, refresh.as_ref()),
                verify_unannounce(&want, &target, &node_id, &token, &peer, refresh.as_ref()),
                verify_announce(&want, &target, &node_id, &token, &peer, refresh.as_ref()),
            )
        } else {
            (
                sign_announce(&kp, &target, &node_id, &token, &peer, refresh.as_ref()),
                verify_announce(&want, &target, &node_id, &token, &peer, refresh.as_ref()),
                verify_unannounce(&want, &target, &node_id, &token, &peer, refresh.as_ref()),
            )
        };
        assert_eq!(sig, want, "{name} signature: {e}");
        assert!(ok, "{name} verify: {e}");
        assert!(!bad_ns, "{name} verifies under the other namespace: {e}");

        // Rust's own rejections: a flipped bit anywhere in the signature, a wrong key, another
        // node id or token.
        for bit in [0usize, 7, 100, 255, 256, 300, 511] {
            let mut flipped = want;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let v = if unannounce {
                verify_unannounce(&flipped, &target, &node_id, &token, &peer, refresh.as_ref())
            } else {
                verify_announce(&flipped, &target, &node_id, &token, &peer, refresh.as_ref())
            };
            assert!(!v, "{name} accepted a flipped bit {bit}: {e}");
        }
        let mut wrong_key = peer.clone();
        wrong_key.public_key = *KeyPair::from_seed(&[0x5c; 32]).public_key();
        let mut other_id = node_id;
        other_id[31] ^= 0x80;
        let mut other_token = token;
        other_token[0] ^= 1;
        for (what, p, id, tok) in [
            ("wrong key", &wrong_key, &node_id, &token),
            ("other node id", &peer, &other_id, &token),
            ("other token", &peer, &node_id, &other_token),
        ] {
            let v = if unannounce {
                verify_unannounce(&want, &target, id, tok, p, refresh.as_ref())
            } else {
                verify_announce(&want, &target, id, tok, p, refresh.as_ref())
            };
            assert!(!v, "{name} accepted {what}: {e}");
        }
        // A signature made for another node id / token (by the right key) is refused.
        let for_other = if unannounce {
            sign_unannounce(
                &kp,
                &target,
                &other_id,
                &other_token,
                &peer,
                refresh.as_ref(),
            )
        } else {
            sign_announce(
                &kp,
                &target,
                &other_id,
                &other_token,
                &peer,
                refresh.as_ref(),
            )
        };
        assert!(!verify_announce_message(
            &Announce {
                peer: Some(peer.clone()),
                refresh,
                signature: Some(for_other),
                bump: 0
            },
            unannounce,
            &target,
            &node_id,
            &token
        ));

        // The JS storage node's verdicts on tampered requests.
        let checks = arr(e, "checks");
        assert!(checks.len() >= 11);
        for ch in checks {
            let value = hex(s(ch, "value"));
            let ann: Announce = from_slice(&value).unwrap_or_else(|err| panic!("{err}: {ch}"));
            let accepted = verify_announce_message(
                &ann,
                unannounce,
                &hex32(s(ch, "target")),
                &hex32(s(ch, "nodeId")),
                &hex32(s(ch, "token")),
            );
            assert_eq!(
                accepted,
                boolean(ch, "accepted"),
                "{name} check {}: {ch}",
                s(ch, "case")
            );
        }
    }
}

fn check_mutables(list: &[Value]) {
    assert!(!list.is_empty());
    for e in list {
        let kp = KeyPair::from_seed(&hex32(s(e, "seed")));
        assert_eq!(kp.public_key().to_hex(), s(e, "publicKey"));
        let seq = int(e, "seq");
        let value = bytes(e, "value");
        let want = hex64(s(e, "signature"));
        assert_eq!(
            sign_mutable(&kp, seq, &value),
            want,
            "mutable signature: {e}"
        );
        assert!(verify_mutable(&want, seq, &value, kp.public_key()));
        let put = MutablePutRequest {
            public_key: *kp.public_key(),
            seq,
            value: value.clone(),
            signature: want,
        };
        assert_eq!(::hex::encode(to_vec(&put)), s(e, "putHex"));
        for bit in [0usize, 200, 256, 511] {
            let mut flipped = want;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!verify_mutable(&flipped, seq, &value, kp.public_key()));
        }
        let other = KeyPair::from_seed(&[0x5d; 32]);
        assert!(!verify_mutable(&want, seq, &value, other.public_key()));
        for ch in arr(e, "checks") {
            let got = verify_mutable(
                &hex64(s(ch, "signature")),
                int(ch, "seq"),
                &bytes(ch, "value"),
                &pk(ch, "publicKey"),
            );
            assert_eq!(
                got,
                boolean(ch, "accepted"),
                "mutable check {}: {ch}",
                s(ch, "case")
            );
        }
    }
}

#[test]
fn rust_matches_js_hyperdht_messages_and_signatures() {
    let seed = std::env::var("P2PSWARM_HYPERDHT_VECTOR_SEED").unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        (t.as_nanos() as u64 & 0xffff_ffff_ffff).to_string()
    });
    // More random instances per kind with P2PSWARM_HYPERDHT_VECTOR_COUNT (default 40).
    let count = std::env::var("P2PSWARM_HYPERDHT_VECTOR_COUNT").unwrap_or_else(|_| "40".to_owned());
    eprintln!(
        "gen-hyperdht-vectors seed {seed} count {count} (set P2PSWARM_HYPERDHT_VECTOR_SEED and \
         _COUNT to replay)"
    );
    let out = node_output(
        "gen-hyperdht-vectors.js",
        &["--count", &count, "--seed", &seed],
    );
    let v: Value = serde_json::from_str(&out).expect("json");

    // --- every encoding: all optional-field combinations first, then random instances
    for (kind, bits) in KINDS {
        let list = arr(&v["vectors"], kind);
        assert!(list.len() > (1 << bits), "{kind}: {} vectors", list.len());
        for e in list {
            dispatch(kind, e, false);
        }
    }

    // --- arbitrary bytes
    let decodes = arr(&v, "decodes");
    assert!(decodes.len() > 12 * 2);
    let mut accepted = 0;
    for e in decodes {
        dispatch(s(e, "kind"), e, true);
        accepted += usize::from(!e["decoded"].is_null());
    }
    assert!(accepted > decodes.len() / 3 && accepted < decodes.len());

    // --- connect()'s key strings and z-base-32
    for e in arr(&v, "keyStrings") {
        let input = s(e, "input");
        let got = parse_key(input);
        match e["key"].as_str() {
            Some(k) => {
                assert_eq!(got, Ok(hex32(k)), "key string {input:?}");
                let a = HyperdhtAddress::parse(input).expect("parses");
                assert_eq!(a.key.0, hex32(k));
                assert_eq!(a.nodes, None);
            }
            None => assert!(got.is_err(), "JS rejects key string {input:?}: {got:?}"),
        }
    }
    for e in arr(&v, "z32") {
        let b = bytes(e, "bytes");
        assert_eq!(z32_encode(&b), s(e, "text"));
        assert_eq!(z32_decode(s(e, "text")), Ok(b));
    }
    for e in arr(&v, "z32Decodes") {
        let got = z32_decode(s(e, "text"));
        match e["bytes"].as_str() {
            Some(b) => assert_eq!(got, Ok(hex(b)), "z32 {e}"),
            None => assert!(got.is_err(), "z32 {e}"),
        }
    }

    // --- signatures
    check_announces(arr(&v, "announces"), false);
    check_announces(arr(&v, "unannounces"), true);
    check_mutables(arr(&v, "mutables"));
}
