//! `ZONED_TIMESTAMP`: an instant in whole seconds plus the zone it was given in (plain Rust).
//!
//! Feast 0.67 stores `ZonedTimestamp { unix_timestamp, zone }`: the seconds truncated toward
//! zero (Python's `int(dt.timestamp())`) and the zone as Feast names a `tzinfo`: an IANA key
//! (`America/New_York`, `UTC`), `UTC±HH:MM` for a fixed offset, `""` for a naive datetime
//! (read back as UTC). Its SDK reads a tz-aware datetime in that zone; its server writes
//! `isoformat()` in that zone.
//!
//! The packed layout and `SQLite` hold such a value as one text, `<isoformat>[<zone>]`
//! (RFC 9557's suffix, always present, `[]` for the empty zone), e.g.
//! `2024-03-10T01:30:00-05:00[America/New_York]`: the server answers the part before `[`, the
//! SDK rebuilds the datetime in the zone, and `layout: feast` writes Feast's bytes from it.
//! Zones are resolved in the system time-zone database, as Python's `zoneinfo` resolves them.
use std::collections::HashMap;
use std::fmt::Write as _;

use arrow::array::{Array, AsArray, BinaryArray, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use jiff::civil::{DateTime, Time};
use jiff::fmt::temporal::{Pieces, PiecesOffset};
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

use super::node;
use super::proto_in::{oneof, Reader, Wire};
use super::proto_out::{put_bytes, put_key, put_message, put_varint, WIRE_VARINT};
use crate::error::CoreError;

/// Feast's null timestamp (`NULL_TIMESTAMP_INT_VALUE`).
const NULL_TIMESTAMP: i64 = i64::MIN;
/// The `Value` oneof field of a zoned timestamp.
pub const FIELD: u32 = 48;

/// One zoned timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zoned {
    pub seconds: i64,
    pub zone: String,
}

/// The zones of one column, resolved once each.
#[derive(Default)]
pub struct Zones(HashMap<String, TimeZone>);

impl Zones {
    /// The time zone Feast's SDK reads `zone` as; an error for a zone it cannot resolve (which
    /// Feast would silently read as UTC).
    pub fn resolve(&mut self, zone: &str) -> Result<TimeZone, String> {
        if let Some(tz) = self.0.get(zone) {
            return Ok(tz.clone());
        }
        let tz = resolve(zone)?;
        self.0.insert(zone.to_owned(), tz.clone());
        Ok(tz)
    }
}

fn resolve(zone: &str) -> Result<TimeZone, String> {
    if zone.is_empty() {
        return Ok(TimeZone::UTC);
    }
    // `zoneinfo.ZoneInfo(zone)` first, exactly as spelled (the database matches names without
    // regard to case; Python's file lookup does not).
    if let Ok(tz) = TimeZone::get(zone) {
        if tz.iana_name() == Some(zone) {
            return Ok(tz);
        }
    }
    fixed_offset(zone).map(TimeZone::fixed).ok_or_else(|| {
        format!(
            "unknown time zone {zone:?} (an IANA name such as \"America/New_York\", \"UTC\", \
             or a fixed offset such as \"UTC+05:30\")"
        )
    })
}

