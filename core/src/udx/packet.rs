//! The UDX packet codec (spec `udx.md` §1): a 20-byte little-endian header, an extension area of
//! `data_offset` bytes (SACK blocks or MTU-probe padding), then the payload.

/// First byte of every UDX packet.
pub const MAGIC: u8 = 0xff;
/// Second byte of every UDX packet.
pub const VERSION: u8 = 0x01;
/// Bytes in the header.
pub const HEADER_LEN: usize = 20;
/// Largest datagram a udx-native peer receives intact; we never send more.
pub const MAX_DATAGRAM: usize = 2048;
/// Most SACK blocks in one packet (as udx-native).
pub const MAX_SACK_BLOCKS: usize = 50;

/// Packet carries stream payload and consumes a sequence number.
pub const FLAG_DATA: u8 = 0x01;
/// Sender finished writing; consumes a sequence number.
pub const FLAG_END: u8 = 0x02;
/// The extension area holds SACK blocks.
pub const FLAG_SACK: u8 = 0x04;
/// An unreliable datagram on the stream.
pub const FLAG_MESSAGE: u8 = 0x08;
/// Abort the stream.
pub const FLAG_DESTROY: u8 = 0x10;
/// Probe: the receiver answers with an ACK.
pub const FLAG_HEARTBEAT: u8 = 0x20;

/// The fixed header of a UDX packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Flag bits (`FLAG_*`).
    pub flags: u8,
    /// Bytes between the header and the payload.
    pub data_offset: u8,
    /// The receiver's stream id.
    pub id: u32,
    /// The sender's receive window in bytes.
    pub rwnd: u32,
    /// Sequence number (own seq for DATA/END, `snd.nxt` otherwise).
    pub seq: u32,
    /// Cumulative ack: next sequence number expected.
    pub ack: u32,
}

/// Whether a datagram is shaped like a UDX packet (≥ 20 bytes starting `FF 01`).
pub fn is_udx(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] == MAGIC && datagram[1] == VERSION
}

/// The stream id a UDX datagram is addressed to, if it is one.
pub fn peek_id(datagram: &[u8]) -> Option<u32> {
    is_udx(datagram)
        .then(|| u32::from_le_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Header {
    /// Parses the header of a UDX datagram; `None` if it is not one.
    pub fn parse(datagram: &[u8]) -> Option<Self> {
        if !is_udx(datagram) {
            return None;
        }
        Some(Self {
            flags: datagram[2],
            data_offset: datagram[3],
            id: le32(datagram, 4),
            rwnd: le32(datagram, 8),
            seq: le32(datagram, 12),
            ack: le32(datagram, 16),
        })
    }

    /// Appends the 20 header bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[MAGIC, VERSION, self.flags, self.data_offset]);
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.rwnd.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.ack.to_le_bytes());
    }

    /// Whether a flag is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A parsed packet borrowing the datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// The header.
    pub header: Header,
    /// Raw SACK region (a multiple of 8 bytes is used; the rest is ignored).
    sack: &'a [u8],
    /// Payload after the extension area.
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses a datagram; `None` if it is not UDX or its `data_offset` runs past its end
    /// (udx-native drops those silently).
    pub fn parse(datagram: &'a [u8]) -> Option<Self> {
        let header = Header::parse(datagram)?;
        let rest = &datagram[HEADER_LEN..];
        let doff = header.data_offset as usize;
        if doff > rest.len() {
            return None;
        }
        let sack = if header.has(FLAG_SACK) {
            if doff > 0 && doff < rest.len() {
                &rest[..doff]
            } else {
                rest
            }
        } else {
            &[]
        };
        Some(Self {
            header,
            sack,
            payload: &rest[doff..],
        })
    }

    /// The SACK blocks `[start, end)`, in the order they appear.
    pub fn sack_blocks(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.sack.chunks_exact(8).map(|c| (le32(c, 0), le32(c, 4)))
    }
}

/// Serial-number comparison on the 32-bit wrapping sequence space: `a < b`.
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a <= b` in sequence space.
pub fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// Distance `b - a` in sequence space (as a non-negative count when `a <= b`).
pub fn seq_diff(b: u32, a: u32) -> i64 {
    i64::from(b.wrapping_sub(a) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_layout() {
        let h = Header {
            flags: FLAG_DATA | FLAG_END,
            data_offset: 0,
            id: 0x0403_0201,
            rwnd: 4_194_304,
            seq: 7,
            ack: 9,
        };
        let mut b = Vec::new();
        h.write(&mut b);
        assert_eq!(
            crate::crypto::to_hex(&b),
            "ff010300010203040000400007000000 09000000".replace(' ', "")
        );
        assert_eq!(Header::parse(&b), Some(h));
        assert_eq!(peek_id(&b), Some(0x0403_0201));
    }

    #[test]
    fn not_udx() {
        assert!(Header::parse(&[0xff, 0x01]).is_none());
        assert!(
            Header::parse(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
                .is_none()
        );
        assert!(Header::parse(&[0u8; 20]).is_none());
    }

    #[test]
    fn padding_sack_and_bad_offsets() {
        let mut b = Vec::new();
        Header {
            flags: FLAG_DATA,
            data_offset: 3,
            ..Header::default()
        }
        .write(&mut b);
        b.extend_from_slice(&[0, 0, 0, b'h', b'i']);
        assert_eq!(Packet::parse(&b).expect("ok").payload, b"hi");
        b[3] = 6; // runs past the end
        assert!(Packet::parse(&b).is_none());

        let mut s = Vec::new();
        Header {
            flags: FLAG_SACK,
            ..Header::default()
        }
        .write(&mut s);
        for (a, z) in [(2u32, 4u32), (6, 9)] {
            s.extend_from_slice(&a.to_le_bytes());
            s.extend_from_slice(&z.to_le_bytes());
        }
        s.push(0xaa); // a trailing partial block is ignored
        let p = Packet::parse(&s).expect("sack");
        assert_eq!(p.sack_blocks().collect::<Vec<_>>(), vec![(2, 4), (6, 9)]);
    }

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(seq_lt(0xffff_fff0, 5));
        assert!(!seq_lt(5, 0xffff_fff0));
        assert!(seq_le(3, 3));
        assert_eq!(seq_diff(5, 0xffff_fffe), 7);
    }
}
