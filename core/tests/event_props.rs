//! Property tests: parsing never panics, whatever the input; valid events survive unknown fields.

use connect_events_core::event::{input::read_json_document, Event};
use connect_events_core::rules::Pattern;
use proptest::prelude::*;
use serde_json::{json, Value};

const FIXTURES: &[&str] = &[
    include_str!("../../tests/fixtures/events/voice-inbound-queued.json"),
    include_str!("../../tests/fixtures/events/voice-inbound-connected-to-agent.json"),
    include_str!("../../tests/fixtures/events/voice-outbound-disconnected.json"),
    include_str!("../../tests/fixtures/events/voice-transfer-completed.json"),
    include_str!("../../tests/fixtures/events/task-api-paused.json"),
];

/// Arbitrary JSON values, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("1970-01-01T00:00:00.001Z")),
        Just(json!("QUEUED")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer path of a value.
fn paths(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
            out.push(p.clone());
            paths(x, p, out);
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            let p = format!("{prefix}/{i}");
            out.push(p.clone());
            paths(x, p, out);
        }),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Byte-level mutations of real events: an error or an event, never a panic.
    #[test]
    fn mutated_text_never_panics(idx in 0..FIXTURES.len(), cuts in prop::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..6)) {
        let mut bytes = FIXTURES[idx].as_bytes().to_vec();
        for (pos, byte, op) in cuts {
            if bytes.is_empty() { break; }
            let at = pos % bytes.len();
            match op {
                0 => { bytes.remove(at); }
                1 => bytes.insert(at, byte),
                _ => bytes[at] = byte,
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = Event::from_json_str(&text);
        let _ = read_json_document("fuzz.json", &text);
    }

    /// Any field of a real event replaced by any JSON value: an error naming a field, or an event.
    #[test]
    fn replaced_fields_never_panic(idx in 0..FIXTURES.len(), pick in any::<usize>(), replacement in arb_json()) {
        let mut v: Value = serde_json::from_str(FIXTURES[idx]).unwrap();
        let mut all = Vec::new();
        paths(&v, String::new(), &mut all);
        let path = &all[pick % all.len()];
        if let Some(slot) = v.pointer_mut(path) { *slot = replacement; }
        if let Err(e) = Event::from_value(v) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Unknown fields anywhere in the detail are ignored.
    #[test]
    fn unknown_fields_are_ignored(idx in 0..FIXTURES.len(), key in "[a-z]{3,10}Zz", value in arb_json()) {
        let mut v: Value = serde_json::from_str(FIXTURES[idx]).unwrap();
        v["detail"][key.clone()] = value.clone();
        v[key] = value;
        prop_assert!(Event::from_value(v).is_ok());
    }

    /// Arbitrary values as events and as patterns never panic the matcher.
    #[test]
    fn matcher_never_panics(event in arb_json(), pattern in arb_json()) {
        let _ = Event::from_value(event.clone());
        if let Ok(p) = Pattern::parse(&pattern) {
            let _ = p.matches(&event);
        }
    }
}
