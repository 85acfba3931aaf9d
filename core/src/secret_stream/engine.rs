//! The secret stream as a sans-IO state machine: bytes from the raw transport in, bytes for the
//! raw transport and events out; time is an input.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::cipher::{Pull, Push, ABYTES, HEADERBYTES, TAG_MESSAGE};
use super::unordered::Unordered;
use super::{stream_id, Error, MAX_MESSAGE_LEN};
use crate::crypto::{random_array, KeyPair, PublicKey};
use crate::noise::{Handshake, HandshakeResult, Pattern, MAX_MESSAGE_LEN as MAX_NOISE_LEN};

/// Bytes in the header frame payload: stream id (32) + secretstream header (24).
pub const HEADER_PAYLOAD_LEN: usize = 56;

/// Capacity of the outgoing buffer kept once it has been written out; a larger one is freed.
const OUT_KEEP: usize = 4096;

/// How a stream is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Whether this side initiates the Noise handshake (hyperdht: the client).
    pub is_initiator: bool,
    /// The static key pair; a fresh one is generated when `None`.
    pub key_pair: Option<KeyPair>,
    /// Handshake pattern when the stream runs its own handshake (default XX).
    pub pattern: Pattern,
    /// The peer's static key: required by an IK initiator; with XX the handshake fails if the
    /// peer proves another key (the JS stream does not check this).
    pub remote_public_key: Option<PublicKey>,
    /// Send an empty message after this long without writing (hyperdht uses 5 s).
    pub keep_alive: Option<Duration>,
    /// Fail with [`Error::TimedOut`] after this long without receiving raw bytes.
    pub timeout: Option<Duration>,
    /// Drop received empty messages (always on when `keep_alive` is set).
    pub filter_zero_byte_messages: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            is_initiator: true,
            key_pair: None,
            pattern: Pattern::XX,
            remote_public_key: None,
            keep_alive: None,
            timeout: None,
            filter_zero_byte_messages: false,
        }
    }
}

impl Config {
    /// A default configuration for the given role.
    pub fn new(is_initiator: bool) -> Self {
        Self {
            is_initiator,
            ..Self::default()
        }
    }
}

/// The random inputs of a stream, injectable for known-answer tests.
#[derive(Debug, Clone)]
pub struct Randomness {
    /// Ephemeral Noise key pair (unused with a pre-made handshake).
    pub ephemeral: KeyPair,
    /// The secretstream header of the sending direction.
    pub header: [u8; HEADERBYTES],
    /// Initial counter of unordered datagrams.
    pub send_counter: [u8; 8],
}

impl Randomness {
    /// Fresh values from the operating system.
    pub fn os() -> Self {
        Self {
            ephemeral: KeyPair::generate(),
            header: random_array(),
            send_counter: random_array(),
        }
    }
}

/// What the stream reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The handshake is done and the stream accepts data (JS `'connect'`/`'open'`).
    Open,
    /// One message from the peer, exactly as it was written.
    Message(Vec<u8>),
    /// The peer ended its side; no more messages will arrive.
    End,
    /// Both sides ended: the stream is finished.
    Closed,
    /// The stream failed; it is unusable from now on.
    Destroyed(Error),
}

/// A complete frame: its first byte when split off (see [`FrameParser::next`]), and the rest.
type Frame = (Option<u8>, Vec<u8>);

#[derive(Debug, Default)]
struct FrameParser {
    len_buf: [u8; 3],
    len_have: usize,
    want: Option<usize>,
    frame: Vec<u8>,
    /// With `split_first`: the frame's first byte, kept out of `frame`.
    first: Option<u8>,
}

impl FrameParser {
    fn in_frame(&self) -> bool {
        self.len_have > 0 || self.want.is_some()
    }

