//! Feast's `/get-online-features` JSON written straight from packed rows (plain Rust; no pyo3).
//!
//! The server's general encoder goes packed bytes → Arrow columns → Python values → orjson.
//! For the common request (views in the packed layout, no on-demand views) this module skips
//! the two middle steps: it decodes each stored row once, writes every selected value as its
//! JSON text, and assembles the `results` objects of the feature columns in output order.
//!
//! The text must be byte-identical to what the general encoder writes (the tests compare
//! the two), so the formatting follows orjson: floats as the shortest round-trip digits
//! (zmij, as orjson), float32 widened to double first, NaN/±Inf as the
//! strings `"NaN"`/`"Infinity"`/`"-Infinity"`, bytes as padded base64, `UNIX_TIMESTAMP` as
//! integer seconds, orjson's string escapes, and stored JSON text (JSON, MAP, STRUCT, ...
//! features) as the compact JSON it holds. Event timestamps are RFC 3339 UTC with `Z`
//! and 0, 3 or 6 fraction digits, as few as the value needs.
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::io::Write as _;

use crate::error::CoreError;
use crate::packed::{
    expected, timestamp_from_bytes, FeatureType, Marker, Reader, Scalar, HEADER_LEN, VERSION,
};

/// Status names of Feast's `FieldStatus`, as the JSON spells them.
const PRESENT: &[u8] = b"\"PRESENT\"";
const NOT_FOUND: &[u8] = b"\"NOT_FOUND\"";
const OUTSIDE_MAX_AGE: &[u8] = b"\"OUTSIDE_MAX_AGE\"";
const EPOCH: &[u8] = b"\"1970-01-01T00:00:00Z\"";
const NULL: &[u8] = b"null";

/// One feature view's part of a read.
pub struct ViewRead<'a> {
    /// The view's name, for error messages.
    pub name: &'a str,
    /// One stored packed row per entity key read (`None`: nothing stored).
    pub rows: Vec<Option<&'a [u8]>>,
    /// Every feature of the view in schema order (the order of a packed row).
    pub feature_types: Vec<FeatureType>,
    /// Schema positions of the requested features.
    pub select: Vec<usize>,
    /// The read row of each entity row; `None` when the rows were read one per entity row.
    pub fanout: Option<Vec<usize>>,
    /// Values older than this (microseconds) are `OUTSIDE_MAX_AGE`; 0 = no limit.
    pub ttl_micros: i64,
}

/// One feature column of the response: the view and the index into its `select`.
#[derive(Clone, Copy, Debug)]
pub struct OutputColumn {
    pub view: usize,
    pub feature: usize,
}

/// A view's rows decoded to JSON fragments: `cells[row * width + slot]` is a span of `text`.
struct DecodedView {
    text: Vec<u8>,
    cells: Vec<(u32, u32)>,
    width: usize,
    /// `"statuses":[...],"event_timestamps":[...]` over the entity rows (after fan-out).
    tail: Vec<u8>,
    /// Per entity row, the read row it shows.
    order: Vec<usize>,
    /// The slot each `select` entry reads (a feature selected twice shares one slot).
    slot_of_select: Vec<usize>,
}

/// Appends the `results` objects of the feature columns, comma-separated, to `out`.
pub fn write_feature_results(
    views: &[ViewRead<'_>],
    outputs: &[OutputColumn],
    entity_rows: usize,
    now_micros: i64,
    out: &mut Vec<u8>,
) -> Result<(), CoreError> {
    let decoded = views
        .iter()
        .map(|v| decode_view(v, entity_rows, now_micros))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, column) in outputs.iter().enumerate() {
        let view = decoded.get(column.view).ok_or_else(|| {
            CoreError::InvalidArgument(format!("output {i} names view {}", column.view))
        })?;
        let slot = *view.slot_of_select.get(column.feature).ok_or_else(|| {
            CoreError::InvalidArgument(format!("output {i} names feature {}", column.feature))
        })?;
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"values\":[");
        for (e, &row) in view.order.iter().enumerate() {
            if e > 0 {
                out.push(b',');
            }
            let (start, end) = view.cells[row * view.width + slot];
            out.extend_from_slice(&view.text[start as usize..end as usize]);
        }
        out.extend_from_slice(b"],");
        out.extend_from_slice(&view.tail);
        out.push(b'}');
    }
    Ok(())
}

