//! Protomux (npm `protomux` 3.12): many protocol channels over one message stream (one frame =
//! one secret-stream message), as a sans-IO codec plus channel state.
//!
//! Wire format (compact-encoding):
//! * channel message: `uint localId || uint type || payload`, `localId` ≥ 1 being the sender's
//!   id of the channel;
//! * control messages on channel 0: `0 || uint type || …` with type
//!   0 batch (`uint channelId` then repeated `uint len || [uint type || payload]`, a zero `len`
//!   switching to the `uint channelId` that follows), 1 open (`uint localId || string protocol
//!   || optionalBuffer id || handshake…`), 2 reject (`uint remoteId`), 3 close (`uint localId`).
//!
//! Channels pair by `(protocol, id)`: each side opens with its own local id; a channel is open
//! once both opens were seen. Decoding never panics: malformed frames are an [`Error`] (the JS
//! mux destroys the stream then).

use std::collections::VecDeque;

use crate::encoding::{Decoder, Encoder};

/// Control message types on channel 0.
pub mod control {
    /// A batch of messages.
    pub const BATCH: u64 = 0;
    /// Open a channel.
    pub const OPEN: u64 = 1;
    /// Reject a remote open.
    pub const REJECT: u64 = 2;
    /// Close a channel.
    pub const CLOSE: u64 = 3;
}

/// Bytes of messages buffered for channels the remote opened but we have not (as JS's
/// `MAX_BUFFERED`, except that going over it is an error rather than back-pressure).
pub const MAX_BUFFERED: usize = 32 * 1024;
/// Channels one side may have open at once before we call it abuse.
pub const MAX_CHANNELS: usize = 1024;

/// Why a frame was refused (the mux should be torn down).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The frame did not decode.
    #[error("malformed protomux frame")]
    Malformed,
    /// An open for a remote id that is in use or skips ids.
    #[error("invalid open message")]
    InvalidOpen,
    /// A reject for a channel we are not opening.
    #[error("invalid reject message")]
    InvalidReject,
    /// The remote buffered too much for channels we never opened, or opened too many.
    #[error("remote exceeded its backlog")]
    Backlog,
}

impl From<crate::encoding::DecodeError> for Error {
    fn from(_: crate::encoding::DecodeError) -> Self {
        Error::Malformed
    }
}

/// `open` frame for channel `local_id`.
pub fn encode_open(local_id: u64, protocol: &str, id: Option<&[u8]>, handshake: &[u8]) -> Vec<u8> {
    let mut e = Encoder::with_capacity(16 + protocol.len() + id.map_or(0, <[u8]>::len));
    e.uint(0)
        .uint(control::OPEN)
        .uint(local_id)
        .string(protocol)
        .optional_buffer(id)
        .raw(handshake);
    e.into_inner()
}

/// `close` frame for channel `local_id`.
pub fn encode_close(local_id: u64) -> Vec<u8> {
    let mut e = Encoder::with_capacity(8);
    e.uint(0).uint(control::CLOSE).uint(local_id);
    e.into_inner()
}

/// `reject` frame answering the remote's open of `remote_id`.
pub fn encode_reject(remote_id: u64) -> Vec<u8> {
    let mut e = Encoder::with_capacity(8);
    e.uint(0).uint(control::REJECT).uint(remote_id);
    e.into_inner()
}

/// A message of type `kind` on channel `local_id`.
pub fn encode_message(local_id: u64, kind: u64, payload: &[u8]) -> Vec<u8> {
    let mut e = Encoder::with_capacity(payload.len() + 10);
    e.uint(local_id).uint(kind).raw(payload);
    e.into_inner()
}

/// A batch of `(localId, type, payload)` messages in one frame (as a corked JS mux writes;
/// `localId` 0 carries control messages: `type` is then the control type).
pub fn encode_batch(items: &[(u64, u64, &[u8])]) -> Vec<u8> {
    let mut e = Encoder::with_capacity(16 + items.iter().map(|i| i.2.len() + 12).sum::<usize>());
    e.uint(0).uint(control::BATCH);
    let mut prev = None;
    for &(ch, kind, payload) in items {
        match prev {
            None => {
                e.uint(ch);
            }
            Some(p) if p != ch => {
                e.uint(0).uint(ch);
            }
            Some(_) => {}
        }
        prev = Some(ch);
        let mut inner = Encoder::with_capacity(payload.len() + 9);
        inner.uint(kind).raw(payload);
        e.buffer(&inner.into_inner());
    }
    e.into_inner()
}

