//! The `MessagePack` writer: the few markers a packed row uses, each in its smallest form.

#[inline]
pub(super) fn write_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

#[inline]
pub(super) fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.push(if v { 0xc3 } else { 0xc2 });
}

#[inline]
pub(super) fn write_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        if v < 128 {
            out.push(v as u8);
        } else if v <= 0xff {
            out.extend_from_slice(&[0xcc, v as u8]);
        } else if v <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(v as u64).to_be_bytes());
        }
    } else if v >= -32 {
        out.push(v as u8);
    } else if v >= -128 {
        out.extend_from_slice(&[0xd0, v as u8]);
    } else if v >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

#[inline]
pub(super) fn write_f32(out: &mut Vec<u8>, v: f32) {
    out.push(0xca);
    out.extend_from_slice(&v.to_be_bytes());
}

#[inline]
pub(super) fn write_f64(out: &mut Vec<u8>, v: f64) {
    out.push(0xcb);
    out.extend_from_slice(&v.to_be_bytes());
}

/// A str (`fix`, 8, 16, 32 markers) or bin (8, 16, 32) header followed by the bytes.
#[inline]
pub(super) fn write_raw(out: &mut Vec<u8>, bytes: &[u8], string: bool) {
    let n = bytes.len();
    if string && n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[if string { 0xd9 } else { 0xc4 }, n as u8]);
    } else if n <= 0xffff {
        out.push(if string { 0xda } else { 0xc5 });
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(if string { 0xdb } else { 0xc6 });
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

#[inline]
pub(super) fn write_array_header(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n <= 0xffff {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::reader::{Marker, Reader};

    #[test]
    fn integers_take_the_smallest_form_and_read_back() {
        let values = [
            0,
            127,
            128,
            255,
            256,
            65535,
            65536,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::MAX,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i64::from(i32::MIN),
            i64::from(i32::MIN) - 1,
            i64::MIN,
        ];
        let lens = [1, 1, 2, 2, 3, 3, 5, 5, 9, 9, 1, 1, 2, 2, 3, 3, 5, 5, 9, 9];
        for (&v, &len) in values.iter().zip(&lens) {
            let mut out = Vec::new();
            write_int(&mut out, v);
            assert_eq!(out.len(), len, "{v}");
            let mut r = Reader { buf: &out, pos: 0 };
            assert_eq!(r.marker().unwrap(), Marker::Int(v));
            assert_eq!(r.pos, out.len());
        }
    }
}