fn decode_view(
    view: &ViewRead<'_>,
    entity_rows: usize,
    now_micros: i64,
) -> Result<DecodedView, CoreError> {
    let read_rows = view.rows.len();
    let order: Vec<usize> = match &view.fanout {
        Some(fanout) => {
            if fanout.len() != entity_rows {
                return Err(CoreError::InvalidArgument(format!(
                    "view '{}': {} fan-out indices for {entity_rows} entity rows",
                    view.name,
                    fanout.len()
                )));
            }
            if let Some(&bad) = fanout.iter().find(|&&r| r >= read_rows) {
                return Err(CoreError::InvalidArgument(format!(
                    "view '{}': fan-out index {bad} past the {read_rows} rows read",
                    view.name
                )));
            }
            fanout.clone()
        }
        None if read_rows == entity_rows => (0..entity_rows).collect(),
        None => {
            return Err(CoreError::InvalidArgument(format!(
                "view '{}': {read_rows} rows read for {entity_rows} entity rows",
                view.name
            )))
        }
    };
    let mut slot_of = vec![usize::MAX; view.feature_types.len()];
    let mut slots: Vec<usize> = Vec::new();
    let mut slot_of_select = Vec::with_capacity(view.select.len());
    for &f in &view.select {
        if f >= view.feature_types.len() {
            return Err(CoreError::InvalidArgument(format!(
                "view '{}': selected feature {f} is out of range: the view has {} features",
                view.name,
                view.feature_types.len()
            )));
        }
        if slot_of[f] == usize::MAX {
            slot_of[f] = slots.len();
            slots.push(f);
        }
        slot_of_select.push(slot_of[f]);
    }
    let width = slots.len();
    let slot_types: Vec<FeatureType> = slots.iter().map(|&f| view.feature_types[f]).collect();
    let mut text = Vec::with_capacity(read_rows * width * 12 + 4);
    text.extend_from_slice(NULL);
    let null_span = (0, NULL.len() as u32);
    let mut cells = vec![null_span; read_rows * width];
    // Per read row: the status and the event time (None: nothing stored).
    let mut stamps: Vec<(&[u8], Option<i64>)> = Vec::with_capacity(read_rows);
    for (row, bytes) in view.rows.iter().enumerate() {
        let Some(bytes) = bytes else {
            stamps.push((NOT_FOUND, None));
            continue;
        };
        let row_cells = &mut cells[row * width..(row + 1) * width];
        let micros =
            decode_row(bytes, &slot_types, &slot_of, &mut text, row_cells).map_err(|detail| {
                CoreError::decode(view.name, row, format!("corrupt packed row: {detail}"))
            })?;
        let stale = view.ttl_micros > 0 && now_micros.saturating_sub(micros) > view.ttl_micros;
        if stale {
            // A stale value is not served, as the point-in-time join would not serve it.
            row_cells.fill(null_span);
            stamps.push((OUTSIDE_MAX_AGE, Some(micros)));
        } else {
            stamps.push((PRESENT, Some(micros)));
        }
    }
    let mut tail = Vec::with_capacity(order.len() * 36 + 40);
    tail.extend_from_slice(b"\"statuses\":[");
    for (e, &row) in order.iter().enumerate() {
        if e > 0 {
            tail.push(b',');
        }
        tail.extend_from_slice(stamps[row].0);
    }
    tail.extend_from_slice(b"],\"event_timestamps\":[");
    for (e, &row) in order.iter().enumerate() {
        if e > 0 {
            tail.push(b',');
        }
        match stamps[row].1 {
            Some(micros) => {
                tail.push(b'"');
                write_timestamp(&mut tail, micros);
                tail.push(b'"');
            }
            None => tail.extend_from_slice(EPOCH),
        }
    }
    tail.push(b']');
    Ok(DecodedView {
        text,
        cells,
        width,
        tail,
        order,
        slot_of_select,
    })
}

