//! serde's and toml's messages in the words of the TOML file: "expected an integer (seconds),
//! found the string \"300\"", never `i64` or `sequence`. The operator wrote TOML and should
//! not have to know which Rust type reads it.

/// Keys whose integer is a number of seconds, said in the message so the fix is obvious.
const SECONDS_KEYS: [&str; 1] = ["ttl"];

/// `message` (serde's, via toml) rephrased for the value of `key`; messages it does not
/// recognise are returned as they are.
pub(super) fn in_toml_terms(message: &str, key: Option<&str>) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!(
            "expected {}, found {}",
            expected_thing(expected, key),
            found_thing(found)
        );
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((length, expected)) = rest.split_once(", expected ")
    {
        return format!(
            "expected {}, found an array of {length}",
            expected_thing(expected, key)
        );
    }
    for (serde_words, toml_words) in [
        ("unknown field ", "unknown key "),
        ("missing field ", "missing key "),
        ("duplicate field ", "key given twice: "),
        ("unknown variant ", "unknown value "),
    ] {
        if let Some(rest) = message.strip_prefix(serde_words) {
            return format!("{toml_words}{}", rest.replace(", there are no fields", ""));
        }
    }
    message.to_string()
}

/// What serde expected (a Rust type or a visitor's own words) as a TOML value.
fn expected_thing(expected: &str, key: Option<&str>) -> String {
    let integer = |hint: &str| match key {
        Some(key) if SECONDS_KEYS.contains(&key) => format!("an integer ({hint}seconds)"),
        _ if hint.is_empty() => "an integer".to_string(),
        _ => format!("an integer ({})", hint.trim_end_matches(' ')),
    };
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => integer(""),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => integer("0 or more "),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" | "bool" => "true or false".to_string(),
        "a string" | "a borrowed string" | "char" | "a character" => "a string".to_string(),
        "a sequence" => "an array".to_string(),
        "a map" => "a table".to_string(),
        other if other.starts_with("struct ") => "a table".to_string(),
        other if other.starts_with("a sequence") => "an array".to_string(),
        other => other.to_string(),
    }
}

/// What was written, from serde's `Unexpected` display ("string \"300\"", "integer `5`").
fn found_thing(found: &str) -> String {
    let unquote = |s: &str| s.trim_matches('`').to_string();
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the string {text}");
    }
    if let Some(n) = found.strip_prefix("integer ") {
        return format!("the integer {}", unquote(n));
    }
    if let Some(n) = found.strip_prefix("floating point ") {
        return format!("the number {}", unquote(n));
    }
    if let Some(b) = found.strip_prefix("boolean ") {
        return unquote(b);
    }
    match found {
        "sequence" => "an array".to_string(),
        "map" => "a table".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::in_toml_terms;

    #[test]
    fn rust_types_become_toml_values() {
        for (serde, key, toml) in [
            (
                "invalid type: string \"300\", expected i64",
                Some("ttl"),
                "expected an integer (seconds), found the string \"300\"",
            ),
            (
                "invalid type: string \"four\", expected i64",
                Some("workers"),
                "expected an integer, found the string \"four\"",
            ),
            (
                "invalid type: string \"yes\", expected a boolean",
                Some("compress"),
                "expected true or false, found the string \"yes\"",
            ),
            (
                "invalid type: integer `5`, expected a string",
                Some("name"),
                "expected a string, found the integer 5",
            ),
            (
                "invalid type: floating point `1.5`, expected u32",
                None,
                "expected an integer (0 or more), found the number 1.5",
            ),
            (
                "invalid type: string \"a\", expected a sequence",
                Some("hosts"),
                "expected an array, found the string \"a\"",
            ),
            (
                "invalid type: sequence, expected struct RawSoa",
                Some("soa"),
                "expected a table, found an array",
            ),
            (
                "unknown field `workerz`, expected one of `listen`, `workers`",
                None,
                "unknown key `workerz`, expected one of `listen`, `workers`",
            ),
            (
                "unknown field `x`, there are no fields",
                None,
                "unknown key `x`",
            ),
            ("missing field `name`", None, "missing key `name`"),
        ] {
            let said = in_toml_terms(serde, key);
            assert_eq!(said, toml, "{serde}");
            for rust in ["i64", "u32", "sequence", "struct", "field", "floating"] {
                assert!(!said.contains(rust), "{said} says {rust}");
            }
        }
    }

    #[test]
    fn other_messages_are_kept() {
        let own = "\"10 parsecs\" is not a duration (expected e.g. \"500ms\")";
        assert_eq!(in_toml_terms(own, Some("interval")), own);
    }
}
