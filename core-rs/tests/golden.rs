//! Every case of the Feast 0.67 golden vectors (`tests/golden/` at the repository root), through the same Arrow entry
//! points the Python binding uses. Where Repast deliberately differs from Feast (see
//! `docs/internals.md`, "Value types and Arrow"), the case asserts Repast's documented bytes.
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;

use _core::feast_value::{
    decode_timestamps, decode_values, encode_timestamps, encode_values, ValueType,
};
use _core::keys::{
    entity_key_prefix, key_column_from_arrow, serialize_entity_key, serialize_entity_keys, KeyPart,
    KeyType, KeyValue, KeyVersion,
};
use _core::mmh3;
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array,
    ListArray, StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{Field, TimestampMicrosecondType};
use serde_json::Value as Json;

fn golden(name: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden JSON")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn base64(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Microseconds since the epoch of an ISO 8601 time from the vectors (naive = UTC), parsed by
/// the small-write path's parser, which the vectors thereby check too.
fn iso_micros(s: &str) -> i64 {
    _core::iso_time::parse(s)
        .unwrap_or_else(|| panic!("{s:?} is outside iso_time's subset"))
        .micros
}

/// Two rows of one join key's value as the Arrow column Repast would be given.
fn key_input(s: &Json, blob: &[u8]) -> (ArrayRef, KeyType) {
    match s["type"].as_str().unwrap() {
        "INT64" => (
            Arc::new(Int64Array::from(vec![s["value"].as_i64().unwrap(); 2])),
            KeyType::Int64,
        ),
        "INT32" => (
            Arc::new(Int32Array::from(vec![
                s["value"].as_i64().unwrap() as i32;
                2
            ])),
            KeyType::Int32,
        ),
        "UNIX_TIMESTAMP" => (
            Arc::new(
                TimestampMicrosecondArray::from(vec![s["value"].as_i64().unwrap() * 1_000_000; 2])
                    .with_timezone("UTC"),
            ),
            KeyType::UnixTimestamp,
        ),
        "STRING" => {
            let v = std::str::from_utf8(blob).unwrap();
            (Arc::new(StringArray::from(vec![v, v])), KeyType::String)
        }
        _ => (
            Arc::new(BinaryArray::from_vec(vec![blob, blob])),
            KeyType::Bytes,
        ),
    }
}

// -------------------------------------------------------------------------------------------
// entity_keys.json

#[test]
fn entity_keys() {
    let doc = golden("entity_keys.json");
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 45);
    for case in cases {
        let what = case["description"].as_str().unwrap();
        let version = KeyVersion::from_number(case["version"].as_i64().unwrap()).unwrap();
        let names: Vec<&str> = case["input_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let specs: Vec<(&str, &Json)> = names.iter().map(|&n| (n, &case["join_keys"][n])).collect();

        // 1. the scalar path
        let blobs: Vec<Vec<u8>> = specs
            .iter()
            .map(|(_, s)| match s["type"].as_str().unwrap() {
                "BYTES" => base64(s["value"].as_str().unwrap()),
                "STRING" => s["value"].as_str().unwrap().as_bytes().to_vec(),
                _ => Vec::new(),
            })
            .collect();
        let pairs: Vec<(&str, KeyValue<'_>)> = specs
            .iter()
            .zip(&blobs)
            .map(|(&(name, s), blob)| {
                let value = match s["type"].as_str().unwrap() {
                    "INT64" => KeyValue::Int64(s["value"].as_i64().unwrap()),
                    "INT32" => KeyValue::Int32(s["value"].as_i64().unwrap() as i32),
                    "UNIX_TIMESTAMP" => KeyValue::UnixTimestamp(s["value"].as_i64().unwrap()),
                    "STRING" => KeyValue::String(std::str::from_utf8(blob).unwrap()),
                    "BYTES" => KeyValue::Bytes(blob),
                    other => panic!("{what}: type {other}"),
                };
                (name, value)
            })
            .collect();
        let expect = case["hex"].as_str().unwrap();
        let key = serialize_entity_key(&pairs, version).unwrap();
        assert_eq!(hex(&key), expect, "{what} {version:?}");

        // 2. the Arrow batch path, two rows with a suffix
        let arrays: Vec<(ArrayRef, KeyType)> = specs
            .iter()
            .zip(&blobs)
            .map(|(&(_, s), blob)| key_input(s, blob))
            .collect();
        let parts: Vec<KeyPart<'_>> = names
            .iter()
            .zip(&arrays)
            .map(|(&name, (array, key_type))| KeyPart {
                name,
                key_type: *key_type,
                column: key_column_from_arrow(array.as_ref(), *key_type, name).unwrap(),
            })
            .collect();
        let batch = serialize_entity_keys(&parts, 2, version, b"proj").unwrap();
        let row1 = &batch.data[batch.offsets[1] as usize..batch.offsets[2] as usize];
        assert_eq!(hex(row1), format!("{expect}70726f6a"), "{what} (batch)");

        if version == KeyVersion::V3 {
            let prefix = entity_key_prefix(&names).unwrap();
            assert_eq!(
                hex(&prefix),
                case["prefix_hex"].as_str().unwrap(),
                "{what} prefix"
            );
            assert_eq!(
                hex(&mmh3::x64_128(&key, 0)),
                case["entity_id_mmh3_x64_128"].as_str().unwrap(),
                "{what} entity id"
            );
        }
    }
}

// -------------------------------------------------------------------------------------------
// mmh3_fields.json

#[test]
fn mmh3_fields() {
    let doc = golden("mmh3_fields.json");
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 32);
    for case in cases {
        let (fv, feature) = (
            case["fv"].as_str().unwrap(),
            case["feature"].as_str().unwrap(),
        );
        let input = unhex(case["input_utf8_hex"].as_str().unwrap());
        assert_eq!(input, format!("{fv}:{feature}").as_bytes());
        assert_eq!(
            u64::from(mmh3::x86_32(&input, 0)),
            case["hash_u32"].as_u64().unwrap(),
            "{fv}:{feature}"
        );
        assert_eq!(
            hex(&mmh3::feature_field_name(fv, feature)),
            case["field_hex"].as_str().unwrap()
        );
    }
}

// -------------------------------------------------------------------------------------------
// values.json

/// One cell (or a column, for `batch_context`) as the Arrow array Repast would be given.
fn arrow_input(value_type: &str, encoding: &str, values: &[&Json]) -> ArrayRef {
    let special = |v: &Json| match v.as_str() {
        Some("NaN") => f64::NAN,
        Some("Infinity") => f64::INFINITY,
        Some("-Infinity") => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap(),
    };
    let is_list = value_type.ends_with("_LIST");
    if is_list {
        let mut offsets = vec![0usize];
        let mut items: Vec<&Json> = Vec::new();
        for v in values {
            items.extend(v.as_array().into_iter().flatten());
            offsets.push(items.len());
        }
        let element = value_type.trim_end_matches("_LIST");
        let element_encoding = encoding.trim_end_matches("_list");
        let child = arrow_input(element, element_encoding, &items);
        let field = Arc::new(Field::new_list_field(child.data_type().clone(), true));
        let nulls = values.iter().map(|v| !v.is_null()).collect::<Vec<_>>();
        return Arc::new(ListArray::new(
            field,
            OffsetBuffer::from_lengths(offsets.windows(2).map(|w| w[1] - w[0])),
            child,
            Some(nulls.into()),
        ));
    }
    match (value_type, encoding) {
        // Repast takes timestamps as Arrow timestamps: Feast's float NaN is a null one here.
        ("UNIX_TIMESTAMP", "float_special") => Arc::new(
            TimestampMicrosecondArray::from(vec![None::<i64>; values.len()]).with_timezone("UTC"),
        ),
        (_, "datetime_iso" | "numpy_datetime64") => Arc::new(
            values
                .iter()
                .map(|v| v.as_str().filter(|s| *s != "NaT").map(iso_micros))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
        ("FLOAT" | "DOUBLE", _) | (_, "float_special") => Arc::new(
            values
                .iter()
                .map(|v| (!v.is_null()).then(|| special(v)))
                .collect::<Float64Array>(),
        ),
        (_, _) if values.iter().any(|v| v.is_f64()) => {
            Arc::new(values.iter().map(|v| v.as_f64()).collect::<Float64Array>())
        }
        ("INT64" | "UNIX_TIMESTAMP", _) => {
            Arc::new(values.iter().map(|v| v.as_i64()).collect::<Int64Array>())
        }
        ("INT32", _) => Arc::new(
            values
                .iter()
                .map(|v| v.as_i64().map(|x| x as i32))
                .collect::<Int32Array>(),
        ),
        ("BOOL", _) => Arc::new(values.iter().map(|v| v.as_bool()).collect::<BooleanArray>()),
        ("BYTES", _) => {
            let blobs: Vec<Option<Vec<u8>>> =
                values.iter().map(|v| v.as_str().map(base64)).collect();
            Arc::new(BinaryArray::from_iter(blobs))
        }
        ("STRING" | "JSON", _) => {
            Arc::new(values.iter().map(|v| v.as_str()).collect::<StringArray>())
        }
        other => panic!("no Arrow input for {other:?}"),
    }
}

fn value_code(name: &str) -> i64 {
    match name {
        "BYTES" => 1,
        "STRING" => 2,
        "INT32" => 3,
        "INT64" => 4,
        "DOUBLE" => 5,
        "FLOAT" => 6,
        "BOOL" => 7,
        "UNIX_TIMESTAMP" => 8,
        "BYTES_LIST" => 11,
        "STRING_LIST" => 12,
        "INT32_LIST" => 13,
        "INT64_LIST" => 14,
        "DOUBLE_LIST" => 15,
        "FLOAT_LIST" => 16,
        "BOOL_LIST" => 17,
        "UNIX_TIMESTAMP_LIST" => 18,
        "NULL" => 19,
        "MAP" => 20,
        "JSON" => 32,
        other => panic!("value type {other}"),
    }
}

/// Repast's bytes where they deliberately differ from Feast's (docs/internals.md).
fn repast_expectation(case: &Json) -> String {
    let feast = case["hex"].as_str().unwrap();
    let note = case["note"].as_str().unwrap_or("");
    match (
        case["value_type"].as_str().unwrap(),
        case["python_value"].as_str(),
    ) {
        // Empty bytes are `bytes_val ""` whatever else is in the column (Feast: null when the
        // column has no non-empty sample).
        ("BYTES", Some("")) => "0a00".to_owned(),
        // A null timestamp (NaT, NaN) is an empty Value, not Feast's INT64_MIN sentinel.
        ("UNIX_TIMESTAMP", _) if note.contains("INT64_MIN") => String::new(),
        _ => feast.to_owned(),
    }
}

#[test]
fn values_encode() {
    let doc = golden("values.json");
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 97);
    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        let name = case["value_type"].as_str().unwrap();
        let encoding = case["encoding"].as_str().unwrap();
        let what = format!("case {i} {name} {}", case["python_value"]);
        if matches!(name, "MAP" | "NULL") {
            // Not encodable from Arrow (see `unsupported_value_types`); decoding is checked below.
            assert!(ValueType::from_code(value_code(name)).is_err(), "{what}");
            continue;
        }
        let value_type = ValueType::from_code(value_code(name)).unwrap();
        let (column, index): (Vec<&Json>, usize) = match case.get("batch_context") {
            Some(ctx) => (
                ctx["column"].as_array().unwrap().iter().collect(),
                ctx["index"].as_u64().unwrap() as usize,
            ),
            None => (vec![&case["python_value"]], 0),
        };
        let input = arrow_input(name, encoding, &column);
        let out = encode_values(input.as_ref(), value_type, "c")
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(hex(out.value(index)), repast_expectation(case), "{what}");
        assert_eq!(out.null_count(), 0);
        checked += 1;
    }
    assert_eq!(checked, 95);
}

