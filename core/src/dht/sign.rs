//! hyperdht hashes, targets and record signatures (spec `hyperdht.md` §1.2, §5), identical to
//! `hyperdht` 6.34.0's `lib/persistent.js` (`signAnnounce`, `signUnannounce`, `signMutable`,
//! `verifyMutable` and the storage node's checks).
//!
//! Every signature is Ed25519 over a 64-byte message `NS || H256(...)`:
//!
//! * announce: `NS_ANNOUNCE || H256(target || nodeId || token || peer || refresh?)`, where
//!   `nodeId` and `token` are the **storing** node's id and the token it issued, and `peer` is
//!   the canonical [`PeerRecord`] encoding (verifiers re-encode the decoded record);
//! * unannounce: the same with `NS_UNANNOUNCE`;
//! * mutable: `NS_MUTABLE_PUT || H256(uint seq || buffer value)`.
//!
//! Verification is libsodium's strict `crypto_sign_verify_detached` ([`crate::crypto::verify`]).

use crate::crypto::{blake2b256, blake2b256_parts, ns, verify, KeyPair, PublicKey};
use crate::encoding::{buffer_len, to_vec, uint_len, Encoder};

use super::messages::{Announce, PeerRecord};

/// hyperdht's `hash(data)`: unkeyed BLAKE2b-256.
pub fn hash(data: &[u8]) -> [u8; 32] {
    blake2b256(data)
}

/// The DHT target of a server (FIND_PEER, PEER_HANDSHAKE, PEER_HOLEPUNCH, router keys) and of
/// a mutable record: `H256(public_key)`.
pub fn public_key_target(public_key: &PublicKey) -> [u8; 32] {
    hash(&public_key.0)
}

/// The DHT target of an immutable value: `H256(value)`.
pub fn immutable_target(value: &[u8]) -> [u8; 32] {
    hash(value)
}

fn prefixed(ns: &[u8; 32], digest: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(ns);
    out[32..].copy_from_slice(digest);
    out
}

fn ann_signable(
    ns: &[u8; 32],
    target: &[u8; 32],
    node_id: &[u8; 32],
    token: &[u8; 32],
    peer_encoded: &[u8],
    refresh: Option<&[u8; 32]>,
) -> [u8; 64] {
    let refresh: &[u8] = refresh.map_or(&[], |r| r);
    prefixed(
        ns,
        &blake2b256_parts(&[target, node_id, token, peer_encoded, refresh]),
    )
}

/// The 64-byte message an announce signature covers: `NS_ANNOUNCE || H256(target || node_id ||
/// token || peer_encoded || refresh?)`. `peer_encoded` is the [`PeerRecord`] encoding.
pub fn announce_signable(
    target: &[u8; 32],
    node_id: &[u8; 32],
    token: &[u8; 32],
    peer_encoded: &[u8],
    refresh: Option<&[u8; 32]>,
) -> [u8; 64] {
    ann_signable(&ns::ANNOUNCE, target, node_id, token, peer_encoded, refresh)
}

/// The 64-byte message an unannounce signature covers: as [`announce_signable`] under
/// `NS_UNANNOUNCE`.
pub fn unannounce_signable(
    target: &[u8; 32],
    node_id: &[u8; 32],
    token: &[u8; 32],
    peer_encoded: &[u8],
    refresh: Option<&[u8; 32]>,
) -> [u8; 64] {
    ann_signable(
        &ns::UNANNOUNCE,
        target,
        node_id,
        token,
        peer_encoded,
        refresh,
    )
}

/// `Persistent.signAnnounce`: signs `peer` (and `refresh`) for the node `node_id` that issued
/// `token`, under `target`.
pub fn sign_announce(
    key_pair: &KeyPair,
    target: &[u8; 32],
    node_id: &[u8; 32],
    token: &[u8; 32],
    peer: &PeerRecord,
    refresh: Option<&[u8; 32]>,
) -> [u8; 64] {
    key_pair.sign(&announce_signable(
        target,
        node_id,
        token,
        &to_vec(peer),
        refresh,
    ))
}

