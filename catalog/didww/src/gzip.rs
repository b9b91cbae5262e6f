//! gunzip: the gzip framing (RFC 1952) around a DEFLATE stream (RFC 1951).
//!
//! DIDWW may gzip Call Events (an option of the endpoint) and always gzips CDR batches, with
//! `Content-Encoding: gzip`, and the host hands the parser the body as sent. The workspace
//! offers parsers no decompression crate, so this is a small inflater in the manner of zlib's
//! `puff.c`: canonical Huffman codes decoded a bit at a time, bounded output, the CRC-32 and
//! length of the trailer checked.

/// The two bytes every gzip stream starts with.
const MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The base lengths and extra bits of length codes 257..=285.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// The base distances and extra bits of distance codes 0..=29.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order in which a dynamic block sends its code-length code lengths.
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Whether a body is gzip, whatever its headers say.
pub fn is_gzip(body: &[u8]) -> bool {
    body.starts_with(&MAGIC)
}

/// The decompressed content of a one-member gzip stream, refused when it is malformed, fails
/// its CRC-32 or would exceed `limit` bytes.
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let start = header_len(data)?;
    let (out, used) = inflate(&data[start..], limit)?;
    let trailer = data
        .get(start + used..start + used + 8)
        .ok_or("the gzip stream is cut short before its trailer")?;
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if crc != crc32(&out) || size != out.len() as u32 {
        return Err("the gzip stream fails its CRC-32 or length check".into());
    }
    Ok(out)
}

/// The length of the gzip header, with its optional extra field, name, comment and CRC.
fn header_len(data: &[u8]) -> Result<usize, String> {
    if data.len() < 18 || !is_gzip(data) {
        return Err("the body is not a gzip stream".into());
    }
    if data[2] != 8 {
        return Err("the gzip stream is not compressed with DEFLATE".into());
    }
    let flags = data[3];
    let mut pos = 10;
    if flags & 0x04 != 0 {
        let extra = data
            .get(pos..pos + 2)
            .ok_or("the gzip header is cut short")?;
        pos += 2 + usize::from(u16::from_le_bytes([extra[0], extra[1]]));
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            let text = data.get(pos..).ok_or("the gzip header is cut short")?;
            pos += 1 + text
                .iter()
                .position(|&byte| byte == 0)
                .ok_or("the gzip header is cut short")?;
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    if pos > data.len() {
        return Err("the gzip header is cut short".into());
    }
    Ok(pos)
}

/// The bits of a DEFLATE stream, least significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buffer: u32,
    count: u32,
}

impl Bits<'_> {
    /// The next `n` (at most 16) bits as a number.
    fn take(&mut self, n: u32) -> Result<u32, String> {
        let mut value = self.buffer;
        while self.count < n {
            let byte = *self
                .data
                .get(self.pos)
                .ok_or("the DEFLATE stream is cut short")?;
            self.pos += 1;
            value |= u32::from(byte) << self.count;
            self.count += 8;
        }
        self.buffer = value >> n;
        self.count -= n;
        Ok(value & ((1 << n) - 1))
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    /// The code of `lengths[symbol]`; an over-subscribed set of lengths is refused.
    fn new(lengths: &[u8]) -> Result<Self, String> {
        let mut counts = [0u16; 16];
        for &len in lengths {
            counts[usize::from(len)] += 1;
        }
        let mut left: i32 = 1;
        for &count in &counts[1..] {
            left = (left << 1) - i32::from(count);
            if left < 0 {
                return Err("the DEFLATE stream has an over-subscribed Huffman code".into());
            }
        }
        let mut offsets = [0u16; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &len) in lengths.iter().enumerate() {
            if len != 0 {
                let slot = &mut offsets[usize::from(len)];
                symbols[usize::from(*slot)] = symbol as u16;
                *slot += 1;
            }
        }
        Ok(Self { counts, symbols })
    }

    /// Reads one symbol, a bit at a time.
    fn decode(&self, bits: &mut Bits<'_>) -> Result<u16, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for &count in &self.counts[1..] {
            code |= bits.take(1)? as i32;
            let count = i32::from(count);
            if code - first < count {
                return self
                    .symbols
                    .get((index + code - first) as usize)
                    .copied()
                    .ok_or_else(|| "the DEFLATE stream has an invalid Huffman code".into());
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("the DEFLATE stream has an invalid Huffman code".into())
    }
}

/// Inflates a raw DEFLATE stream; returns the output and the bytes of `data` it used.
fn inflate(data: &[u8], limit: usize) -> Result<(Vec<u8>, usize), String> {
    let mut bits = Bits {
        data,
        pos: 0,
        buffer: 0,
        count: 0,
    };
    let mut out = Vec::new();
    loop {
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => stored(&mut bits, &mut out)?,
            1 => {
                let (lengths, distances) = fixed_codes()?;
                codes(&mut bits, &mut out, &lengths, &distances, limit)?;
            }
            2 => {
                let (lengths, distances) = dynamic_codes(&mut bits)?;
                codes(&mut bits, &mut out, &lengths, &distances, limit)?;
            }
            _ => return Err("the DEFLATE stream has an invalid block type".into()),
        }
        if out.len() > limit {
            return Err(format!("the gzip body inflates to more than {limit} bytes"));
        }
        if last {
            return Ok((out, bits.pos));
        }
    }
}