#[test]
fn values_decode_round_trip() {
    let doc = golden("values.json");
    for (i, case) in doc["cases"].as_array().unwrap().iter().enumerate() {
        let name = case["value_type"].as_str().unwrap();
        let feast = unhex(case["hex"].as_str().unwrap());
        let cell = BinaryArray::from_vec(vec![feast.as_slice()]);
        let what = format!("case {i} {name} {}", case["python_value"]);
        match name {
            // An explicit null_val decodes to null under every type.
            "NULL" => {
                let out = decode_values(&cell, ValueType::from_code(4).unwrap(), "c").unwrap();
                assert!(out.is_null(0), "{what}");
            }
            // map_val cannot be asked for; asking for another type names what was found.
            "MAP" => {
                let err = decode_values(&cell, ValueType::from_code(4).unwrap(), "m").unwrap_err();
                assert_eq!(
                    err.to_string(),
                    "column 'm' row 0: expected int64_val for INT64, found map_val"
                );
            }
            _ => {
                let value_type = ValueType::from_code(value_code(name)).unwrap();
                let out =
                    decode_values(&cell, value_type, "c").unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(out.data_type(), &value_type.arrow_type());
                if feast.is_empty() || case["note"].as_str().unwrap_or("").contains("INT64_MIN") {
                    assert!(out.is_null(0), "{what}: expected null");
                    continue;
                }
                // Decoding then encoding again gives Feast's bytes back.
                let again = encode_values(out.as_ref(), value_type, "c").unwrap();
                assert_eq!(hex(again.value(0)), hex(&feast), "{what}");
            }
        }
    }
}

#[test]
fn unix_timestamps_decode_to_microseconds() {
    let cell = BinaryArray::from_vec(vec![&unhex("40c0d2caac06")[..]]);
    let out = decode_values(&cell, ValueType::from_code(8).unwrap(), "t").unwrap();
    let ts = out.as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.value(0), 1_704_110_400_000_000);
}

#[test]
fn timestamps() {
    let doc = golden("values.json");
    let cases = doc["timestamps"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    for case in cases {
        let iso = case["iso"].as_str().unwrap();
        let seconds = case["seconds"].as_i64().unwrap();
        let nanos = case["nanos"].as_i64().unwrap();
        let micros = seconds * 1_000_000 + nanos / 1000;
        assert_eq!(iso_micros(iso), micros, "{iso}");
        let input = TimestampMicrosecondArray::from(vec![micros]).with_timezone("UTC");
        let out = encode_timestamps(&input, "ts").unwrap();
        assert_eq!(hex(out.value(0)), case["hex"].as_str().unwrap(), "{iso}");
        let back = decode_timestamps(&out, "ts").unwrap();
        assert_eq!(
            back.as_primitive::<TimestampMicrosecondType>().value(0),
            micros,
            "{iso}"
        );
    }
}