/// Writes the selected features of one row as JSON text (`cells[slot]`, typed by
/// `slot_types[slot]`); returns the row's event time. The header checks repeat
/// `packed::decode_row`'s on purpose: one walker shared through a closure measured ~30 %
/// slower on this hot path (100 x 50 values: 184 -> 239 us).
fn decode_row(
    bytes: &[u8],
    slot_types: &[FeatureType],
    slot_of: &[usize],
    text: &mut Vec<u8>,
    cells: &mut [(u32, u32)],
) -> Result<i64, String> {
    if bytes.len() < HEADER_LEN + 1 {
        return Err(format!(
            "{} bytes is shorter than a row header",
            bytes.len()
        ));
    }
    if bytes[0] != VERSION {
        return Err(format!("unknown format version 0x{:02x}", bytes[0]));
    }
    let micros = timestamp_from_bytes(bytes[1..HEADER_LEN].try_into().expect("8 bytes"));
    let mut r = Reader {
        buf: bytes,
        pos: HEADER_LEN,
    };
    let n = match r.marker()? {
        Marker::Array(n) => n,
        m => return Err(expected("an array of features", m)),
    };
    // Every element is read, selected or not, so corruption is caught wherever it is; short
    // rows (written before the view gained features) keep the null cells they start with.
    for i in 0..n {
        let m = r.marker().map_err(|e| format!("feature {i}: {e}"))?;
        match slot_of.get(i) {
            Some(&s) if s != usize::MAX => {
                let start = text.len() as u32;
                write_value(slot_types[s], m, &mut r, text)
                    .map_err(|e| format!("feature {i}: {e}"))?;
                cells[s] = (start, text.len() as u32);
            }
            _ => r.skip(m).map_err(|e| format!("feature {i}: {e}"))?,
        }
    }
    if r.pos != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the features",
            bytes.len() - r.pos
        ));
    }
    Ok(micros)
}

fn write_value(
    t: FeatureType,
    marker: Marker,
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if !t.list {
        return write_scalar(t.scalar, marker, r, out);
    }
    let n = match marker {
        Marker::Nil => {
            out.extend_from_slice(NULL);
            return Ok(());
        }
        Marker::Array(n) => n,
        m => return Err(expected("an array", m)),
    };
    out.push(b'[');
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        let m = r.marker()?;
        write_scalar(t.scalar, m, r, out)?;
    }
    out.push(b']');
    Ok(())
}