/// Feast's fixed-offset zone names: `UTC`, `GMT`, or `[UTC|GMT]±HH[:]MM`.
fn fixed_offset(zone: &str) -> Option<Offset> {
    if zone == "UTC" || zone == "GMT" {
        return Some(Offset::UTC);
    }
    let rest = zone
        .strip_prefix("UTC")
        .or_else(|| zone.strip_prefix("GMT"))
        .unwrap_or(zone);
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let digits = match digits.len() {
        5 if digits.as_bytes()[2] == b':' => format!("{}{}", &digits[..2], &digits[3..]),
        4 => digits.to_owned(),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// The zone name Feast gives a fixed offset (`str(datetime.timezone(offset))`).
fn offset_zone(offset: Offset) -> String {
    let total = offset.seconds();
    if total == 0 {
        return "UTC".to_owned();
    }
    let sign = if total < 0 { '-' } else { '+' };
    let a = total.unsigned_abs();
    let mut name = format!("UTC{sign}{:02}:{:02}", a / 3600, a % 3600 / 60);
    if !a.is_multiple_of(60) {
        let _ = write!(name, ":{:02}", a % 60);
    }
    name
}

/// The zone of an Arrow timestamp column's `tz` as Feast names the `tzinfo` pyarrow gives its
/// values: an IANA name as is, `+05:30` as `UTC+05:30`, `+00:00` as `UTC`.
pub fn arrow_zone(tz: Option<&str>) -> Result<String, String> {
    match tz {
        None => Ok(String::new()),
        Some(tz) if tz.starts_with(['+', '-']) => fixed_offset(tz)
            .map(offset_zone)
            .ok_or_else(|| format!("unknown time zone {tz:?}")),
        Some(tz) => Ok(tz.to_owned()),
    }
}

/// `isoformat()` of the instant in `tz` (whole seconds), as Python prints it.
fn isoformat(seconds: i64, tz: &TimeZone, out: &mut String) -> Result<(), String> {
    let ts = Timestamp::from_second(seconds).map_err(|e| e.to_string())?;
    let offset = tz.to_offset(ts);
    let dt = offset.to_datetime(ts);
    if !(1..=9999).contains(&dt.year()) {
        return Err(format!(
            "{seconds} seconds since the epoch is outside years 1..9999"
        ));
    }
    let total = offset.seconds();
    let sign = if total < 0 { '-' } else { '+' };
    let a = total.unsigned_abs();
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        a / 3600,
        a % 3600 / 60
    );
    if !a.is_multiple_of(60) {
        let _ = write!(out, ":{:02}", a % 60);
    }
    Ok(())
}

/// The stored text of a zoned timestamp (`<isoformat>[<zone>]`); `zones` resolves the zone.
/// `lenient` reads an unknown zone as UTC (Feast's reading of bytes it did not write).
pub fn text(value: &Zoned, zones: &mut Zones, lenient: bool) -> Result<String, String> {
    let tz = match zones.resolve(&value.zone) {
        Ok(tz) => tz,
        Err(_) if lenient => TimeZone::UTC,
        Err(e) => return Err(e),
    };
    let mut out = String::with_capacity(32 + value.zone.len());
    isoformat(value.seconds, &tz, &mut out)?;
    out.push('[');
    out.push_str(&value.zone);
    out.push(']');
    Ok(out)
}

/// Reads ISO 8601 text: with an offset (`Z` is `UTC`, `+05:30` is `UTC+05:30`), with a
/// `[zone]` suffix (the zone kept as given; without an offset the time is local to it), or
/// neither (naive: UTC, zone `""`, as Feast keeps a naive datetime).
pub fn parse(text: &str, zones: &mut Zones) -> Result<Zoned, String> {
    let (body, named) = match text.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((body, zone)) => (body, Some(zone)),
        None => (text, None),
    };
    let pieces =
        Pieces::parse(body).map_err(|e| format!("{text:?} is not an ISO 8601 timestamp: {e}"))?;
    let dt = DateTime::from_parts(pieces.date(), pieces.time().unwrap_or(Time::midnight()));
    let (instant, zone) = match (pieces.offset(), named) {
        (Some(offset), named) => {
            let zone = match named {
                Some(z) => z.to_owned(),
                // `Z` and `+00:00` both give `timezone.utc`, which Feast names `UTC`.
                None if offset == PiecesOffset::Zulu => "UTC".to_owned(),
                None => offset_zone(offset.to_numeric_offset()),
            };
            let offset = offset.to_numeric_offset();
            (offset.to_timestamp(dt).map_err(|e| e.to_string())?, zone)
        }
        (None, Some(zone)) => {
            let tz = zones.resolve(zone)?;
            (
                tz.to_timestamp(dt).map_err(|e| e.to_string())?,
                zone.to_owned(),
            )
        }
        (None, None) => (
            Offset::UTC.to_timestamp(dt).map_err(|e| e.to_string())?,
            String::new(),
        ),
    };
    zones.resolve(&zone)?;
    Ok(Zoned {
        seconds: instant.as_second(),
        zone,
    })
}

fn per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

fn invalid(column: &str, row: usize, detail: &str) -> CoreError {
    CoreError::invalid(
        column,
        row,
        format!("not a ZONED_TIMESTAMP value: {detail}"),
    )
}

/// The zoned timestamps of a column (None for null cells). Takes a timestamp column (its `tz`
/// is every row's zone; none is naive), ISO 8601 text (see [`parse`]), or a struct with a
/// `timestamp` field (timestamp, ISO text or epoch seconds) and a `zone` field (text; null
/// or missing: the timestamp's own zone).
pub fn cells(array: &dyn Array, column: &str) -> Result<Vec<Option<Zoned>>, CoreError> {
    column_cells(array, column, false)
}