/// A stored block: its length, the length's complement, then the bytes as they are.
fn stored(bits: &mut Bits<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    bits.buffer = 0;
    bits.count = 0;
    let header = bits
        .data
        .get(bits.pos..bits.pos + 4)
        .ok_or("the DEFLATE stream is cut short")?;
    let len = u16::from_le_bytes([header[0], header[1]]);
    if len != !u16::from_le_bytes([header[2], header[3]]) {
        return Err("the DEFLATE stream has a corrupt stored block".into());
    }
    let start = bits.pos + 4;
    let bytes = bits
        .data
        .get(start..start + usize::from(len))
        .ok_or("the DEFLATE stream is cut short")?;
    out.extend_from_slice(bytes);
    bits.pos = start + usize::from(len);
    Ok(())
}

/// The fixed literal/length and distance codes of RFC 1951 section 3.2.6.
fn fixed_codes() -> Result<(Huffman, Huffman), String> {
    let mut lengths = [0u8; 288];
    lengths[..144].fill(8);
    lengths[144..256].fill(9);
    lengths[256..280].fill(7);
    lengths[280..].fill(8);
    Ok((Huffman::new(&lengths)?, Huffman::new(&[5; 30])?))
}

/// The codes a dynamic block sends before its data (RFC 1951 section 3.2.7).
fn dynamic_codes(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), String> {
    let literals = bits.take(5)? as usize + 257;
    let distances = bits.take(5)? as usize + 1;
    let code_lengths = bits.take(4)? as usize + 4;
    if literals > 286 || distances > 30 {
        return Err("the DEFLATE stream has too many codes".into());
    }
    let mut order = [0u8; 19];
    for &slot in &CODE_LENGTH_ORDER[..code_lengths] {
        order[slot] = bits.take(3)? as u8;
    }
    let code_length_code = Huffman::new(&order)?;
    let mut lengths = vec![0u8; literals + distances];
    let mut index = 0;
    while index < lengths.len() {
        let symbol = code_length_code.decode(bits)?;
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => {
                let previous = *index
                    .checked_sub(1)
                    .and_then(|at| lengths.get(at))
                    .ok_or("the DEFLATE stream repeats a length before the first")?;
                (previous, 3 + bits.take(2)? as usize)
            }
            17 => (0, 3 + bits.take(3)? as usize),
            _ => (0, 11 + bits.take(7)? as usize),
        };
        let run = lengths
            .get_mut(index..index + repeat)
            .ok_or("the DEFLATE stream repeats lengths past the end")?;
        run.fill(value);
        index += repeat;
    }
    if lengths[256] == 0 {
        return Err("the DEFLATE stream has no end-of-block code".into());
    }
    let (literal_lengths, distance_lengths) = lengths.split_at(literals);
    Ok((
        Huffman::new(literal_lengths)?,
        Huffman::new(distance_lengths)?,
    ))
}

