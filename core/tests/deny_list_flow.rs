//! The contact-flow deny-list contract (the AWS reference flow's `Success` key) on every
//! flow-invocation fixture, over the embedded store.

use std::collections::BTreeMap;

use chrono::Utc;
use connect_events_core::deny_list::{DenyListConfig, DenyListService};
use connect_events_core::event::flow::FlowInvocation;
use connect_events_core::local::LocalBackend;
use serde_json::Value;

fn fixture(name: &str) -> FlowInvocation {
    let path = format!(
        "{}/../tests/fixtures/flow-invocation/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    FlowInvocation::from_value(&v).unwrap()
}

fn service(tag: &str) -> DenyListService {
    let dir = std::env::temp_dir().join(format!("deny-flow-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend = LocalBackend::open(&dir).unwrap();
    DenyListService::new(
        Box::new(connect_events_core::local::LocalDenyStore::new(
            backend.state.denylist(),
        )),
        Box::new(backend.model.contacts()),
        DenyListConfig::default(),
    )
}

fn no_digits_in_clear(answer: &BTreeMap<String, String>) {
    for v in answer.values() {
        let run = v
            .chars()
            .fold((0, 0), |(best, cur), c| {
                if c.is_ascii_digit() {
                    (best.max(cur + 1), cur + 1)
                } else {
                    (best, 0)
                }
            })
            .0;
        assert!(run < 5, "a number leaks into the answer: {v}");
    }
}

#[tokio::test]
async fn inbound_lookup_is_not_listed_then_listed() {
    let svc = service("lookup");
    let inv = fixture("voice-inbound-lookup.json");
    let answer = svc.flow(&inv, Utc::now()).await;
    assert_eq!(answer["Success"], "false");
    assert_eq!(
        answer["blocked"], "false",
        "the key the sample flows read (ExternalResults.blocked)"
    );
    assert_eq!(answer["result"], "not_listed");
    assert_eq!(answer["normalizedNumber"], "+14*******00");
    no_digits_in_clear(&answer);

    svc.add(
        "+1 425-555-0100",
        Some("abusive".into()),
        None,
        Some("ops".into()),
        connect_events_core::deny_list::EntrySource::Cli,
        false,
        Utc::now(),
    )
    .await
    .unwrap();
    let answer = svc.flow(&inv, Utc::now()).await;
    assert_eq!(answer["Success"], "true");
    assert_eq!(answer["blocked"], "true");
    assert_eq!(answer["result"], "listed");
    assert_eq!(answer["reason"], "abusive");
    // The hit is counted once per contact, however often the flow asks.
    svc.flow(&inv, Utc::now()).await;
    let n = svc.presented("+14255550100").unwrap().number;
    assert_eq!(svc.store().get(&n).await.unwrap().unwrap().hit_count, 1);
}

/// A fixture invocation with another caller address (the raw JSON, as Connect sends it).
fn invocation_from(name: &str, address: &str) -> FlowInvocation {
    let path = format!(
        "{}/../tests/fixtures/flow-invocation/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["Details"]["ContactData"]["CustomerEndpoint"]["Address"] = address.into();
    FlowInvocation::from_value(&v).unwrap()
}

/// Spoofed caller IDs that libphonenumber calls invalid are what a deny list exists for: listed by
/// an operator (typed, with a warning), then matched as Connect presents them.
#[tokio::test]
async fn spoofed_caller_ids_are_listed_and_answered_listed() {
    let svc = service("spoofed");
    for number in ["+11234567890", "+15555555555", "+190011112222"] {
        let inv = invocation_from("voice-inbound-lookup.json", number);
        let answer = svc.flow(&inv, Utc::now()).await;
        assert_eq!(answer["result"], "not_listed", "{number}: {answer:?}");
        let (_, warning) = svc
            .add(
                number,
                Some("spoofed".into()),
                None,
                None,
                connect_events_core::deny_list::EntrySource::Cli,
                false,
                Utc::now(),
            )
            .await
            .unwrap();
        assert!(warning.is_some(), "{number}: unknown to the metadata");
        let answer = svc.flow(&inv, Utc::now()).await;
        assert_eq!(answer["Success"], "true", "{number}: {answer:?}");
        assert_eq!(answer["result"], "listed", "{number}: {answer:?}");
        no_digits_in_clear(&answer);
    }
}

#[tokio::test]
async fn null_endpoints_give_a_clear_no_number_answer() {
    let svc = service("chat");
    let answer = svc
        .flow(&fixture("chat-null-endpoints.json"), Utc::now())
        .await;
    assert_eq!(answer.get("Success").map(String::as_str), Some("false"));
    assert_eq!(answer.get("result").map(String::as_str), Some("no_number"));
}

#[tokio::test]
async fn agent_flag_stores_the_caller() {
    let svc = service("flag");
    let inv = fixture("voice-agent-flag.json");
    let answer = svc.flow(&inv, Utc::now()).await;
    assert_eq!(answer["Success"], "true", "{answer:?}");
    assert_eq!(answer["result"], "flagged");
    no_digits_in_clear(&answer);
    let n = svc
        .presented(inv.customer_address().unwrap())
        .unwrap()
        .number;
    let entry = svc.store().get(&n).await.unwrap().unwrap();
    assert_eq!(
        entry.source,
        Some(connect_events_core::deny_list::EntrySource::Agent)
    );
    assert!(entry.added_by.is_some());
    // The same caller is now stopped by the inbound check.
    let check = svc.check(n.as_str(), Utc::now()).await.unwrap();
    assert!(check.listed);
}

#[tokio::test]
async fn answers_are_flat_string_maps_like_the_reference_response() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../tests/fixtures/flow-invocation/response-string-map.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(reference
        .as_object()
        .unwrap()
        .values()
        .all(Value::is_string));
    let svc = service("shape");
    for name in [
        "voice-inbound-lookup.json",
        "chat-null-endpoints.json",
        "voice-agent-flag.json",
    ] {
        let answer = svc.flow(&fixture(name), Utc::now()).await;
        let json = serde_json::to_value(&answer).unwrap();
        assert!(
            json.as_object().unwrap().values().all(Value::is_string),
            "{name}: {json}"
        );
        assert!(
            json.get("Success").is_some(),
            "{name}: the reference flow branches on Success"
        );
    }
}