    /// Takes bytes from `data` until one frame is complete. `max` bounds the frame length.
    /// With `split_first` the frame's first byte is returned apart (the encrypted tag of a
    /// data frame), so that the rest starts with the message.
    fn next(
        &mut self,
        data: &mut &[u8],
        max: usize,
        split_first: bool,
        too_large: impl Fn(usize) -> Error,
    ) -> Result<Option<Frame>, Error> {
        loop {
            if let Some(mut want) = self.want {
                if split_first && self.first.is_none() {
                    let Some((&b, rest)) = data.split_first() else {
                        return Ok(None);
                    };
                    self.first = Some(b);
                    *data = rest;
                    want -= 1;
                    self.want = Some(want);
                }
                let take = (want - self.frame.len()).min(data.len());
                self.frame.extend_from_slice(&data[..take]);
                *data = &data[take..];
                if self.frame.len() < want {
                    return Ok(None);
                }
                self.want = None;
                return Ok(Some((self.first.take(), std::mem::take(&mut self.frame))));
            }
            if data.is_empty() {
                return Ok(None);
            }
            self.len_buf[self.len_have] = data[0];
            *data = &data[1..];
            self.len_have += 1;
            if self.len_have == 3 {
                self.len_have = 0;
                let len = u32::from_le_bytes([self.len_buf[0], self.len_buf[1], self.len_buf[2], 0])
                    as usize;
                if len > max {
                    return Err(too_large(len));
                }
                // Grow with the data actually received rather than trusting the prefix.
                self.frame = Vec::with_capacity(len.min(64 * 1024));
                self.first = None;
                if split_first && len == 0 {
                    return Ok(Some((None, Vec::new())));
                }
                self.want = Some(len);
            }
        }
    }
}

enum Phase {
    Handshaking(Box<Handshake>),
    Open,
    Failed,
}

/// The secret-stream state machine.
pub struct Engine {
    is_initiator: bool,
    keep_alive: Option<Duration>,
    timeout: Option<Duration>,
    filter_empty: bool,
    phase: Phase,
    started: bool,
    result: Option<HandshakeResult>,
    header: [u8; HEADERBYTES],
    send_counter: [u8; 8],
    push: Option<Push>,
    pull: Option<Pull>,
    unordered: Option<Unordered>,
    parser: FrameParser,
    out: Vec<u8>,
    out_pos: usize,
    queued: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    local_ended: bool,
    remote_ended: bool,
    closed: bool,
    error: Option<Error>,
    last_write: Option<Instant>,
    last_read: Option<Instant>,
    raw_bytes_written: u64,
    raw_bytes_read: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("is_initiator", &self.is_initiator)
            .field("open", &self.is_open())
            .field("local_ended", &self.local_ended)
            .field("remote_ended", &self.remote_ended)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

fn u24(len: usize) -> [u8; 3] {
    let b = (len as u32).to_le_bytes();
    [b[0], b[1], b[2]]
}

impl Engine {
    /// A stream that runs its own Noise handshake (XX by default) with OS randomness.
    pub fn new(config: &Config) -> Result<Self, Error> {
        Self::with_randomness(config, &Randomness::os())
    }

    /// As [`Engine::new`] with injected randomness.
    pub fn with_randomness(config: &Config, rnd: &Randomness) -> Result<Self, Error> {
        let key_pair = config.key_pair.clone().unwrap_or_else(KeyPair::generate);
        let hs = Handshake::with_ephemeral(
            config.pattern,
            config.is_initiator,
            key_pair,
            rnd.ephemeral.clone(),
            &[],
            config.remote_public_key,
        )
        .map_err(Error::Handshake)?;
        Ok(Self::build(
            config,
            Phase::Handshaking(Box::new(hs)),
            None,
            rnd,
        ))
    }

    /// A stream started from a finished handshake (the hyperdht path): no Noise bytes are sent,
    /// each side sends its header frame at start.
    pub fn from_handshake(result: HandshakeResult, config: &Config) -> Self {
        Self::from_handshake_with_randomness(result, config, &Randomness::os())
    }

    /// As [`Engine::from_handshake`] with injected randomness.
    pub fn from_handshake_with_randomness(
        result: HandshakeResult,
        config: &Config,
        rnd: &Randomness,
    ) -> Self {
        let mut cfg = config.clone();
        cfg.is_initiator = result.is_initiator;
        Self::build(&cfg, Phase::Open, Some(result), rnd)
    }