/// The literals and back-references of a compressed block, up to its end-of-block code.
fn codes(
    bits: &mut Bits<'_>,
    out: &mut Vec<u8>,
    lengths: &Huffman,
    distances: &Huffman,
    limit: usize,
) -> Result<(), String> {
    loop {
        let symbol = usize::from(lengths.decode(bits)?);
        if symbol < 256 {
            out.push(symbol as u8);
        } else if symbol == 256 {
            return Ok(());
        } else {
            let code = symbol - 257;
            let (&base, &extra) = LENGTH_BASE
                .get(code)
                .zip(LENGTH_EXTRA.get(code))
                .ok_or("the DEFLATE stream has an invalid length code")?;
            let len = usize::from(base) + bits.take(u32::from(extra))? as usize;
            let code = usize::from(distances.decode(bits)?);
            let (&base, &extra) = DIST_BASE
                .get(code)
                .zip(DIST_EXTRA.get(code))
                .ok_or("the DEFLATE stream has an invalid distance code")?;
            let distance = usize::from(base) + bits.take(u32::from(extra))? as usize;
            let from = out
                .len()
                .checked_sub(distance)
                .ok_or("the DEFLATE stream refers back past its start")?;
            for at in from..from + len {
                out.push(out[at]);
            }
        }
        if out.len() > limit {
            return Err(format!("the gzip body inflates to more than {limit} bytes"));
        }
    }
}

/// The CRC-32 of the gzip trailer (IEEE 802.3, reflected), computed a bit at a time.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python's `gzip.compress(b"hello hello hello hello", mtime=0)`: a fixed-code block with
    /// a back-reference.
    const FIXED: &str = "1f8b0800000000000203cb48cdc9c957c8402701e3513d8d17000000";
    /// Python's `gzip.compress(b"abc", compresslevel=0, mtime=0)`: one stored block.
    const STORED: &str = "1f8b0800000000000403010300fcff616263c241243503000000";
    /// Python's `gzip.compress(START, mtime=0)` of W2's start event, minified: a dynamic block.
    const DYNAMIC: &str = concat!(
        "1f8b08000000000002034d8dcb0ac3201444ffc56d6bb96a7cee82902fe83ee42145486c31378512f2efb5",
        "ae3aab8139337310fcbc027124a6e9b9c6f4a0d3b02c74c321230def90905c499c0bc08032e086775e51d9",
        "29c17da30040b5c26ada7ae3b50628f08098e3b863d8883b08c635f475ad4c70e04041509077c61c4827c4",
        "cd682ba5bd00b8da9ee3dca77d1d43fe5d72d148a58d2da6645b9efeb22a5e45cef30bb4e868bfc8000000"
    );
    const START: &str = concat!(
        r#"{"type":"incoming-call-start-event","id":"10-10282FC6-5F632C460006A397-AC8C7700","#,
        r#""attributes":{"time_start":"2020-03-05T11:05:33.879559+00:00","#,
        r#""did_number":"123456789123","src_number":"111111222222"}}"#
    );

    fn bytes(hex: &str) -> Vec<u8> {
        telehook_guest::crypto::hex_decode(hex).expect("hex")
    }

    #[test]
    fn fixed_and_stored_blocks_inflate() {
        assert_eq!(
            gunzip(&bytes(FIXED), 1 << 20).expect("gunzip"),
            b"hello hello hello hello"
        );
        assert_eq!(gunzip(&bytes(STORED), 1 << 20).expect("gunzip"), b"abc");
        assert_eq!(
            gunzip(&bytes(DYNAMIC), 1 << 20).expect("gunzip"),
            START.as_bytes()
        );
    }

    #[test]
    fn corruption_and_bombs_are_refused() {
        let mut corrupt = bytes(FIXED);
        let last = corrupt.len() - 5;
        corrupt[last] ^= 1;
        assert!(gunzip(&corrupt, 1 << 20).is_err());
        assert!(gunzip(&bytes(FIXED)[..20], 1 << 20).is_err());
        assert!(gunzip(&bytes(FIXED), 10).is_err());
        assert!(gunzip(b"{\"type\":\"x\"}", 1 << 20).is_err());
    }
}
