//! Hostile platform data for the connectors' property tests: JSON of the
//! right general shape with fields of the wrong type, missing, null, huge,
//! deeply nested or in odd unicode, and raw garbage. A platform may send
//! any of it (a bug, a newer release, a proxy's error page); a parser must
//! skip what it cannot use and never panic.
//!
//! Each connector passes the words its parsers look for (keys, event
//! names, kinds, ids), so generated values hit the branches that matter
//! instead of failing at the first `get`.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Strings that have broken parsers elsewhere: empty, blank, control and
/// bidi characters, a BOM, combining marks, emoji sequences, multi-byte
/// text cut at odd places, edge-of-range times and numbers as text, and
/// any string at all.
pub fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        450 => prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
        450 => prop::sample::select(ODD).prop_map(str::to_owned),
        20 => any::<String>(),
        // Huge, but rare enough to keep ten thousand cases quick.
        1 => (1usize..4).prop_map(|n| "ü\u{202E}x".repeat(n * 5_000)),
    ]
}

const ODD: &[&str] = &[
    "",
    " ",
    "\0",
    "\u{202E}fdp.exe\u{202C}",
    "\u{2066}\u{2067}\u{2068}\u{2069}\u{200E}\u{200F}\u{061C}",
    "\u{FEFF}",
    "\u{FFFD}",
    "e\u{0301}\u{0301}\u{0301}\u{0301}",
    "👩‍👩‍👧‍👦🏳️‍🌈",
    "日本語のテキスト",
    "\r\n\t",
    "@",
    ":",
    "_",
    "per_",
    "per_zzzzzzzzzzzz",
    "per_ffffffffffff",
    "per_日本語のテキストです",
    "0",
    "-1",
    "1e400",
    "NaN",
    "9223372036854775808",
    "2026-04-27T14:02:11Z",
    "2026-09-01T09:15:02.517204+00:00",
    "9999-12-31T23:59:59.999999999Z",
    "+262142-12-31T23:59:59Z",
    "-262143-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2026-02-30T25:61:61Z",
    "null",
    "[DONE]",
];

/// Numbers at the edges: zero, the limits of i64 and u64, tiny and huge
/// floats.
pub fn odd_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(
            &[
                i64::MIN,
                i64::MAX,
                0,
                -1,
                1,
                8_640_000_000_000_000,
                -8_640_000_000_000_000,
            ][..]
        )
        .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(f64::MAX)),
        Just(Value::from(f64::MIN_POSITIVE)),
    ]
}

/// A key or string value: one of `words` (what the parser looks for) or
/// an odd string.
fn word_or_odd(words: &'static [&'static str]) -> BoxedStrategy<String> {
    if words.is_empty() {
        return odd_string().boxed();
    }
    prop_oneof![
        3 => prop::sample::select(words).prop_map(str::to_owned),
        1 => odd_string(),
    ]
    .boxed()
}

/// Any JSON value up to three levels deep, with keys and strings drawn
/// mostly from `words`.
pub fn json(words: &'static [&'static str]) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        odd_number(),
        word_or_odd(words).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            object_of(words, inner),
        ]
    })
    .boxed()
}

/// An object whose keys are mostly `words` and whose values come from
/// `values`.
pub fn object_of(
    words: &'static [&'static str],
    values: impl Strategy<Value = Value> + 'static,
) -> BoxedStrategy<Value> {
    prop::collection::vec((word_or_odd(words), values), 0..10)
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>()))
        .boxed()
}

/// A well-formed `good` object with one field knocked out of shape:
/// removed, nulled, or replaced by a value of another type (or a deep,
/// huge or odd one). What a platform bug or a newer release sends.
pub fn mangled(good: Value, words: &'static [&'static str]) -> BoxedStrategy<Value> {
    let keys: Vec<String> = good
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let n = keys.len().max(1);
    (0..n, 0u8..4, json(words))
        .prop_map(move |(i, how, other)| {
            let mut v = good.clone();
            if let (Some(obj), Some(key)) = (v.as_object_mut(), keys.get(i)) {
                match how {
                    0 => {
                        obj.remove(key);
                    }
                    1 => {
                        obj.insert(key.clone(), Value::Null);
                    }
                    2 => {
                        obj.insert(key.clone(), deep(200));
                    }
                    _ => {
                        obj.insert(key.clone(), other);
                    }
                }
            }
            v
        })
        .boxed()
}

/// `depth` arrays nested in one another, deeper than `serde_json` would
/// read from text (its limit is 128), built in memory as a connector's
/// own code could receive it.
pub fn deep(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |v, _| Value::Array(vec![v]))
}

/// Raw bytes: random, or text that is almost JSON (cut, deeply nested,
/// with a trailing comma or a stray BOM).
pub fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        odd_string().prop_map(String::into_bytes),
        (1usize..5000).prop_map(|n| "[".repeat(n).into_bytes()),
        (1usize..5000).prop_map(|n| "{\"a\":".repeat(n).into_bytes()),
        prop::sample::select(
            &[
                "[",
                "[{",
                "[1,]",
                "{\"detail\":",
                "\u{FEFF}[]",
                "<html>502 Bad Gateway</html>",
                "[{\"id\":\"a\"},",
                "\"[]\"",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// Any JSON value that is not a string, for a field that must be one.
pub fn not_a_string(words: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        odd_number(),
        prop::collection::vec(json(words), 0..3).prop_map(Value::Array),
        object_of(words, json(words)),
    ]
    .boxed()
}

/// `good` with one of its `required` string fields removed or given a
/// value that is not a string: a row the parser must skip.
pub fn broken(
    good: impl Strategy<Value = Value> + 'static,
    required: &'static [&'static str],
    words: &'static [&'static str],
) -> BoxedStrategy<Value> {
    (
        good,
        prop::sample::select(required),
        prop::option::of(not_a_string(words)),
    )
        .prop_map(|(mut v, key, with)| {
            if let Some(obj) = v.as_object_mut() {
                match with {
                    None => {
                        obj.remove(key);
                    }
                    Some(w) => {
                        obj.insert(key.to_owned(), w);
                    }
                }
            }
            v
        })
        .boxed()
}

/// A batch of `good` items with one `bad` one among them at any place:
/// the items, and how many of them are good.
pub fn one_bad_among(
    good: impl Strategy<Value = Value> + 'static,
    bad: impl Strategy<Value = Value> + 'static,
) -> BoxedStrategy<(Vec<Value>, usize)> {
    (
        prop::collection::vec(good, 0..5),
        bad,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut items, bad, at)| {
            let n = items.len();
            items.insert(at.index(n + 1), bad);
            (items, n)
        })
        .boxed()
}

/// An RFC 3339 time between the years 1 and 9999, in any offset, with or
/// without fractional seconds, `Z` or `+00:00`.
pub fn rfc3339() -> BoxedStrategy<String> {
    use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, Utc};
    (
        -62_135_500_000i64..253_402_200_000,
        0u32..1_000_000_000,
        -1439i32..1440,
        any::<bool>(),
        prop::sample::select(
            &[
                SecondsFormat::Secs,
                SecondsFormat::Micros,
                SecondsFormat::AutoSi,
            ][..],
        ),
    )
        .prop_map(|(secs, nanos, offset, z, format)| {
            let t = DateTime::from_timestamp(secs, nanos).unwrap_or_default();
            let offset = FixedOffset::east_opt(offset * 60).unwrap_or_else(|| Utc.fix());
            if z {
                t.to_rfc3339_opts(format, true)
            } else {
                t.with_timezone(&offset).to_rfc3339_opts(format, false)
            }
        })
        .boxed()
}