/// `cells`; `seconds` also takes integers as epoch seconds (a struct's `timestamp` field; a
/// feature column of numbers is refused, as Feast refuses them).
fn column_cells(
    array: &dyn Array,
    column: &str,
    seconds: bool,
) -> Result<Vec<Option<Zoned>>, CoreError> {
    let mut zones = Zones::default();
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    match array.data_type() {
        DataType::Timestamp(unit, tz) => {
            let zone = arrow_zone(tz.as_deref()).map_err(|e| CoreError::unsupported(column, e))?;
            zones
                .resolve(&zone)
                .map_err(|e| CoreError::unsupported(column, e))?;
            let per = per_second(*unit);
            let raw = arrow::compute::cast(array, &DataType::Int64)
                .map_err(|e| CoreError::unsupported(column, e.to_string()))?;
            let raw = raw.as_primitive::<Int64Type>();
            for i in 0..n {
                out.push(array.is_valid(i).then(|| Zoned {
                    // Truncated toward zero, as Python's `int(dt.timestamp())`.
                    seconds: raw.value(i) / per,
                    zone: zone.clone(),
                }));
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            for i in 0..n {
                if array.is_null(i) {
                    out.push(None);
                    continue;
                }
                let node::Node::Str(s) =
                    node::from_arrow(array, i).map_err(|e| invalid(column, i, &e))?
                else {
                    unreachable!("a text cell is a string")
                };
                out.push(Some(
                    parse(&s, &mut zones).map_err(|e| invalid(column, i, &e))?,
                ));
            }
        }
        DataType::Struct(fields) => out = struct_cells(array, fields, column, &mut zones)?,
        DataType::Int64 | DataType::Int32 if seconds => {
            // Epoch seconds (a struct's `timestamp` field): naive, as Feast keeps them.
            let values = arrow::compute::cast(array, &DataType::Int64)
                .map_err(|e| CoreError::unsupported(column, e.to_string()))?;
            let values = values.as_primitive::<Int64Type>();
            for i in 0..n {
                out.push(values.is_valid(i).then(|| Zoned {
                    seconds: values.value(i),
                    zone: String::new(),
                }));
            }
        }
        DataType::Null => out.resize(n, None),
        other => {
            return Err(CoreError::unsupported(
                column,
                format!(
                    "a ZONED_TIMESTAMP feature is written from a timestamp column, ISO 8601 \
                     text or a struct of `timestamp` and `zone`, got Arrow {other}"
                ),
            ))
        }
    }
    Ok(out)
}

/// A struct column of `timestamp` and `zone` (see [`cells`]).
fn struct_cells(
    array: &dyn Array,
    fields: &arrow::datatypes::Fields,
    column: &str,
    zones: &mut Zones,
) -> Result<Vec<Option<Zoned>>, CoreError> {
    let mut out = Vec::with_capacity(array.len());
    let s = array.as_struct();
    let field = |name: &str| fields.iter().position(|f| f.name() == name);
    let Some(at) = field("timestamp") else {
        return Err(CoreError::unsupported(
            column,
            "a ZONED_TIMESTAMP struct needs a `timestamp` field (and a `zone` field)",
        ));
    };
    let stamps = column_cells(s.column(at).as_ref(), column, true)?;
    let names = field("zone").map(|z| s.column(z).clone());
    if let Some(names) = &names {
        if !matches!(
            names.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return Err(CoreError::unsupported(
                column,
                format!(
                    "a ZONED_TIMESTAMP's `zone` field is text, got Arrow {}",
                    names.data_type()
                ),
            ));
        }
    }
    for (i, stamp) in stamps.into_iter().enumerate() {
        if array.is_null(i) {
            out.push(None);
            continue;
        }
        let mut stamp = stamp;
        if let (Some(value), Some(names)) = (stamp.as_mut(), &names) {
            if names.is_valid(i) {
                let node::Node::Str(zone) =
                    node::from_arrow(names.as_ref(), i).map_err(|e| invalid(column, i, &e))?
                else {
                    unreachable!("a text cell is a string")
                };
                zones.resolve(&zone).map_err(|e| invalid(column, i, &e))?;
                value.zone = zone;
            }
        }
        out.push(stamp);
    }
    Ok(out)
}

/// The stored text column of a `ZONED_TIMESTAMP` feature (see the module doc).
pub fn zoned_text(array: &dyn Array, column: &str) -> Result<StringArray, CoreError> {
    let values = cells(array, column)?;
    let mut zones = Zones::default();
    let texts = values
        .iter()
        .enumerate()
        .map(|(row, v)| {
            v.as_ref()
                .map(|v| text(v, &mut zones, false))
                .transpose()
                .map_err(|e| invalid(column, row, &e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StringArray::from(texts))
}

/// Appends the `Value` of a zoned timestamp (proto3: a zero instant and an empty zone are not
/// written, as Feast's runtime leaves them out).
pub fn write_value(value: &Zoned, out: &mut Vec<u8>) {
    put_message(out, FIELD, |m| {
        if value.seconds != 0 {
            put_key(m, 1, WIRE_VARINT);
            put_varint(m, value.seconds as u64);
        }
        if !value.zone.is_empty() {
            put_bytes(m, 2, value.zone.as_bytes());
        }
        Ok::<(), ()>(())
    })
    .expect("writing to a vector cannot fail");
}

/// Feast `Value` bytes of a zoned-timestamp column (zero bytes for null).
pub fn encode_feast(array: &dyn Array, column: &str) -> Result<BinaryArray, CoreError> {
    let values = cells(array, column)?;
    let mut data = Vec::with_capacity(values.len() * 24);
    let mut offsets = Vec::with_capacity(values.len() + 1);
    offsets.push(0i32);
    for value in &values {
        if let Some(value) = value {
            write_value(value, &mut data);
        }
        offsets.push(super::offset(data.len())?);
    }
    Ok(BinaryArray::new(
        OffsetBuffer::new(offsets.into()),
        data.into(),
        None,
    ))
}

/// A `ZonedTimestamp` message body.
pub fn read_message(body: &[u8]) -> Result<Zoned, String> {
    let mut reader = Reader::new(body);
    let mut value = Zoned {
        seconds: 0,
        zone: String::new(),
    };
    while let Some((field, wire)) = reader.field()? {
        match (field, wire) {
            (1, Wire::Varint(v)) => value.seconds = v as i64,
            (2, Wire::Len(b)) => {
                std::str::from_utf8(b)
                    .map_err(|e| format!("zone is not UTF-8: {e}"))?
                    .clone_into(&mut value.zone);
            }
            _ => {}
        }
    }
    Ok(value)
}

/// Feast `Value` bytes back to the stored text (null for an empty Value or Feast's null
/// instant). A zone Feast's SDK cannot resolve reads as UTC, as Feast reads it.
pub fn decode_feast(cells: &[Option<&[u8]>], column: &str) -> Result<StringArray, CoreError> {
    let mut zones = Zones::default();
    let mut out = Vec::with_capacity(cells.len());
    for (row, bytes) in cells.iter().enumerate() {
        let bytes = bytes.unwrap_or(&[]);
        let found = oneof(bytes).map_err(|e| {
            CoreError::decode(column, row, format!("not a valid feast.types.Value: {e}"))
        })?;
        let text = match found {
            None | Some((19, _)) => None,
            Some((FIELD, Wire::Len(body))) => {
                let value = read_message(body).map_err(|e| CoreError::decode(column, row, e))?;
                (value.seconds != NULL_TIMESTAMP)
                    .then(|| text(&value, &mut zones, true))
                    .transpose()
                    .map_err(|e| CoreError::decode(column, row, e))?
            }
            Some((field, _)) => {
                return Err(CoreError::decode(
                    column,
                    row,
                    format!("expected a ZONED_TIMESTAMP Value, found oneof field {field}"),
                ))
            }
        };
        out.push(text);
    }
    Ok(StringArray::from(out))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StructArray, TimestampMicrosecondArray};
    use arrow::datatypes::Field;

    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    }

    // 2024-03-10T06:30:00Z
    const T: i64 = 1_710_052_200;

    #[test]
    fn a_timestamp_column_takes_its_zone_and_writes_feasts_bytes() {
        let column = TimestampMicrosecondArray::from(vec![Some(T * 1_000_000), None])
            .with_timezone("America/New_York");
        let text = zoned_text(&column, "z").unwrap();
        assert_eq!(text.value(0), "2024-03-10T01:30:00-05:00[America/New_York]");
        assert!(text.is_null(1));
        // Recorded from Feast 0.67 for the same instant and zone.
        let bytes = encode_feast(&text, "z").unwrap();
        assert_eq!(
            hex(bytes.value(0)),
            "82031808e8a6b5af061210416d65726963612f4e65775f596f726b"
        );
        assert!(bytes.value(1).is_empty());
        let back = decode_feast(&[Some(bytes.value(0)), None], "z").unwrap();
        assert_eq!(back.value(0), text.value(0));
        assert!(back.is_null(1));
    }

    #[test]
    fn zones_are_named_as_feast_names_them() {
        let cases = [
            (Some("UTC"), "2024-03-10T06:30:00+00:00[UTC]"),
            (Some("+05:30"), "2024-03-10T12:00:00+05:30[UTC+05:30]"),
            (Some("-07:00"), "2024-03-09T23:30:00-07:00[UTC-07:00]"),
            (Some("+00:00"), "2024-03-10T06:30:00+00:00[UTC]"),
            (None, "2024-03-10T06:30:00+00:00[]"),
        ];
        for (tz, want) in cases {
            let column = TimestampMicrosecondArray::from(vec![T * 1_000_000 + 999_999]);
            let column = match tz {
                Some(tz) => column.with_timezone(tz),
                None => column,
            };
            assert_eq!(zoned_text(&column, "z").unwrap().value(0), want, "{tz:?}");
        }
    }

    #[test]
    fn text_reads_offsets_zone_suffixes_and_naive_times() {
        let mut zones = Zones::default();
        let read = |s: &str, zones: &mut Zones| parse(s, zones).unwrap();
        assert_eq!(
            read("2024-03-10T06:30:00Z", &mut zones),
            Zoned {
                seconds: T,
                zone: "UTC".into()
            }
        );
        assert_eq!(
            read("2024-03-10T12:00:00+05:30", &mut zones).zone,
            "UTC+05:30"
        );
        assert_eq!(read("2024-03-10T06:30:00", &mut zones).zone, "");
        // Local to the named zone when no offset is given (EST, before the switch).
        assert_eq!(
            read("2024-03-10T01:30:00[America/New_York]", &mut zones),
            Zoned {
                seconds: T,
                zone: "America/New_York".into()
            }
        );
        // Whole seconds, truncated toward zero as Python's int() truncates.
        assert_eq!(read("1969-12-31T23:59:59.5Z", &mut zones).seconds, 0);
    }

    #[test]
    fn unknown_zones_and_bad_text_are_refused_naming_the_row() {
        for bad in [
            "2024-03-10T06:30:00[Mars/Olympus]",
            "2024-03-10T06:30:00+00:00[america/new_york]",
            "not a time",
            "2024-13-01T00:00:00Z",
        ] {
            let column = StringArray::from(vec![Some("2024-03-10T06:30:00Z"), Some(bad)]);
            let err = zoned_text(&column, "z").unwrap_err().to_string();
            assert!(err.contains("column 'z' row 1"), "{bad}: {err}");
        }
        let column = TimestampMicrosecondArray::from(vec![0]).with_timezone("Nowhere/Land");
        let err = zoned_text(&column, "z").unwrap_err().to_string();
        assert!(err.contains("unknown time zone"), "{err}");
        let err = zoned_text(&Int64Array::from(vec![1]), "z").unwrap_err();
        assert!(err.to_string().contains("got Arrow Int64"), "{err}");
    }

    #[test]
    fn a_struct_gives_one_zone_per_row() {
        let stamps: ArrayRef = Arc::new(Int64Array::from(vec![T, T]));
        let names: ArrayRef = Arc::new(StringArray::from(vec![Some("Europe/Paris"), None]));
        let column = StructArray::from(vec![
            (
                Arc::new(Field::new("timestamp", DataType::Int64, true)),
                stamps,
            ),
            (Arc::new(Field::new("zone", DataType::Utf8, true)), names),
        ]);
        let text = zoned_text(&column, "z").unwrap();
        assert_eq!(text.value(0), "2024-03-10T07:30:00+01:00[Europe/Paris]");
        assert_eq!(text.value(1), "2024-03-10T06:30:00+00:00[]");
    }

    #[test]
    fn feast_bytes_with_a_zone_feast_cannot_resolve_read_as_utc() {
        let mut bytes = Vec::new();
        write_value(
            &Zoned {
                seconds: T,
                zone: "Mars/Olympus".into(),
            },
            &mut bytes,
        );
        let back = decode_feast(&[Some(&bytes)], "z").unwrap();
        assert_eq!(back.value(0), "2024-03-10T06:30:00+00:00[Mars/Olympus]");
        // Feast's null instant is a null value.
        let mut null = Vec::new();
        write_value(
            &Zoned {
                seconds: NULL_TIMESTAMP,
                zone: String::new(),
            },
            &mut null,
        );
        assert!(decode_feast(&[Some(&null)], "z").unwrap().is_null(0));
    }
}
