//! The `MessagePack` reader: one marker at a time over a byte slice, with skipping of nested
//! values; the decoder and `response.rs` walk packed rows with it.

/// One `MessagePack` header; for str, bin, array, map and ext the length that follows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Marker {
    Nil,
    Bool(bool),
    Int(i64),
    /// A uint 64 above `i64::MAX`.
    BigUint(u64),
    F32(f32),
    F64(f64),
    Str(usize),
    Bin(usize),
    Array(usize),
    Map(usize),
    Ext(usize),
}

impl Marker {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Nil => "nil",
            Self::Bool(_) => "a bool",
            Self::Int(_) | Self::BigUint(_) => "an integer",
            Self::F32(_) | Self::F64(_) => "a float",
            Self::Str(_) => "a str",
            Self::Bin(_) => "a bin",
            Self::Array(_) => "an array",
            Self::Map(_) => "a map",
            Self::Ext(_) => "an ext",
        }
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

const TRUNCATED: &str = "truncated MessagePack value";

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(TRUNCATED)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    #[inline]
    fn u8(&mut self) -> Result<u8, String> {
        let b = *self.buf.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }

    fn len8(&mut self) -> Result<usize, String> {
        Ok(usize::from(self.u8()?))
    }

    fn len16(&mut self) -> Result<usize, String> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn len32(&mut self) -> Result<usize, String> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    #[inline]
    pub(crate) fn marker(&mut self) -> Result<Marker, String> {
        let b = self.u8()?;
        Ok(match b {
            0x00..=0x7f => Marker::Int(i64::from(b)),
            0x80..=0x8f => Marker::Map(usize::from(b & 0x0f)),
            0x90..=0x9f => Marker::Array(usize::from(b & 0x0f)),
            0xa0..=0xbf => Marker::Str(usize::from(b & 0x1f)),
            0xc0 => Marker::Nil,
            0xc2 => Marker::Bool(false),
            0xc3 => Marker::Bool(true),
            0xc4 => Marker::Bin(self.len8()?),
            0xc5 => Marker::Bin(self.len16()?),
            0xc6 => Marker::Bin(self.len32()?),
            0xc7 => Marker::Ext(self.len8()? + 1),
            0xc8 => Marker::Ext(self.len16()? + 1),
            0xc9 => Marker::Ext(self.len32()? + 1),
            0xca => Marker::F32(f32::from_be_bytes(self.array()?)),
            0xcb => Marker::F64(f64::from_be_bytes(self.array()?)),
            0xcc => Marker::Int(i64::from(self.u8()?)),
            0xcd => Marker::Int(i64::from(u16::from_be_bytes(self.array()?))),
            0xce => Marker::Int(i64::from(u32::from_be_bytes(self.array()?))),
            0xcf => {
                let v = u64::from_be_bytes(self.array()?);
                i64::try_from(v).map_or(Marker::BigUint(v), Marker::Int)
            }
            0xd0 => Marker::Int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Marker::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Marker::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Marker::Int(i64::from_be_bytes(self.array()?)),
            0xd4 => Marker::Ext(2),
            0xd5 => Marker::Ext(3),
            0xd6 => Marker::Ext(5),
            0xd7 => Marker::Ext(9),
            0xd8 => Marker::Ext(17),
            0xd9 => Marker::Str(self.len8()?),
            0xda => Marker::Str(self.len16()?),
            0xdb => Marker::Str(self.len32()?),
            0xdc => Marker::Array(self.len16()?),
            0xdd => Marker::Array(self.len32()?),
            0xde => Marker::Map(self.len16()?),
            0xdf => Marker::Map(self.len32()?),
            0xe0..=0xff => Marker::Int(i64::from(b as i8)),
            0xc1 => return Err("byte 0xc1 is not a MessagePack marker".to_owned()),
        })
    }

    /// Skips the value whose marker was just read (nested arrays and maps included).
    pub(crate) fn skip(&mut self, marker: Marker) -> Result<(), String> {
        let mut pending: usize = 0;
        let mut marker = marker;
        loop {
            match marker {
                Marker::Str(n) | Marker::Bin(n) | Marker::Ext(n) => {
                    self.take(n)?;
                }
                Marker::Array(n) => pending = pending.saturating_add(n),
                Marker::Map(n) => pending = pending.saturating_add(n.saturating_mul(2)),
                _ => {}
            }
            if pending == 0 {
                return Ok(());
            }
            pending -= 1;
            marker = self.marker()?;
        }
    }
}

/// The error text for a value of the wrong kind.
pub(crate) fn expected(what: &str, found: Marker) -> String {
    format!("expected {what}, found {}", found.kind())
}
