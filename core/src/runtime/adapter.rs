//! The only file of the runtime layer that knows the shape of [`crate::swarm`]: it maps the
//! swarm API of the core onto what the handle layer needs, so that a change of the swarm API
//! touches this file alone.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{Error, JoinOptions, PeerInfo, SwarmOptions, TopicStatus};
use crate::crypto::{KeyPair, PublicKey};
use crate::dht::Dht;
use crate::rpc::driver::DhtConfig;
use crate::swarm;

pub(super) type Swarm = swarm::Swarm;
pub(super) type Connection = Box<swarm::SwarmConnection>;

/// What the swarm reports, in the handle layer's terms.
pub(super) enum SwarmEvent {
    Connection(Connection, PeerInfo),
    Update,
    Ban(PeerInfo),
}

pub(super) struct Events(swarm::SwarmEvents);

impl Events {
    pub(super) async fn next(&mut self) -> Option<SwarmEvent> {
        loop {
            match self.0.next().await? {
                swarm::SwarmEvent::Connection(c, info) => {
                    return Some(SwarmEvent::Connection(c, peer_info(&info)))
                }
                swarm::SwarmEvent::Update => return Some(SwarmEvent::Update),
                swarm::SwarmEvent::Ban(info) => return Some(SwarmEvent::Ban(peer_info(&info))),
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
    }
}

pub(super) fn peer_info(p: &swarm::PeerInfo) -> PeerInfo {
    PeerInfo {
        public_key: p.public_key,
        topics: p.topics.clone(),
        prioritized: p.prioritized,
        banned: p.banned,
        explicit: p.explicit,
    }
}

fn swarm_error(e: swarm::SwarmError) -> Error {
    match e {
        swarm::SwarmError::Destroyed | swarm::SwarmError::DiscoveryDestroyed => Error::Closed,
        other => Error::InvalidArgument(other.to_string()),
    }
}

fn join_options(o: JoinOptions) -> swarm::JoinOptions {
    swarm::JoinOptions {
        server: o.server,
        client: o.client,
        limit: None,
    }
}

pub(super) fn key_pair(opts_kp: Option<&KeyPair>, seed: Option<&[u8; 32]>) -> KeyPair {
    match (opts_kp, seed) {
        (Some(kp), _) => kp.clone(),
        (None, Some(s)) => KeyPair::from_seed(s),
        (None, None) => KeyPair::generate(),
    }
}

pub(super) fn dht_config(
    bootstrap: Option<&Vec<std::net::SocketAddrV4>>,
    host: Option<Ipv4Addr>,
    port: Option<u16>,
) -> DhtConfig {
    let mut cfg = DhtConfig::default();
    if let Some(p) = port {
        cfg.port = p;
    }
    if let Some(b) = bootstrap {
        cfg.bootstrap.clone_from(b);
    }
    if let Some(h) = host {
        cfg.host = h;
    }
    cfg
}

/// Binds a DHT node and waits until it is bootstrapped.
pub(super) async fn bind_dht(
    cfg: DhtConfig,
    key_pair: KeyPair,
    ready_timeout: Duration,
) -> Result<Dht, Error> {
    let dht = Dht::bind_with_key_pair(cfg, key_pair)
        .await
        .map_err(|e| Error::Bind(e.to_string()))?;
    if tokio::time::timeout(ready_timeout, dht.ready())
        .await
        .is_err()
    {
        dht.destroy();
        return Err(Error::BootstrapTimeout);
    }
    Ok(dht)
}

pub(super) async fn create(opts: SwarmOptions) -> Result<(Swarm, Events), Error> {
    let kp = key_pair(opts.key_pair.as_ref(), opts.seed.as_ref());
    // The DHT node is bound here (not by `Swarm::new`) for the `host` option and to wait until
    // it is bootstrapped.
    let dht = bind_dht(
        dht_config(opts.bootstrap.as_ref(), opts.host, opts.port),
        kp.clone(),
        opts.ready_timeout,
    )
    .await?;
    let mut o = swarm::SwarmOptions {
        firewall: opts.firewall,
        ..swarm::SwarmOptions::default()
    };
    if let Some(n) = opts.max_peers {
        o.max_peers = n;
    }
    if let Some(n) = opts.max_parallel {
        o.max_parallel = n;
    }
    if let Some(n) = opts.max_client_connections {
        o.max_client_connections = n;
    }
    let (s, ev) = Swarm::with_dht(dht, kp, o);
    Ok((s, Events(ev)))
}

/// A topic joined on a swarm.
pub(super) type Discovery = swarm::PeerDiscovery;

#[allow(clippy::unused_async)] // `join` was async in the former swarm API
pub(super) async fn join(
    s: &Swarm,
    topic: [u8; 32],
    opts: JoinOptions,
) -> Result<Discovery, Error> {
    s.join(topic, join_options(opts)).map_err(swarm_error)
}

pub(super) async fn flushed(d: &Discovery) -> bool {
    d.flushed().await
}

pub(super) async fn refresh(d: &Discovery, opts: JoinOptions) -> Result<bool, Error> {
    d.refresh(join_options(opts)).await.map_err(swarm_error)
}

pub(super) async fn destroy_discovery(d: &Discovery) {
    d.destroy().await;
}

pub(super) fn discovery_topic(d: &Discovery) -> [u8; 32] {
    *d.topic()
}

pub(super) async fn leave(s: &Swarm, topic: [u8; 32]) {
    s.leave(topic).await;
}

pub(super) fn join_peer(s: &Swarm, key: PublicKey) {
    s.join_peer(key);
}

pub(super) fn leave_peer(s: &Swarm, key: &PublicKey) {
    s.leave_peer(key);
}

pub(super) async fn listen(s: &Swarm) -> Result<(), Error> {
    s.listen().await.map_err(swarm_error)
}

pub(super) async fn flush(s: &Swarm) -> bool {
    s.flush().await
}

pub(super) async fn suspend(s: &Swarm) -> Result<(), Error> {
    s.suspend().await;
    Ok(())
}

pub(super) async fn resume(s: &Swarm) -> Result<(), Error> {
    s.resume().await;
    Ok(())
}

pub(super) async fn destroy(s: &Swarm) {
    s.destroy().await;
}

pub(super) fn connecting(s: &Swarm) -> usize {
    s.connecting()
}

pub(super) fn connections(s: &Swarm) -> usize {
    s.connections()
}

pub(super) fn peers(s: &Swarm) -> Vec<PeerInfo> {
    s.peers().iter().map(peer_info).collect()
}

pub(super) fn peer(s: &Swarm, key: &PublicKey) -> Option<PeerInfo> {
    s.peer(key).as_ref().map(peer_info)
}

pub(super) fn status(s: &Swarm, topic: &[u8; 32]) -> Option<TopicStatus> {
    s.status(topic).map(|d| TopicStatus {
        server: d.is_server,
        client: d.is_client,
        sessions: d.sessions,
        refreshing: d.refreshing,
        suspended: d.suspended,
    })
}

pub(super) fn ban(s: &Swarm, key: &PublicKey, banned: bool) {
    s.ban(key, banned);
}

pub(super) fn dht(s: &Swarm) -> Dht {
    s.dht().clone()
}

pub(super) fn public_key(s: &Swarm) -> PublicKey {
    *s.public_key()
}

pub(super) fn connection_meta(c: &Connection) -> (PublicKey, Option<[u8; 64]>, bool) {
    (
        *c.remote_public_key(),
        c.handshake_hash().copied(),
        c.is_initiator(),
    )
}
