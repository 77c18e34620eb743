//! The contract between `sfn/break-glass.asl.json` and the binary: every task the state
//! machine sends parses as a task, every error name it retries or catches on is one the binary
//! produces (or a `States.*`/`Lambda.*` name of Step Functions), and every field it reads of a
//! task's output (`$.Payload.<field>`, or the Hold's callback output) exists in that output's
//! type. Renaming a field on one side only fails here.

use break_glass::error::Error;
use break_glass::handlers::worker::Task;
use break_glass::handlers::worker::output::fields_of;
use serde_json::{Map, Value, json};

fn asl() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sfn/break-glass.asl.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The payload a task state would send, with sample values for the paths it fills in.
fn concrete(payload: &Map<String, Value>) -> Value {
    let id = break_glass::domain::RequestId::derive(&["contract"]).to_string();
    let mut out = Map::new();
    for (k, v) in payload {
        match k.strip_suffix(".$") {
            Some("request_id") => out.insert("request_id".into(), json!(id)),
            Some(field) => out.insert(field.into(), json!("sample")),
            None => out.insert(k.clone(), v.clone()),
        };
    }
    Value::Object(out)
}

/// Every task state invoking the worker: (state name, its payload, its definition).
fn tasks(asl: &Value) -> Vec<(String, Map<String, Value>, Value)> {
    asl["States"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["Type"] == "Task")
        .map(|(name, s)| {
            let payload = s["Parameters"]["Payload"]
                .as_object()
                .unwrap_or_else(|| panic!("{name} has no Payload"))
                .clone();
            (name.clone(), payload, s.clone())
        })
        .collect()
}

#[test]
fn every_task_the_state_machine_sends_parses() {
    let asl = asl();
    let all = tasks(&asl);
    assert!(all.len() >= 7, "{} tasks", all.len());
    for (name, payload, _) in all {
        let sent = concrete(&payload);
        let task = Task::parse(sent.clone());
        assert!(task.is_ok(), "{name} sends {sent}: {task:?}");
    }
}

#[test]
fn every_error_name_the_state_machine_matches_is_produced_by_the_binary() {
    let asl = asl();
    let mut seen = Vec::new();
    for (name, _, state) in tasks(&asl) {
        for handler in ["Retry", "Catch"] {
            for rule in state[handler].as_array().into_iter().flatten() {
                for e in rule["ErrorEquals"].as_array().unwrap() {
                    let e = e.as_str().unwrap();
                    seen.push(e.to_owned());
                    if e.starts_with("States.") || e.starts_with("Lambda.") {
                        continue;
                    }
                    assert!(
                        Error::NAMES.contains(&e),
                        "{name} matches {e:?}, which the binary never produces"
                    );
                }
            }
        }
    }
    assert!(seen.iter().any(|e| e == "Transient"), "{seen:?}");
}

#[test]
fn every_output_field_the_state_machine_reads_exists() {
    let asl = asl();
    for (name, payload, state) in tasks(&asl) {
        let kind = payload["type"].as_str().unwrap();
        let callback = state["Resource"]
            .as_str()
            .unwrap()
            .ends_with(".waitForTaskToken");
        // A callback task's result is what SendTaskSuccess sent: the lease's state.
        let fields = if callback {
            fields_of("check")
        } else {
            fields_of(kind)
        }
        .unwrap_or_else(|| panic!("{name}: no output type for task {kind:?}"));
        let prefix = if callback { "$." } else { "$.Payload." };
        for (key, path) in state["ResultSelector"].as_object().into_iter().flatten() {
            let path = path.as_str().unwrap_or_default();
            assert!(key.ends_with(".$"), "{name}: {key}");
            let field = path
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{name}: {key} reads {path}, not {prefix}…"));
            assert!(
                fields.iter().any(|f| f == field),
                "{name} reads {path}, but the {kind} task's output has only {fields:?}"
            );
        }
    }
}