/// What the mux reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A channel we opened is now open on both sides (`handshake`: the remote open's trailing
    /// bytes).
    Opened {
        /// Our id of the channel.
        local_id: u64,
        /// The remote's handshake bytes.
        handshake: Vec<u8>,
    },
    /// The remote opened a channel we have not opened: call [`Mux::open`] with the same
    /// protocol and id to accept it, or [`Mux::reject`].
    RemoteOpen {
        /// The remote's id of the channel.
        remote_id: u64,
        /// Protocol name.
        protocol: String,
        /// Channel id.
        id: Option<Vec<u8>>,
    },
    /// A message on an open channel.
    Message {
        /// Our id of the channel.
        local_id: u64,
        /// Message type.
        kind: u64,
        /// Payload.
        payload: Vec<u8>,
    },
    /// The remote closed a channel (or rejected our open): the local id is free again.
    Closed {
        /// Our id of the channel.
        local_id: u64,
    },
}

#[derive(Debug)]
struct Local {
    protocol: String,
    id: Option<Vec<u8>>,
    /// 0 until the remote's open was seen.
    remote_id: u64,
}

#[derive(Debug)]
struct Remote {
    protocol: String,
    id: Option<Vec<u8>>,
    handshake: Vec<u8>,
    /// The local channel it pairs with, once opened here.
    local_id: Option<u64>,
    /// Messages that arrived before we opened.
    pending: Vec<(u64, Vec<u8>)>,
}

/// Channel state of one mux (one side of a stream).
#[derive(Debug, Default)]
pub struct Mux {
    local: Vec<Option<Local>>,
    remote: Vec<Option<Remote>>,
    buffered: usize,
    events: VecDeque<Event>,
}

impl Mux {
    /// An empty mux.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a channel: returns our id and the frame to send. Pairs with a pending remote open
    /// of the same protocol and id (reported as [`Event::Opened`] at once).
    pub fn open(&mut self, protocol: &str, id: Option<&[u8]>, handshake: &[u8]) -> (u64, Vec<u8>) {
        let idx = if let Some(i) = self.local.iter().position(Option::is_none) {
            i
        } else {
            self.local.push(None);
            self.local.len() - 1
        };
        let local_id = idx as u64 + 1;
        let id = id.filter(|b| !b.is_empty()).map(<[u8]>::to_vec);
        let mut remote_id = 0;
        let waiting = self.remote.iter().position(|r| {
            r.as_ref()
                .is_some_and(|r| r.local_id.is_none() && r.protocol == protocol && r.id == id)
        });
        if let Some(ri) = waiting {
            remote_id = ri as u64 + 1;
            if let Some(r) = self.remote[ri].as_mut() {
                r.local_id = Some(local_id);
                let hs = std::mem::take(&mut r.handshake);
                let pending = std::mem::take(&mut r.pending);
                self.events.push_back(Event::Opened {
                    local_id,
                    handshake: hs,
                });
                for (kind, payload) in pending {
                    self.buffered = self.buffered.saturating_sub(payload.len());
                    self.events.push_back(Event::Message {
                        local_id,
                        kind,
                        payload,
                    });
                }
            }
        }
        let frame = encode_open(local_id, protocol, id.as_deref(), handshake);
        self.local[idx] = Some(Local {
            protocol: protocol.to_owned(),
            id,
            remote_id,
        });
        (local_id, frame)
    }

    /// Whether channel `local_id` is open on both sides.
    pub fn is_open(&self, local_id: u64) -> bool {
        self.local_entry(local_id).is_some_and(|l| l.remote_id != 0)
    }

    /// The frame for a message on channel `local_id` (`None` if we have no such channel).
    pub fn message(&self, local_id: u64, kind: u64, payload: &[u8]) -> Option<Vec<u8>> {
        self.local_entry(local_id)?;
        Some(encode_message(local_id, kind, payload))
    }

    /// Closes channel `local_id`: the frame to send (`None` if we have no such channel).
    pub fn close(&mut self, local_id: u64) -> Option<Vec<u8>> {
        let idx = usize::try_from(local_id).ok()?.checked_sub(1)?;
        let l = self.local.get_mut(idx)?.take()?;
        if l.remote_id != 0 {
            if let Some(slot) = self.remote.get_mut(l.remote_id as usize - 1) {
                *slot = None;
            }
        }
        Some(encode_close(local_id))
    }

