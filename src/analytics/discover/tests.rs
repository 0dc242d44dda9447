use bytes::Bytes;

use super::*;
use crate::config::analytics::{ColumnSource, MAX_COLUMNS, SqlType, parse_json_path};
use crate::config::{Config, Sections};

fn records(lines: &[&str]) -> Vec<Bytes> {
    lines
        .iter()
        .map(|line| Bytes::copy_from_slice(line.as_bytes()))
        .collect()
}

/// `(name, type, path)` of each column, for comparing as a table.
fn columns(discovered: &Discovered) -> Vec<(&str, &str, &str)> {
    discovered
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.ty.as_str(), c.path.as_str()))
        .collect()
}

fn type_of<'a>(discovered: &'a Discovered, name: &str) -> &'a str {
    discovered
        .columns
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.ty.as_str())
        .unwrap_or_else(|| panic!("no column {name} in {discovered:?}"))
}

#[test]
fn nested_json_members_become_paths_in_document_order() {
    let found = discover(&records(&[
        r#"{"user": {"id": 7, "name": "ann"}, "ok": true}"#,
        r#"{"user": {"id": 8, "name": "bob", "tier": {"level": 2}}, "ok": false}"#,
    ]))
    .unwrap();
    assert_eq!(found.format, "json");
    assert_eq!(
        columns(&found),
        [
            ("user_id", "INTEGER", "$.user.id"),
            ("user_name", "VARCHAR(8)", "$.user.name"),
            ("ok", "BOOLEAN", "$.ok"),
            ("user_tier_level", "INTEGER", "$.user.tier.level"),
        ]
    );
    assert_eq!((found.records_read, found.not_fitting), (2, 0));
}

#[test]
fn arrays_give_their_first_element_only() {
    let found = discover(&records(&[
        r#"{"tags": ["a", "bb", "ccc"], "items": [{"sku": "x1", "qty": 2}, {"sku": "x2"}], "none": []}"#,
        r#"{"tags": [], "matrix": [[1, 2], [3]]}"#,
    ]))
    .unwrap();
    assert_eq!(
        columns(&found),
        [
            ("tags_0", "VARCHAR(8)", "$.tags[0]"),
            ("items_0_sku", "VARCHAR(8)", "$.items[0].sku"),
            ("items_0_qty", "INTEGER", "$.items[0].qty"),
            ("matrix_0_0", "INTEGER", "$.matrix[0][0]"),
        ]
    );
}

#[test]
fn a_path_that_ever_holds_an_object_or_array_is_not_a_column() {
    let found = discover(&records(&[
        r#"{"error": null, "tags": "one", "n": 1}"#,
        r#"{"error": {"code": 5}, "tags": ["a", "b"], "n": 2}"#,
    ]))
    .unwrap();
    assert_eq!(
        columns(&found),
        [
            ("n", "INTEGER", "$.n"),
            ("error_code", "INTEGER", "$.error.code"),
            ("tags_0", "VARCHAR(8)", "$.tags[0]"),
        ]
    );
}

#[test]
fn json_numbers_widen_and_disagreements_become_text() {
    let found = discover(&records(&[
        r#"{"small": 1, "big": 1, "real": 1, "huge": 1, "mixed": 1, "flag": true, "late": null, "never": null}"#,
        r#"{"small": -2, "big": 3000000000, "real": 1.5, "huge": 18446744073709551615, "mixed": "x", "flag": 0}"#,
        r#"{"late": 12}"#,
    ]))
    .unwrap();
    for (name, ty) in [
        ("small", "INTEGER"),
        ("big", "BIGINT"),
        ("real", "DOUBLE"),
        ("huge", "DOUBLE"),
        ("mixed", "VARCHAR(8)"),
        ("flag", "VARCHAR(8)"),
        ("late", "INTEGER"),
        ("never", "VARCHAR(8)"),
    ] {
        assert_eq!(type_of(&found, name), ty, "{name}");
    }
}