/// A storage node's announce check: `signature` by `peer.public_key` over the announce
/// signable of the re-encoded `peer`, this node's id and the request's token.
pub fn verify_announce(
    signature: &[u8; 64],
    target: &[u8; 32],
    node_id: &[u8; 32],
    token: &[u8; 32],
    peer: &PeerRecord,
    refresh: Option<&[u8; 32]>,
) -> bool {
    let signable = announce_signable(target, node_id, token, &to_vec(peer), refresh);
    verify(&peer.public_key, &signable, signature)
}

/// `Persistent.signUnannounce`: as [`sign_announce`] under `NS_UNANNOUNCE` (the JS announcer
/// signs the peer record with an empty relay list).
pub fn sign_unannounce(
    key_pair: &KeyPair,
    target: &[u8; 32],
    node_id: &[u8; 32],
    token: &[u8; 32],
    peer: &PeerRecord,
    refresh: Option<&[u8; 32]>,
) -> [u8; 64] {
    key_pair.sign(&unannounce_signable(
        target,
        node_id,
        token,
        &to_vec(peer),
        refresh,
    ))
}

/// A storage node's unannounce check, as [`verify_announce`] under `NS_UNANNOUNCE`.
pub fn verify_unannounce(
    signature: &[u8; 64],
    target: &[u8; 32],
    node_id: &[u8; 32],
    token: &[u8; 32],
    peer: &PeerRecord,
    refresh: Option<&[u8; 32]>,
) -> bool {
    let signable = unannounce_signable(target, node_id, token, &to_vec(peer), refresh);
    verify(&peer.public_key, &signable, signature)
}

/// The check a storage node applies to a decoded ANNOUNCE value (`unannounce` false) or
/// UNANNOUNCE value (`unannounce` true): it needs a peer and a signature, and the signature must
/// verify for this node's id and the request's token. (An ANNOUNCE with only a refresh value
/// takes the refresh path instead and is not signed.)
pub fn verify_announce_message(
    announce: &Announce,
    unannounce: bool,
    target: &[u8; 32],
    node_id: &[u8; 32],
    token: &[u8; 32],
) -> bool {
    let (Some(peer), Some(signature)) = (&announce.peer, &announce.signature) else {
        return false;
    };
    let refresh = announce.refresh.as_ref();
    if unannounce {
        verify_unannounce(signature, target, node_id, token, peer, refresh)
    } else {
        verify_announce(signature, target, node_id, token, peer, refresh)
    }
}

/// The 64-byte message a mutable-record signature covers:
/// `NS_MUTABLE_PUT || H256(uint seq || buffer value)`.
pub fn mutable_signable(seq: u64, value: &[u8]) -> [u8; 64] {
    let mut enc = Encoder::with_capacity(uint_len(seq) + buffer_len(value.len()));
    enc.uint(seq).buffer(value);
    prefixed(&ns::MUTABLE_PUT, &hash(&enc.into_inner()))
}

/// `Persistent.signMutable(seq, value, keyPair)`.
pub fn sign_mutable(key_pair: &KeyPair, seq: u64, value: &[u8]) -> [u8; 64] {
    key_pair.sign(&mutable_signable(seq, value))
}