    /// Rejects the remote's open of `remote_id` (after [`Event::RemoteOpen`]).
    pub fn reject(&mut self, remote_id: u64) -> Option<Vec<u8>> {
        let idx = usize::try_from(remote_id).ok()?.checked_sub(1)?;
        let r = self.remote.get_mut(idx)?;
        if r.as_ref().is_some_and(|r| r.local_id.is_none()) {
            if let Some(r) = r.take() {
                let n: usize = r.pending.iter().map(|p| p.1.len()).sum();
                self.buffered = self.buffered.saturating_sub(n);
            }
            return Some(encode_reject(remote_id));
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn local_entry(&self, local_id: u64) -> Option<&Local> {
        let idx = usize::try_from(local_id).ok()?.checked_sub(1)?;
        self.local.get(idx)?.as_ref()
    }

    /// Handles one incoming frame. Empty frames are ignored (as JS).
    pub fn receive(&mut self, frame: &[u8]) -> Result<(), Error> {
        if frame.is_empty() {
            return Ok(());
        }
        let mut d = Decoder::new(frame);
        let channel = d.uint()?;
        self.decode(channel, &mut d)
    }

    fn decode(&mut self, channel: u64, d: &mut Decoder<'_>) -> Result<(), Error> {
        let kind = d.uint()?;
        if channel == 0 {
            return match kind {
                control::BATCH => self.on_batch(d),
                control::OPEN => self.on_open(d),
                control::REJECT => self.on_reject(d),
                control::CLOSE => self.on_close(d),
                _ => Ok(()),
            };
        }
        let Some(idx) = usize::try_from(channel).ok().and_then(|c| c.checked_sub(1)) else {
            return Ok(());
        };
        let payload = d.rest().to_vec();
        let Some(Some(r)) = self.remote.get_mut(idx) else {
            return Ok(()); // closed channel: ignore, as JS
        };
        if let Some(local_id) = r.local_id {
            self.events.push_back(Event::Message {
                local_id,
                kind,
                payload,
            });
        } else {
            self.buffered += payload.len();
            if self.buffered > MAX_BUFFERED {
                return Err(Error::Backlog);
            }
            r.pending.push((kind, payload));
        }
        Ok(())
    }

    fn on_batch(&mut self, d: &mut Decoder<'_>) -> Result<(), Error> {
        let mut channel = d.uint()?;
        while !d.is_empty() {
            let len = usize::try_from(d.uint()?).map_err(|_| Error::Malformed)?;
            if len == 0 {
                channel = d.uint()?;
                continue;
            }
            // JS clamps an overlong length to the frame's end
            let take = len.min(d.remaining());
            let item = d.take(take)?;
            let mut inner = Decoder::new(item);
            self.decode(channel, &mut inner)?;
        }
        Ok(())
    }

    fn on_open(&mut self, d: &mut Decoder<'_>) -> Result<(), Error> {
        let remote_id = d.uint()?;
        let protocol = d.string()?;
        let id = d.optional_buffer()?.map(<[u8]>::to_vec);
        let handshake = d.rest().to_vec();
        if remote_id == 0 {
            // JS rejects opens of the control channel
            return Ok(());
        }
        let rid = usize::try_from(remote_id - 1).map_err(|_| Error::InvalidOpen)?;
        if self.remote.len() == rid {
            if self.remote.len() >= MAX_CHANNELS {
                return Err(Error::Backlog);
            }
            self.remote.push(None);
        }
        if rid >= self.remote.len() || self.remote[rid].is_some() {
            return Err(Error::InvalidOpen);
        }
        // an outgoing channel waiting for this open?
        let waiting = self.local.iter().position(|l| {
            l.as_ref()
                .is_some_and(|l| l.remote_id == 0 && l.protocol == protocol && l.id == id)
        });
        if let Some(li) = waiting {
            let local_id = li as u64 + 1;
            if let Some(l) = self.local[li].as_mut() {
                l.remote_id = remote_id;
            }
            self.remote[rid] = Some(Remote {
                protocol,
                id,
                handshake: Vec::new(),
                local_id: Some(local_id),
                pending: Vec::new(),
            });
            self.events.push_back(Event::Opened {
                local_id,
                handshake,
            });
            return Ok(());
        }
        self.remote[rid] = Some(Remote {
            protocol: protocol.clone(),
            id: id.clone(),
            handshake,
            local_id: None,
            pending: Vec::new(),
        });
        self.events.push_back(Event::RemoteOpen {
            remote_id,
            protocol,
            id,
        });
        Ok(())
    }

    fn on_reject(&mut self, d: &mut Decoder<'_>) -> Result<(), Error> {
        let local_id = d.uint()?;
        let idx = usize::try_from(local_id)
            .ok()
            .and_then(|x| x.checked_sub(1))
            .ok_or(Error::InvalidReject)?;
        match self.local.get(idx) {
            Some(Some(l)) if l.remote_id == 0 => {
                self.local[idx] = None;
                self.events.push_back(Event::Closed { local_id });
                Ok(())
            }
            _ => Err(Error::InvalidReject),
        }
    }

    fn on_close(&mut self, d: &mut Decoder<'_>) -> Result<(), Error> {
        let remote_id = d.uint()?;
        let Some(rid) = usize::try_from(remote_id)
            .ok()
            .and_then(|x| x.checked_sub(1))
        else {
            return Ok(());
        };
        let Some(slot) = self.remote.get_mut(rid) else {
            return Ok(());
        };
        let Some(local_id) = slot.as_ref().and_then(|r| r.local_id) else {
            return Ok(()); // JS: a close of a channel we never opened is ignored
        };
        *slot = None;
        if let Some(l) = self.local.get_mut(local_id as usize - 1) {
            *l = None;
        }
        self.events.push_back(Event::Closed { local_id });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