#[test]
fn json_strings_are_timestamps_dates_or_varchar_sized_by_the_longest() {
    let long = "x".repeat(70_000);
    let found = discover(&records(&[
        r#"{"ts": "2024-05-01T12:00:00Z", "day": "2024-02-29", "mix": "2024-05-01", "bad": "2024-02-30", "name": "nine char", "wide": "héllo"}"#,
        r#"{"ts": "2024-05-01T12:00:00.123+02:00", "day": "2000-12-31", "mix": "2024-05-01 10:00:00", "bad": "2024-02-28"}"#,
        r#"{"ts": "2024-05-01 12:00:00.5", "num_text": "42"}"#,
        &format!(r#"{{"ts": "2024-05-01t23:59:60z", "longest": "{long}"}}"#),
    ]))
    .unwrap();
    for (name, ty) in [
        ("ts", "TIMESTAMP"),
        ("day", "DATE"),
        ("mix", "VARCHAR(32)"),
        ("bad", "VARCHAR(16)"),
        ("name", "VARCHAR(16)"),
        ("wide", "VARCHAR(8)"),
        ("num_text", "VARCHAR(8)"),
        ("longest", "VARCHAR(65535)"),
    ] {
        assert_eq!(type_of(&found, name), ty, "{name}");
    }
}

#[test]
fn json_keys_become_unique_identifiers_the_loader_accepts() {
    let found = discover(&records(&[
        r#"{"user-name": 1, "9lives": 1, "ROWTIME": 1, "Shard_Id": 1, "a.b": 1, "Total": 1, "total": 1, "": 1, "名前": 1, "x\"]y": 1, "a": {"b": 1}}"#,
    ]))
    .unwrap();
    assert_eq!(
        columns(&found),
        [
            ("user_name", "INTEGER", "$.user-name"),
            ("COL_9lives", "INTEGER", "$.9lives"),
            ("COL_ROWTIME", "INTEGER", "$.ROWTIME"),
            ("COL_Shard_Id", "INTEGER", "$.Shard_Id"),
            ("a_b", "INTEGER", "$[\"a.b\"]"),
            ("Total", "INTEGER", "$.Total"),
            ("total_2", "INTEGER", "$.total"),
            ("COL", "INTEGER", "$[\"\"]"),
            ("_", "INTEGER", "$.名前"),
            ("a_b_2", "INTEGER", "$.a.b"),
        ]
    );
}

#[test]
fn csv_reads_rfc_4180_quotes_and_types_by_position() {
    let found = discover(&records(&[
        "1,\"Smith, John\",\"said \"\"hi\"\"\",2024-01-02,007\n",
        "2,Ann, ,2024-01-03 ,042\r\n",
        "3000000000,\"multi\nline\",x,2024-01-04,1\n",
        "not,the,usual,count\n",
    ]))
    .unwrap();
    assert_eq!(found.format, "csv");
    assert_eq!(
        columns(&found),
        [
            ("COL1", "BIGINT", "1"),
            ("COL2", "VARCHAR(16)", "2"),
            ("COL3", "VARCHAR(16)", "3"),
            ("COL4", "DATE", "4"),
            ("COL5", "VARCHAR(8)", "5"),
        ]
    );
    assert_eq!(found.not_fitting, 1);
}

#[test]
fn tsv_is_chosen_for_a_consistent_tab_separated_field_count() {
    let found = discover(&records(&[
        "a\t1\t0.5\ttrue\t2024-05-01T00:00:00Z\n",
        "b,c\t-7\t1e3\tFALSE\t\n",
        "cc\t2\t3\tfalse\t2024-05-01T00:00:01Z",
        "short\t1\n",
    ]))
    .unwrap();
    assert_eq!(found.format, "tsv");
    assert_eq!(
        columns(&found),
        [
            ("COL1", "VARCHAR(8)", "1"),
            ("COL2", "INTEGER", "2"),
            ("COL3", "DOUBLE", "3"),
            ("COL4", "BOOLEAN", "4"),
            ("COL5", "TIMESTAMP", "5"),
        ]
    );
    assert_eq!(found.not_fitting, 1);
}

#[test]
fn garbage_counts_as_not_fitting_and_truncated_objects_add_nothing() {
    let found = discover(&[
        Bytes::from_static(br#"{"a": 1}"#),
        Bytes::from_static(br#"{"a": 2, "b": "x"}"#),
        Bytes::from_static(br#"{"a": 3}"#),
        Bytes::from_static(br#" {"a": 4} "#),
        Bytes::from_static(br#"{"a": "oops", "c": 1"#),
        Bytes::from_static(br#"[{"a": "list"}]"#),
        Bytes::from_static(b"\xff\xfe\x00binary"),
    ])
    .unwrap();
    assert_eq!(found.format, "json");
    assert_eq!(
        columns(&found),
        [("a", "INTEGER", "$.a"), ("b", "VARCHAR(8)", "$.b")]
    );
    assert_eq!((found.records_read, found.not_fitting), (7, 3));
}

#[test]
fn json_in_the_minority_falls_back_to_csv() {
    let found = discover(&records(&[
        r#"{"a": 1, "b": 2}"#,
        "plain words",
        "more words",
    ]))
    .unwrap();
    assert_eq!(found.format, "csv");
    assert_eq!(columns(&found), [("COL1", "VARCHAR(16)", "1")]);
    assert_eq!(found.not_fitting, 1);
}

#[test]
fn what_cannot_be_discovered_says_why() {
    assert_eq!(discover(&[]), Err(DiscoverError::NoRecords));
    let binary = vec![Bytes::from_static(b"\xff\xfe"); 3];
    assert_eq!(
        discover(&binary),
        Err(DiscoverError::NothingParseable { records: 3 })
    );
    assert_eq!(
        discover(&records(&["{}", r#"{"a": [], "b": {}}"#])),
        Err(DiscoverError::NoColumns { records: 2 })
    );
    let huge = Bytes::from(vec![b'a'; MAX_RECORD_BYTES + 1]);
    let error = discover(std::slice::from_ref(&huge)).unwrap_err();
    assert_eq!(error, DiscoverError::AllTooLarge { records: 1 });
    assert!(error.to_string().contains("over 1048576 bytes"), "{error}");
}

#[test]
fn work_is_capped_in_records_columns_depth_and_size() {
    let mut many = vec![Bytes::from_static(br#"{"n": 1}"#); MAX_RECORDS + 5];
    many[0] = Bytes::from(format!(r#"{{"n": "{}"}}"#, "x".repeat(MAX_RECORD_BYTES)));
    let found = discover(&many).unwrap();
    assert_eq!((found.records_read, found.not_fitting), (MAX_RECORDS, 1));
    assert_eq!(type_of(&found, "n"), "INTEGER");

    let wide: Vec<String> = (0..MAX_COLUMNS + 10)
        .map(|i| format!(r#""k{i}": {i}"#))
        .collect();
    let found = discover(&[Bytes::from(format!("{{{}}}", wide.join(",")))]).unwrap();
    assert_eq!(found.columns.len(), MAX_COLUMNS);

    let deep = format!("{}1{}", r#"{"d": "#.repeat(40), "}".repeat(40));
    let shallow = r#"{"s": 1}"#;
    let found = discover(&records(&[&deep, shallow])).unwrap();
    assert_eq!(columns(&found), [("s", "INTEGER", "$.s")]);
    assert_eq!(found.not_fitting, 0);
}

#[test]
fn discovered_serializes_with_a_type_key() {
    let found = discover(&records(&[r#"{"a": 1}"#])).unwrap();
    assert_eq!(
        serde_json::to_value(&found).unwrap(),
        serde_json::json!({
            "format": "json",
            "columns": [{ "name": "a", "type": "INTEGER", "path": "$.a" }],
            "records_read": 1,
            "not_fitting": 0,
        })
    );
}

/// Loads `input` (a `to_toml` block for stream `s`) with a minimal `[stream]`.
fn load(input: &str) -> Result<Config, String> {
    let text = format!(
        "[stream]\nlisten = [\"127.0.0.1:0\"]\ndata_dir = \"data\"\n\
         [[stream.streams]]\nname = \"s\"\n[analytics]\n{input}"
    );
    Config::from_str_sections(&text, std::path::Path::new("edgewise.toml"), Sections::Cdn)
        .map_err(|e| format!("{e}\nin:\n{text}"))
}

#[test]
fn to_toml_is_an_input_the_config_loader_accepts_as_is() {
    let samples = [
        records(&[
            r#"{"user": {"id": 1, "tags": ["a"]}, "ROWTIME": "2024-05-01", "a.b \"c\"": 1.5, "": true}"#,
        ]),
        records(&["1,\"x, y\",2024-05-01 10:00:00"]),
        records(&["1\t2\n", "3\t4\n"]),
    ];
    let json = discover(&samples[0]).unwrap();
    assert_eq!(
        columns(&json),
        [
            ("user_id", "INTEGER", "$.user.id"),
            ("user_tags_0", "VARCHAR(8)", "$.user.tags[0]"),
            ("COL_ROWTIME", "DATE", "$.ROWTIME"),
            ("a_b_c_", "DOUBLE", r#"$["a.b "c""]"#),
            ("COL", "BOOLEAN", r#"$[""]"#),
        ]
    );
    for sample in samples {
        let found = discover(&sample).unwrap();
        let config = load(&found.to_toml("s")).unwrap();
        let input = config
            .analytics
            .as_ref()
            .and_then(|a| a.input("s"))
            .expect("the input for s");
        assert_eq!(input.format.name(), found.format);
        assert_eq!(input.columns.len(), found.columns.len());
        for (loaded, proposed) in input.columns.iter().zip(&found.columns) {
            assert_eq!(loaded.name, proposed.name);
            assert_eq!(Some(loaded.ty), SqlType::parse(&proposed.ty));
            let source = match parse_json_path(&proposed.path) {
                Ok(steps) => ColumnSource::Json(steps),
                Err(_) => ColumnSource::Position(proposed.path.parse::<usize>().unwrap() - 1),
            };
            assert_eq!(loaded.source, source, "{}", proposed.path);
        }
    }
}