    fn build(
        config: &Config,
        phase: Phase,
        result: Option<HandshakeResult>,
        rnd: &Randomness,
    ) -> Self {
        Self {
            is_initiator: config.is_initiator,
            keep_alive: config.keep_alive.filter(|d| !d.is_zero()),
            timeout: config.timeout.filter(|d| !d.is_zero()),
            filter_empty: config.filter_zero_byte_messages
                || config.keep_alive.is_some_and(|d| !d.is_zero()),
            phase,
            started: false,
            result,
            header: rnd.header,
            send_counter: rnd.send_counter,
            push: None,
            pull: None,
            unordered: None,
            parser: FrameParser::default(),
            out: Vec::new(),
            out_pos: 0,
            queued: VecDeque::new(),
            events: VecDeque::new(),
            local_ended: false,
            remote_ended: false,
            closed: false,
            error: None,
            last_write: None,
            last_read: None,
            raw_bytes_written: 0,
            raw_bytes_read: 0,
        }
    }

    /// Starts the stream on a connected raw transport: the initiator writes its first
    /// handshake message; a pre-made handshake writes the header frame and opens.
    pub fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        self.last_read = Some(now);
        self.last_write = Some(now);
        let mut done = false;
        if let Phase::Handshaking(hs) = &mut self.phase {
            if hs.is_my_turn() {
                match hs.write_message(&[]) {
                    Ok(msg) => {
                        self.out.extend_from_slice(&u24(msg.len()));
                        self.out.extend_from_slice(&msg);
                        done = hs.is_finished();
                    }
                    Err(e) => return self.fail(Error::Handshake(e)),
                }
            }
        } else {
            done = true;
        }
        if done {
            self.on_handshake_done(now);
        }
    }

    fn on_handshake_done(&mut self, now: Instant) {
        if let Phase::Handshaking(hs) = &self.phase {
            match hs.finish() {
                Ok(r) => self.result = Some(r),
                Err(e) => return self.fail(Error::Handshake(e)),
            }
        }
        self.phase = Phase::Open;
        let Some(result) = &self.result else { return };
        let id = stream_id(&result.hash, self.is_initiator);
        self.push = Some(Push::new(&result.tx, &self.header));
        self.unordered = Some(Unordered::new(
            &result.hash,
            self.is_initiator,
            self.send_counter,
        ));
        self.out.extend_from_slice(&u24(HEADER_PAYLOAD_LEN));
        self.out.extend_from_slice(&id);
        self.out.extend_from_slice(&self.header);
        self.events.push_back(Event::Open);
        self.last_write = Some(now);
        while let Some(msg) = self.queued.pop_front() {
            self.encrypt(now, &msg);
        }
    }