/// One scalar as JSON; accepts exactly what the Arrow decoder (`packed::decode_rows`) accepts.
fn write_scalar(
    scalar: Scalar,
    marker: Marker,
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if marker == Marker::Nil {
        out.extend_from_slice(NULL);
        return Ok(());
    }
    match (scalar, marker) {
        (Scalar::Int32, Marker::Int(v)) => {
            let v = i32::try_from(v).map_err(|_| format!("{v} does not fit in INT32"))?;
            write_int(out, i64::from(v));
        }
        (Scalar::Int64, Marker::Int(v)) => write_int(out, v),
        (Scalar::UnixTimestamp, Marker::Int(v)) => {
            // Same range as a timestamp[us] column, which is what the Arrow path goes through.
            v.checked_mul(1_000_000)
                .ok_or_else(|| format!("{v} seconds is out of the timestamp range"))?;
            write_int(out, v);
        }
        // The Arrow path keeps FLOAT as float32 and widens it to double when printing.
        (Scalar::Float | Scalar::Double, Marker::F32(v)) => write_float(out, f64::from(v)),
        (Scalar::Float, Marker::F64(v)) => write_float(out, f64::from(v as f32)),
        (Scalar::Float, Marker::Int(v)) => write_float(out, f64::from(v as f32)),
        (Scalar::Float, Marker::BigUint(v)) => write_float(out, f64::from(v as f32)),
        (Scalar::Double, Marker::F64(v)) => write_float(out, v),
        (Scalar::Double, Marker::Int(v)) => write_float(out, v as f64),
        (Scalar::Double, Marker::BigUint(v)) => write_float(out, v as f64),
        (Scalar::Int32 | Scalar::Int64 | Scalar::UnixTimestamp, Marker::BigUint(v)) => {
            return Err(format!("{v} does not fit in a signed 64-bit integer"))
        }
        (Scalar::Bool, Marker::Bool(v)) => {
            out.extend_from_slice(if v { b"true" } else { b"false" });
        }
        (Scalar::String, Marker::Str(n)) => {
            let s = std::str::from_utf8(r.take(n)?)
                .map_err(|e| format!("str is not valid UTF-8: {e}"))?;
            write_string(out, s);
        }
        // JSON text (Json features and the Map/Struct/... ones stored as JSON) goes out parsed,
        // as Feast's server sends it: the compact form orjson would print.
        (Scalar::Json, Marker::Str(n)) => {
            let s = std::str::from_utf8(r.take(n)?)
                .map_err(|e| format!("str is not valid UTF-8: {e}"))?;
            crate::nested::embed_json(s, out);
        }
        (Scalar::Bytes, Marker::Bin(n) | Marker::Str(n)) => {
            let bytes = r.take(n)?;
            out.push(b'"');
            let start = out.len();
            out.resize(start + bytes.len().div_ceil(3) * 4, 0);
            let written = BASE64
                .encode_slice(bytes, &mut out[start..])
                .expect("sized for the padded encoding");
            out.truncate(start + written);
            out.push(b'"');
        }
        (Scalar::Int32 | Scalar::Int64 | Scalar::UnixTimestamp, m) => {
            return Err(expected("an integer", m))
        }
        (Scalar::Float | Scalar::Double, m) => return Err(expected("a number", m)),
        (Scalar::Bool, m) => return Err(expected("a bool", m)),
        (Scalar::String | Scalar::Json, m) => return Err(expected("a str", m)),
        (Scalar::Bytes, m) => return Err(expected("a bin", m)),
    }
    Ok(())
}

fn write_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A double as orjson writes it: the shortest round-trip digits with `e+`/`e-` exponents
/// outside [1e-5, 1e16) (zmij's format, which is orjson's), and the non-finite values as
/// strings (Feast's server sends them that way).
pub fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
    } else {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    }
}

