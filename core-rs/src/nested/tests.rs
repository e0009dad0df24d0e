//! Column-level tests of the nested codecs (the node, writer and reader modules test themselves).
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Int64Builder, ListBuilder, StringArray, StructArray,
};
use arrow::datatypes::{DataType, Field, Fields};

use super::*;

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{x:02x}"));
        s
    })
}

fn struct_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("age", DataType::Int64, true),
    ]))
}

#[test]
fn json_text_from_a_struct_column_keeps_field_order() {
    let names: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
    let ages: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![30, 1]));
    let DataType::Struct(fields) = struct_type() else {
        unreachable!()
    };
    let column = StructArray::new(fields, vec![names, ages], Some(vec![true, false].into()));
    let out = json_text(&column, 34, Some(&struct_type()), "profile").unwrap();
    assert_eq!(out.value(0), r#"{"name":"a","age":30}"#);
    assert!(out.is_null(1));
}

#[test]
fn json_text_sorts_a_maps_keys_and_checks_struct_fields() {
    let text = StringArray::from(vec![Some(r#"{"b": 1, "a": {"d": 2, "c": 3}}"#), None]);
    let out = json_text(&text, 20, None, "m").unwrap();
    assert_eq!(out.value(0), r#"{"a":{"c":3,"d":2},"b":1}"#);
    let missing = StringArray::from(vec![r#"{"name": "x", "age": 1}"#, r#"{"name": "x"}"#]);
    let err = json_text(&missing, 34, Some(&struct_type()), "profile").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 'profile' row 1: not a STRUCT value: missing declared field 'age'"
    );
    let wrong = StringArray::from(vec![r#"{"name": 5, "age": 1}"#]);
    let err = json_text(&wrong, 34, Some(&struct_type()), "profile").unwrap_err();
    assert!(
        err.to_string()
            .contains("at .name: an integer where Utf8 is declared"),
        "{err}"
    );
    let not_json = StringArray::from(vec!["{"]);
    assert!(json_text(&not_json, 20, None, "m")
        .unwrap_err()
        .to_string()
        .contains("row 0"));
}

#[test]
fn feast_bytes_round_trip_through_json_text() {
    let text = StringArray::from(vec![
        Some(r#"{"vehicle_type": "suv", "rating": "4.5"}"#),
        None,
        Some("{}"),
    ]);
    let bytes = encode_feast(&text, 20, "m").unwrap();
    assert_eq!(hex(bytes.value(2)), "a20100");
    assert_eq!(bytes.value(1).len(), 0);
    let back = decode_feast(&bytes, 20, None, "m").unwrap();
    let back = back.as_string::<i32>();
    assert_eq!(back.value(0), r#"{"rating":"4.5","vehicle_type":"suv"}"#);
    assert!(back.is_null(1));
    assert_eq!(back.value(2), "{}");
}

#[test]
fn sets_are_deduplicated_and_sorted() {
    let mut builder = ListBuilder::new(Int64Builder::new());
    builder.append_value([Some(3), Some(1), Some(2), Some(3)]);
    builder.append_null();
    let column = builder.finish();
    let bytes = encode_feast(&column, 25, "ids").unwrap();
    // Feast: {3, 1, 2} → int64_set_val [1, 2, 3].
    assert_eq!(hex(bytes.value(0)), "ca0105".to_owned() + "0a03010203");
    let back = decode_feast(&bytes, 25, None, "ids").unwrap();
    let list = back.as_list::<i32>();
    assert_eq!(
        list.value(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values(),
        &[1, 2, 3]
    );
    assert!(list.is_null(1));
}

#[test]
fn uuids_and_decimals_are_checked_and_stored_in_their_own_fields() {
    let ok = StringArray::from(vec![Some("6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"), None]);
    let bytes = encode_feast(&ok, 36, "id").unwrap();
    assert_eq!(&hex(bytes.value(0))[..6], "a20224");
    let back = decode_feast(&bytes, 36, None, "id").unwrap();
    assert_eq!(
        back.as_string::<i32>().value(0),
        "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"
    );
    let bad = StringArray::from(vec!["1.5", "one"]);
    let err = encode_feast(&bad, 44, "price").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 'price' row 1: \"one\" is not a decimal (DECIMAL)"
    );
}

#[test]
fn wrong_oneof_is_a_decode_error() {
    let bytes = BinaryArray::from(vec![&[0x20u8, 0x01][..]]);
    let err = decode_feast(&bytes, 20, None, "m").unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a MAP Value, found oneof field 4"),
        "{err}"
    );
}

#[test]
fn struct_fields_come_back_in_declared_order() {
    let text = StringArray::from(vec![r#"{"name": "a", "age": 30}"#]);
    let bytes = encode_feast(&text, 34, "p").unwrap();
    let back = decode_feast(&bytes, 34, Some(&struct_type()), "p").unwrap();
    assert_eq!(back.as_string::<i32>().value(0), r#"{"name":"a","age":30}"#);
    let unordered = decode_feast(&bytes, 34, None, "p").unwrap();
    assert_eq!(
        unordered.as_string::<i32>().value(0),
        r#"{"age":30,"name":"a"}"#
    );
}

#[test]
fn json_text_refuses_what_feast_refuses_and_nulls_empty_inner_lists() {
    let mixed = StringArray::from(vec![r#"{"a": 1}"#, r#"{"a": [1, "x"]}"#]);
    let err = json_text(&mixed, 20, None, "m").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("column 'm' row 1: not a MAP value: key 'a': a list mixes"),
        "{err}"
    );
    let lists = StringArray::from(vec![r#"[["a"], null, []]"#]);
    let out = json_text(&lists, 42, None, "v").unwrap();
    assert_eq!(out.value(0), r#"[["a"],null,null]"#);
}

#[test]
fn set_columns_are_deduplicated_in_arrow() {
    let mut builder = ListBuilder::new(Int64Builder::new());
    builder.append_value([Some(3), Some(1), Some(3)]);
    builder.append_null();
    builder.append_value([]);
    let column = builder.finish();
    let out = unique_sets(&column, 25, "ids").unwrap();
    let list = out.as_list::<i32>();
    assert_eq!(
        list.value(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values(),
        &[1, 3]
    );
    assert!(list.is_null(1));
    assert_eq!(list.value(2).len(), 0);
    let mut builder = ListBuilder::new(Int64Builder::new());
    builder.append_value([Some(3), None]);
    let err = unique_sets(&builder.finish(), 25, "ids").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 'ids' row 0: not a INT64_SET value: a null element"
    );
}

#[test]
fn a_json_array_splits_into_cells() {
    let cells = json_array_cells(r#"[{"b": 1, "a": null}, null, [1, 2.5]]"#, "c").unwrap();
    assert_eq!(cells.value(0), r#"{"b":1,"a":null}"#);
    assert!(cells.is_null(1));
    assert_eq!(cells.value(2), "[1,2.5]");
    assert!(json_array_cells("{}", "c").is_err());
}

#[test]
fn feasts_transport_text_for_maps_and_structs_is_read_as_the_json_it_holds() {
    let cells = json_array_cells(r#"["{\"b\": 1, \"a\": \"x\"}", null, "not json"]"#, "c").unwrap();
    let text = json_text(&cells, 20, None, "m").unwrap_err().to_string();
    assert!(
        text.contains("row 2") && text.contains("not valid JSON"),
        "{text}"
    );
    let ok = json_array_cells(r#"["{\"b\": 1, \"a\": \"x\"}", null]"#, "c").unwrap();
    let stored = json_text(&ok, 20, None, "m").unwrap();
    assert_eq!(
        stored.value(0),
        json_text(
            &json_array_cells(r#"[{"b": 1, "a": "x"}]"#, "c").unwrap(),
            20,
            None,
            "m"
        )
        .unwrap()
        .value(0)
    );
    let lists = json_array_cells(r#"[["{\"k\": 2}", "{\"k\": 3}"]]"#, "c").unwrap();
    let stored = json_text(&lists, 21, None, "ml").unwrap();
    assert_eq!(stored.value(0), r#"[{"k":2},{"k":3}]"#);
}

// --- SCALAR_MAP ------------------------------------------------------------------------------

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn scalar_map_text_keeps_typed_keys_in_order() {
    // The keys' JSON text; given as an object of such keys or as [key, value] pairs.
    let given = StringArray::from(vec![
        Some(r#"{"2": "a", "1": 3}"#),
        Some(r#"[[1.5, [1, 2]], [true, {"y": 1, "x": 2}]]"#),
        None,
        Some("{}"),
    ]);
    let out = json_text(&given, 47, None, "m").unwrap();
    assert_eq!(out.value(0), r#"{"2":"a","1":3}"#);
    assert_eq!(out.value(1), r#"{"1.5":[1,2],"true":{"x":2,"y":1}}"#);
    assert!(out.is_null(2));
    assert_eq!(out.value(3), "{}");
}

#[test]
fn scalar_map_bytes_are_feasts() {
    // Recorded from Feast 0.67 (tests/golden/nested_values.json).
    let given = StringArray::from(vec![
        r#"{"1": "a", "2": 3}"#,
        r#"{"1.5": [1, 2], "true": {"x": 1}}"#,
        r#"{"1": null}"#,
        "{}",
    ]);
    let out = encode_feast(&given, 47, "m").unwrap();
    let want = [
        "fa02150a090a02100112031201610a080a02100212022003",
        "fa02290a130a0921000000000000f83f120672040a0201020a120a022801120ca201090a070a017812022001",
        "fa02080a060a0210011200",
        "fa0200",
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(hex(out.value(i)), *w);
    }
    // Read back: the keys as their JSON text, in wire order.
    let decoded = decode_feast(&out, 47, None, "m").unwrap();
    let decoded = decoded.as_string::<i32>();
    assert_eq!(decoded.value(0), r#"{"1":"a","2":3}"#);
    assert_eq!(decoded.value(1), r#"{"1.5":[1,2],"true":{"x":1}}"#);
}

#[test]
fn scalar_map_from_an_arrow_map_with_int_keys() {
    let keys = arrow::array::Int64Array::from(vec![7, 3, 7]);
    let values = StringArray::from(vec![Some("a"), None, Some("c")]);
    let entries = StructArray::from(vec![
        (
            Arc::new(Field::new("key", DataType::Int64, false)),
            Arc::new(keys) as ArrayRef,
        ),
        (
            Arc::new(Field::new("value", DataType::Utf8, true)),
            Arc::new(values) as ArrayRef,
        ),
    ]);
    let field = Arc::new(Field::new("entries", entries.data_type().clone(), false));
    let map = arrow::array::MapArray::new(
        field,
        arrow::buffer::OffsetBuffer::new(vec![0, 3].into()),
        entries,
        None,
        false,
    );
    // A repeated key keeps its first place and takes the last value, as a Python dict does.
    let out = json_text(&map, 47, None, "m").unwrap();
    assert_eq!(out.value(0), r#"{"7":"c","3":null}"#);
}

#[test]
fn scalar_map_refuses_string_keys_and_what_feast_refuses() {
    for (text, why) in [
        (r#"{"a": 1}"#, r#"key "a" is not an int"#),
        (r#"[["b", 1]]"#, r#"key "b" is not an int"#),
        ("[[1, 2, 3]]", "expected a [key, value] pair"),
        (r#"{"1": []}"#, "no element type"),
        (r#"{"1": [1, "x"]}"#, "a list mixes"),
        (r#""text""#, "not an object"),
        ("[1]", "expected a [key, value] pair"),
    ] {
        let given = StringArray::from(vec![Some("{}"), Some(text)]);
        let err = json_text(&given, 47, None, "m").unwrap_err().to_string();
        assert!(err.contains("column 'm' row 1"), "{err}");
        assert!(err.contains(why), "{text}: {err}");
        let err = encode_feast(&given, 47, "m").unwrap_err().to_string();
        assert!(err.contains(why), "{text}: {err}");
    }
}

#[test]
fn feast_bytes_with_keys_json_cannot_type_read_as_tagged_pairs_and_write_back() {
    // Recorded from Feast 0.67 (tests/golden/nested_values.json): {np.int32(1): "a"}
    // (int32_key), {b"k": "a"} (bytes_key), UUID, decimal, datetime and mixed keys.
    let int32 = unhex("fa020b0a090a0208011203120161");
    let column = BinaryArray::from(vec![int32.as_slice()]);
    let out = decode_feast(&column, 47, None, "m").unwrap();
    assert_eq!(out.as_string::<i32>().value(0), r#"{"1":"a"}"#);
    for (hex, stored) in [
        (
            "fa020c0a0a0a033a016b1203120161",
            r#"[[{"bytes":"aw=="},"a"]]"#,
        ),
        (
            "fa025d0a2d0a26422436663163316331652d386133622d346334662d396435352d306338663564396131\
             62326312031201750a2c0a26422461383039386331612d663836652d313164612d626431612d30303131\
             323434346265316512022002",
            r#"[[{"uuid":"6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"},"u"],[{"uuid":"a8098c1a-f86e-11da-bd1a-00112444be1e"},2]]"#,
        ),
        (
            "fa02340a0d0a065204312e353012031201640a0d0a0752052d31452b33120220020a0b0a0552034e61\
             4e120220030a070a035201301200",
            r#"[[{"decimal":"1.50"},"d"],[{"decimal":"-1E+3"},2],[{"decimal":"NaN"},3],[{"decimal":"0"},null]]"#,
        ),
        (
            "fa02240a0d0a0230001207120565706f63680a130a06308087b5c303120929000000000000f83f",
            r#"[[{"timestamp":0},"epoch"],[{"timestamp":946684800},1.5]]"#,
        ),
        (
            "fa02640a0c0a02100112061204626f6f6c0a0e0a033a01621207120562797465730a300a2642243666\
             3163316331652d386133622d346334662d396435352d30633866356439613162326312061204757569\
             640a120a055203322e3512091207646563696d616c",
            r#"[[1,"bool"],[{"bytes":"Yg=="},"bytes"],[{"uuid":"6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"},"uuid"],[{"decimal":"2.5"},"decimal"]]"#,
        ),
    ] {
        let hex: String = hex.split_whitespace().collect();
        let value = unhex(&hex);
        let column = BinaryArray::from(vec![value.as_slice()]);
        let out = decode_feast(&column, 47, None, "m").unwrap();
        let text = out.as_string::<i32>().value(0);
        assert_eq!(text, stored);
        // The stored text is written back as Feast's bytes, and reads as the same text.
        let stored_column = StringArray::from(vec![text]);
        let encoded = encode_feast(&stored_column, 47, "m").unwrap();
        assert_eq!(encoded.value(0), value.as_slice(), "{stored}");
        let again = json_text(&stored_column, 47, None, "m").unwrap();
        assert_eq!(again.value(0), stored);
    }
}

#[test]
fn scalar_map_refuses_bad_tagged_keys_naming_them() {
    for (text, why) in [
        (
            r#"[[{"uuid": "x"}, 1]]"#,
            r#"element 0: key {"uuid": "x"} is not a UUID"#,
        ),
        (
            r#"[[{"bytes": "!!"}, 1]]"#,
            r#"key {"bytes": "!!"} is not base64"#,
        ),
        (r#"[[{"decimal": "1.2.3"}, 1]]"#, "is not a decimal"),
        (
            r#"[[{"timestamp": "2024"}, 1]]"#,
            "expected whole epoch seconds",
        ),
        (r#"[[{"color": "red"}, 1]]"#, "unknown tag"),
        (
            r#"[[{"uuid": "x", "bytes": ""}, 1]]"#,
            "a key object has 2 entries",
        ),
        ("[[null, 1]]", "a key is null"),
        (r#"{"{\"bytes\": \"AA==\"}": 1}"#, "is not an int"),
    ] {
        let given = StringArray::from(vec![Some("{}"), Some(text)]);
        let err = json_text(&given, 47, None, "m").unwrap_err().to_string();
        assert!(err.contains("column 'm' row 1"), "{err}");
        assert!(err.contains(why), "{text}: {err}");
    }
}