/// `Persistent.verifyMutable(signature, seq, value, publicKey)`.
pub fn verify_mutable(
    signature: &[u8; 64],
    seq: u64,
    value: &[u8],
    public_key: &PublicKey,
) -> bool {
    verify(public_key, &mutable_signable(seq, value), signature)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;
    use crate::crypto::{namespace, to_hex};
    use crate::dht::messages::MutableSignable;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let s: String = s.split_whitespace().collect();
        hex::decode(s).expect("hex").try_into().expect("length")
    }

    const TOPIC: &str = "8197ab16630da3b3298f75d68a4230d39e4fb4d2ef46ec65aa3eadbb6cdb3048";
    const ANNOUNCE_SIG: &str = "dbdb3bb3d950551512019ff98589284cd3e5559a865a10c31847ea8b0f8f6531\
                                b78624c5c89062e52fa3b731b7483919c0df42663840037d3d8bfde13fe80803";
    const UNANNOUNCE_SIG: &str = "d05baf6a51f035bcc1da9b882905c7aafbc5ee2ccb0a0298719ac268dc5bf7b2\
                                  07ab68be009334052adf9e52077cd23cfc88a6760278ee9f67498302f5b67608";
    const MUTABLE_SIG: &str = "563f636d6d357642b088e989ccaf880f196dc28dca9e6bc00ff9612ce20eeef5\
                               35aed98997424eb6caabd42545691df10e1ab9132748c1012c963869db33e406";

    fn kp1() -> KeyPair {
        KeyPair::from_seed(&[1; 32])
    }

    fn peer(relays: bool) -> PeerRecord {
        PeerRecord {
            public_key: *kp1().public_key(),
            relay_addresses: if relays {
                vec![SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 5)]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn section_1_key_pairs_hashes_targets_namespaces() {
        assert_eq!(
            kp1().public_key().to_hex(),
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
        );
        assert_eq!(
            KeyPair::from_seed(&[2; 32]).public_key().to_hex(),
            "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
        );
        assert_eq!(
            to_hex(&public_key_target(kp1().public_key())),
            "c5e21ab1c9f6022d81c3b25e3436cb7f1df77f9652ae3e1310c28e621dd87b4c"
        );
        assert_eq!(
            to_hex(&immutable_target(b"hello")),
            "324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf"
        );
        assert_eq!(to_hex(&hash(b"topic")), TOPIC);
        let all = namespace("hyperswarm/dht", 11);
        let table = [
            (
                0,
                "14d6d4b49214ab1033ed204976caa258bae9e1e8543b9ad1fd996a910b0c4e3a",
            ),
            (
                1,
                "f1191cd5e67b10b54a507033280ed1ff0e12278268d5679c8f93d417210d168b",
            ),
            (
                4,
                "36386adddf9f6fd60db83a6f42fc159d1146aa8644037664230aaa1f0179d497",
            ),
            (
                5,
                "ded293cd93fb395e756ecf5fff426529e72c36eacc22e5ed944d9099a2561e32",
            ),
            (
                6,
                "668e823edd5ce7f5338d68bf1161f4a3c28ce437ee2ab49efd30d99366039b1e",
            ),
            (
                10,
                "6b8a2a8623f28c6c02a1e22abe515ce31cafd9af61d4b69970639aa7eb96a8d5",
            ),
        ];
        for (i, want) in table {
            assert_eq!(to_hex(&all[i]), want, "NS {i}");
        }
        assert_eq!(ns::PEER_HANDSHAKE, all[0]);
        assert_eq!(ns::PEER_HOLEPUNCH, all[1]);
        assert_eq!(ns::ANNOUNCE, all[4]);
        assert_eq!(ns::UNANNOUNCE, all[5]);
        assert_eq!(ns::MUTABLE_PUT, all[6]);
        assert_eq!(ns::PLUGIN, all[10]);
    }

    #[test]
    fn section_5_announce_vector() {
        let target = hash(b"topic");
        let (id, token) = ([0xaa; 32], [0xbb; 32]);
        let sig = sign_announce(&kp1(), &target, &id, &token, &peer(true), None);
        assert_eq!(sig, unhex::<64>(ANNOUNCE_SIG));
        assert!(verify_announce(
            &sig,
            &target,
            &id,
            &token,
            &peer(true),
            None
        ));
        let signable = announce_signable(&target, &id, &token, &to_vec(&peer(true)), None);
        assert_eq!(signable[..32], ns::ANNOUNCE);
        assert_eq!(kp1().sign(&signable), sig);
        // Bound to the node id, the token, the record, the namespace and the refresh value.
        assert!(!verify_announce(
            &sig,
            &target,
            &[0xab; 32],
            &token,
            &peer(true),
            None
        ));
        assert!(!verify_announce(
            &sig,
            &target,
            &id,
            &[0xbc; 32],
            &peer(true),
            None
        ));
        assert!(!verify_announce(
            &sig,
            &target,
            &id,
            &token,
            &peer(false),
            None
        ));
        assert!(!verify_announce(
            &sig,
            &target,
            &id,
            &token,
            &peer(true),
            Some(&[0; 32])
        ));
        assert!(!verify_unannounce(
            &sig,
            &target,
            &id,
            &token,
            &peer(true),
            None
        ));
        let mut flipped = sig;
        flipped[17] ^= 0x04;
        assert!(!verify_announce(
            &flipped,
            &target,
            &id,
            &token,
            &peer(true),
            None
        ));
        let mut other = peer(true);
        other.public_key = *KeyPair::from_seed(&[2; 32]).public_key();
        assert!(!verify_announce(&sig, &target, &id, &token, &other, None));
        // With a refresh value.
        let r = [0x5a; 32];
        let sig_r = sign_announce(&kp1(), &target, &id, &token, &peer(true), Some(&r));
        assert!(verify_announce(
            &sig_r,
            &target,
            &id,
            &token,
            &peer(true),
            Some(&r)
        ));
        assert!(!verify_announce(
            &sig_r,
            &target,
            &id,
            &token,
            &peer(true),
            None
        ));
    }

    #[test]
    fn section_5_unannounce_vector() {
        let target = hash(b"topic");
        let (id, token) = ([0xaa; 32], [0xbb; 32]);
        let sig = sign_unannounce(&kp1(), &target, &id, &token, &peer(false), None);
        assert_eq!(sig, unhex::<64>(UNANNOUNCE_SIG));
        assert!(verify_unannounce(
            &sig,
            &target,
            &id,
            &token,
            &peer(false),
            None
        ));
        assert!(!verify_announce(
            &sig,
            &target,
            &id,
            &token,
            &peer(false),
            None
        ));
        let ann = Announce {
            peer: Some(peer(false)),
            signature: Some(sig),
            ..Announce::default()
        };
        assert!(verify_announce_message(&ann, true, &target, &id, &token));
        assert!(!verify_announce_message(&ann, false, &target, &id, &token));
        assert!(!verify_announce_message(
            &Announce {
                signature: None,
                ..ann.clone()
            },
            true,
            &target,
            &id,
            &token
        ));
        assert!(!verify_announce_message(
            &Announce { peer: None, ..ann },
            true,
            &target,
            &id,
            &token
        ));
    }

    #[test]
    fn section_5_mutable_vector() {
        let sig = sign_mutable(&kp1(), 5, b"hello");
        assert_eq!(sig, unhex::<64>(MUTABLE_SIG));
        let pk = *kp1().public_key();
        assert!(verify_mutable(&sig, 5, b"hello", &pk));
        assert!(!verify_mutable(&sig, 6, b"hello", &pk));
        assert!(!verify_mutable(&sig, 5, b"hellp", &pk));
        assert!(!verify_mutable(
            &sig,
            5,
            b"hello",
            KeyPair::from_seed(&[2; 32]).public_key()
        ));
        let mut flipped = sig;
        flipped[63] ^= 0x01;
        assert!(!verify_mutable(&flipped, 5, b"hello", &pk));
        // The signable is over the mutableSignable encoding.
        let enc = to_vec(&MutableSignable {
            seq: 5,
            value: b"hello".to_vec(),
        });
        assert_eq!(mutable_signable(5, b"hello")[32..], hash(&enc));
        assert_eq!(mutable_signable(5, b"hello")[..32], ns::MUTABLE_PUT);
        // Large seqs use the multi-byte varint form.
        let big = sign_mutable(&kp1(), 1 << 40, b"");
        assert!(verify_mutable(&big, 1 << 40, b"", &pk));
        assert!(!verify_mutable(&big, 0, b"", &pk));
    }
}