/// A JSON string with orjson's escapes: `"` and `\`, the short forms `\b \t \n \f \r`, and
/// `\u00xx` (lower-case hex) for the other control characters; everything else as is.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// RFC 3339 UTC with `Z`: no fraction, milliseconds or microseconds, whichever is exact
/// (years as numpy prints them: at least four digits, a sign when negative).
pub fn write_timestamp(out: &mut Vec<u8>, micros: i64) {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
    );
    if fraction == 0 {
    } else if fraction % 1000 == 0 {
        let _ = write!(out, ".{:03}", fraction / 1000);
    } else {
        let _ = write!(out, ".{fraction:06}");
    }
    out.push(b'Z');
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::{encode_rows, FeatureColumn};
    use arrow::array::{
        Array, ArrayRef, Float32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    fn float(v: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    fn stamp(micros: i64) -> String {
        let mut out = Vec::new();
        write_timestamp(&mut out, micros);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_print_as_orjson_does() {
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-7, "1e-7"),
            (1e-5, "0.00001"),
            (0.1, "0.1"),
            (f64::from(0.2_f32), "0.20000000298023224"),
            (1.234_567_890_123_456_8e17, "1.2345678901234568e+17"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (f64::NAN, "\"NaN\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ];
        for (v, text) in cases {
            assert_eq!(float(v), text, "{v}");
        }
    }

    #[test]
    fn strings_escape_as_orjson_does() {
        let mut out = Vec::new();
        write_string(&mut out, "a\"b\\c\n\u{1}\u{7f}é");
        assert_eq!(out, b"\"a\\\"b\\\\c\\n\\u0001\x7f\xc3\xa9\"");
    }

    #[test]
    fn timestamps_use_as_few_fraction_digits_as_exact() {
        assert_eq!(stamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(stamp(1_500), "1970-01-01T00:00:00.001500Z");
        assert_eq!(stamp(1_000), "1970-01-01T00:00:00.001Z");
        assert_eq!(stamp(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(stamp(253_402_300_800_000_000), "10000-01-01T00:00:00Z");
        assert_eq!(
            stamp(-62_167_219_200_000_001),
            "-001-12-31T23:59:59.999999Z"
        );
        assert_eq!(stamp(1_704_110_400_000_000), "2024-01-01T12:00:00Z");
    }

    fn packed(ts: &[i64]) -> Vec<Vec<u8>> {
        let floats: ArrayRef = Arc::new(Float32Array::from(vec![Some(0.5), None]));
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), Some(-3)]));
        let strs: ArrayRef = Arc::new(StringArray::from(vec![Some("x\"y"), Some("")]));
        let t = types();
        let named = [("f", &floats), ("i", &ints), ("s", &strs)];
        let columns: Vec<FeatureColumn<'_>> = named
            .iter()
            .zip(&t)
            .map(|((name, array), &feature_type)| FeatureColumn {
                name,
                feature_type,
                array: array.as_ref(),
            })
            .collect();
        let n = ts.len();
        let stamps = TimestampMicrosecondArray::from(ts.to_vec());
        let rows = encode_rows(&columns[..], &stamps).unwrap().into_array();
        assert_eq!(rows.len(), n);
        (0..n).map(|r| rows.value(r).to_vec()).collect()
    }

    fn types() -> Vec<FeatureType> {
        [6, 4, 2]
            .iter()
            .map(|&c| FeatureType::from_code(c).unwrap())
            .collect()
    }

    #[test]
    fn results_follow_outputs_fanout_and_ttl() {
        let rows = packed(&[1_000_000, 5_000_000]);
        let view = ViewRead {
            name: "v",
            rows: vec![Some(&rows[0]), None, Some(&rows[1])],
            feature_types: types(),
            select: vec![2, 0],
            fanout: Some(vec![2, 1, 0, 2]),
            ttl_micros: 2_000_000,
        };
        let outputs = [
            OutputColumn {
                view: 0,
                feature: 1,
            },
            OutputColumn {
                view: 0,
                feature: 0,
            },
        ];
        let mut out = Vec::new();
        write_feature_results(&[view], &outputs, 4, 6_000_000, &mut out).unwrap();
        let tail = concat!(
            r#""statuses":["PRESENT","NOT_FOUND","OUTSIDE_MAX_AGE","PRESENT"],"#,
            r#""event_timestamps":["1970-01-01T00:00:05Z","1970-01-01T00:00:00Z","#,
            r#""1970-01-01T00:00:01Z","1970-01-01T00:00:05Z"]"#
        );
        let expected = format!(r#"{{"values":[null,null,null,null],{tail}}},{{"values":["","#)
            + &format!(r#"null,null,""],{tail}}}"#);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    /// The first feature of view "v" (no fan-out, no ttl) for `entity_rows` rows.
    fn first_feature(rows: Vec<Option<&[u8]>>, entity_rows: usize) -> Result<Vec<u8>, CoreError> {
        let view = ViewRead {
            name: "v",
            rows,
            feature_types: types(),
            select: vec![0],
            fanout: None,
            ttl_micros: 0,
        };
        let outputs = [OutputColumn {
            view: 0,
            feature: 0,
        }];
        let mut out = Vec::new();
        write_feature_results(&[view], &outputs, entity_rows, 0, &mut out).map(|()| out)
    }

    #[test]
    fn a_corrupt_row_names_view_row_and_feature() {
        let mut rows = packed(&[1, 2]);
        let short = rows[0].len() - 1;
        rows[0].truncate(short);
        let err = first_feature(vec![None, Some(&rows[0])], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 'v' row 1: corrupt packed row: feature 2: truncated MessagePack value"
        );
    }

    #[test]
    fn mismatched_shapes_are_argument_errors() {
        let err = first_feature(vec![None], 2).unwrap_err();
        assert!(matches!(err, CoreError::InvalidArgument(_)), "{err}");
    }
}