    /// Whether the handshake finished and data can flow.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open) && self.result.is_some() && self.error.is_none()
    }

    /// The stream's fatal error, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The handshake outcome once known.
    pub fn handshake(&self) -> Option<&HandshakeResult> {
        self.result.as_ref()
    }

    /// The peer's static key once the handshake proved it.
    pub fn remote_public_key(&self) -> Option<&PublicKey> {
        self.result.as_ref().map(|r| &r.remote_public_key)
    }

    /// Whether this side initiated.
    pub fn is_initiator(&self) -> bool {
        self.is_initiator
    }

    /// Bytes of data frames written, length prefixes and keep-alives included (JS `rawBytesWritten`).
    pub fn raw_bytes_written(&self) -> u64 {
        self.raw_bytes_written
    }

    /// Bytes of data frames received, without prefixes (JS `rawBytesRead`).
    pub fn raw_bytes_read(&self) -> u64 {
        self.raw_bytes_read
    }

    /// Whether `end()` was called.
    pub fn is_local_ended(&self) -> bool {
        self.local_ended
    }

    /// Whether the peer ended its side.
    pub fn is_remote_ended(&self) -> bool {
        self.remote_ended
    }

    fn fail(&mut self, err: Error) {
        if self.error.is_some() {
            return;
        }
        tracing::debug!(initiator = self.is_initiator, error = %err, "secret stream destroyed");
        self.phase = Phase::Failed;
        self.error = Some(err.clone());
        self.queued.clear();
        self.out.clear();
        self.out_pos = 0;
        self.events.push_back(Event::Destroyed(err));
    }

    /// Destroys the stream with `err` (or [`Error::Destroyed`]).
    pub fn destroy(&mut self, err: Option<Error>) {
        self.fail(err.unwrap_or(Error::Destroyed));
    }

    /// Feeds bytes read from the raw transport.
    pub fn handle_input(&mut self, now: Instant, mut data: &[u8]) {
        if self.error.is_some() || self.remote_ended {
            return;
        }
        self.last_read = Some(now);
        while !data.is_empty() && self.error.is_none() {
            let (max, header_phase) = match &self.phase {
                Phase::Handshaking(_) => (MAX_NOISE_LEN, false),
                Phase::Open if self.pull.is_none() => (HEADER_PAYLOAD_LEN, true),
                _ => (usize::MAX, false),
            };
            let data_phase = matches!(self.phase, Phase::Open) && self.pull.is_some();
            let frame = self.parser.next(&mut data, max, data_phase, |len| {
                if header_phase {
                    Error::InvalidHeaderMessage(len)
                } else {
                    Error::FrameTooLarge(len)
                }
            });
            match frame {
                Ok(Some((first, frame))) => self.on_frame(now, first, frame),
                Ok(None) => {}
                Err(e) => self.fail(e),
            }
        }
    }

    fn on_frame(&mut self, now: Instant, first: Option<u8>, mut frame: Vec<u8>) {
        match &mut self.phase {
            Phase::Failed => {}
            Phase::Handshaking(hs) => {
                if let Err(e) = hs.read_message(&frame) {
                    return self.fail(Error::Handshake(e));
                }
                if hs.is_my_turn() && !hs.is_finished() {
                    match hs.write_message(&[]) {
                        Ok(msg) => {
                            self.out.extend_from_slice(&u24(msg.len()));
                            self.out.extend_from_slice(&msg);
                        }
                        Err(e) => return self.fail(Error::Handshake(e)),
                    }
                }
                if hs.is_finished() {
                    self.on_handshake_done(now);
                }
            }
            Phase::Open if self.pull.is_none() => {
                let Some(result) = &self.result else { return };
                if frame.len() != HEADER_PAYLOAD_LEN {
                    return self.fail(Error::InvalidHeaderMessage(frame.len()));
                }
                if frame[..32] != stream_id(&result.hash, !self.is_initiator) {
                    return self.fail(Error::InvalidHeader);
                }
                let mut header = [0u8; HEADERBYTES];
                header.copy_from_slice(&frame[32..]);
                self.pull = Some(Pull::new(&result.rx, &header));
            }
            Phase::Open => {
                // The parser split the first byte off (data frames are never empty here:
                // an empty one came back with `first: None`).
                let len = frame.len() + usize::from(first.is_some());
                self.raw_bytes_read += len as u64;
                let Some(first) = first.filter(|_| len >= ABYTES) else {
                    return self.fail(Error::InvalidMessage(len));
                };
                let Some(pull) = &mut self.pull else { return };
                if pull.pull_split(first, &mut frame).is_err() {
                    return self.fail(Error::Decrypt);
                }
                frame.truncate(frame.len() - 16);
                if frame.is_empty() && self.filter_empty {
                    return;
                }
                self.events.push_back(Event::Message(frame));
            }
        }
    }

    /// The raw transport reached end of input.
    pub fn handle_input_end(&mut self, _now: Instant) {
        if self.error.is_some() || self.remote_ended {
            return;
        }
        if !self.is_open() || self.pull.is_none() {
            return self.fail(Error::EndedBeforeOpen);
        }
        if self.parser.in_frame() {
            return self.fail(Error::TruncatedFrame);
        }
        self.remote_ended = true;
        self.events.push_back(Event::End);
        self.maybe_closed();
    }

    fn maybe_closed(&mut self) {
        if self.local_ended && self.remote_ended && !self.closed && self.error.is_none() {
            self.closed = true;
            self.events.push_back(Event::Closed);
        }
    }

    fn encrypt(&mut self, now: Instant, msg: &[u8]) {
        let Some(push) = &mut self.push else { return };
        let len = msg.len() + ABYTES;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        self.out.reserve(3 + len);
        self.out.extend_from_slice(&u24(len));
        push.push(msg, TAG_MESSAGE, &mut self.out);
        self.raw_bytes_written += (len + 3) as u64;
        self.last_write = Some(now);
    }

    /// Writes one message (delivered whole, as one message, to the peer). Messages written
    /// before the stream opens are queued and sent once it does.
    pub fn write(&mut self, now: Instant, msg: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.local_ended {
            return Err(Error::WriteAfterEnd);
        }
        if msg.len() > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLarge(msg.len()));
        }
        if self.is_open() {
            self.encrypt(now, msg);
        } else {
            self.queued.push_back(msg.to_vec());
        }
        Ok(())
    }

    /// Ends the local side after the queued writes; the raw transport should be half-closed
    /// once [`Engine::wants_raw_end`] says so.
    pub fn end(&mut self) {
        if self.local_ended || self.error.is_some() {
            return;
        }
        self.local_ended = true;
        self.maybe_closed();
    }

    /// Whether the raw transport's write side should now be shut down: `end()` was called,
    /// the stream is open and every byte was taken by [`Engine::advance_transmit`].
    pub fn wants_raw_end(&self) -> bool {
        self.local_ended
            && self.is_open()
            && self.queued.is_empty()
            && self.out_pos == self.out.len()
    }

    /// Bytes waiting for the raw transport.
    pub fn transmit_buf(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks `n` bytes of [`Engine::transmit_buf`] as written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            if self.out.capacity() > OUT_KEEP {
                // Do not keep a burst's buffer on an idle connection.
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
            self.out_pos = 0;
        }
    }

    /// Takes all bytes waiting for the raw transport.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out_pos == self.out.len() {
            return None;
        }
        let mut out = std::mem::take(&mut self.out);
        out.drain(..self.out_pos);
        self.out_pos = 0;
        Some(out)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Engine::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() || !self.started {
            return None;
        }
        let timeout = self.timeout.zip(self.last_read).map(|(d, t)| t + d);
        let keep_alive = if self.is_open() && !self.local_ended {
            self.keep_alive.zip(self.last_write).map(|(d, t)| t + d)
        } else {
            None
        };
        match (timeout, keep_alive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers: the inactivity timeout and the keep-alive.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.error.is_some() || !self.started {
            return;
        }
        if let (Some(d), Some(t)) = (self.timeout, self.last_read) {
            if now >= t + d {
                return self.fail(Error::TimedOut);
            }
        }
        if let (Some(d), Some(t), true) = (
            self.keep_alive,
            self.last_write,
            self.is_open() && !self.local_ended,
        ) {
            if now >= t + d {
                self.encrypt(now, &[]);
            }
        }
    }

    /// Changes the keep-alive interval (`None` or zero disables it).
    pub fn set_keep_alive(&mut self, interval: Option<Duration>) {
        self.keep_alive = interval.filter(|d| !d.is_zero());
        if self.keep_alive.is_some() {
            self.filter_empty = true;
        }
    }

    /// Changes the inactivity timeout (`None` or zero disables it).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout.filter(|d| !d.is_zero());
    }

    /// Encrypts an unordered datagram for the transport's datagram channel.
    pub fn seal_datagram(&mut self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some(u) = &mut self.unordered else {
            return Err(Error::NotOpen);
        };
        if let Ok(d) = u.seal(msg) {
            return Ok(d);
        }
        self.fail(Error::NonceExhausted);
        Err(Error::NonceExhausted)
    }

    /// Decrypts an unordered datagram; `None` if it does not authenticate (ignored, as in JS).
    pub fn open_datagram(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        self.unordered.as_ref()?.open(datagram)
    }
}
