//! The report on real CloudTrail written by AWS during a Stratus Red Team run
//! (`../shared/realtrail/`, read from there: see its README). Every technique of that run the
//! detections cover is flagged with its ATT&CK id, the worst at high or critical severity even
//! when the attempt failed; no failed look-up or throttled call is flagged; flags are a minority
//! of the events, in a few dozen rows, and repeats collapse with their true counts. Skipped,
//! with a message, where the folder is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_break-glass");

fn realtrail() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realtrail");
    if dir.join("invictus-aws_dataset.json").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (the real CloudTrail corpus lives outside the repository)",
            dir.display()
        );
        None
    }
}

/// Renders `file` with `--json`; returns the JSON twin and the text report.
fn render(file: &Path, name: &str) -> (Value, String) {
    let dir = std::env::temp_dir().join(format!("bg-realtrail-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(BIN)
        .args(["report", "render", "--events"])
        .arg(file)
        .arg("--html")
        .arg(dir.join("r.html"))
        .arg("--text")
        .arg(dir.join("r.txt"))
        .arg("--json")
        .arg(dir.join("r.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let json = serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    (json, std::fs::read_to_string(dir.join("r.txt")).unwrap())
}

fn rows<'a>(twin: &'a Value, rule: &str) -> Vec<&'a Value> {
    twin["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

#[test]
fn a_stratus_red_team_run_is_flagged_by_technique_without_the_noise() {
    let Some(dir) = realtrail() else { return };
    let file = dir.join("invictus-aws_dataset.json");
    let (twin, text) = render(&file, "invictus");
    let records: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let records = records["Records"].as_array().unwrap();
    let events = twin["events"].as_u64().unwrap() as usize;
    assert_eq!(events, records.len());

    // Every technique of the run that the detections cover, with its ATT&CK id and severity.
    for (rule, technique, worst) in [
        ("cloudtrail-tampered", "T1562.008", "critical"),
        ("flow-logs-deleted", "T1562.008", "critical"),
        ("log-group-tampered", "T1562.008", "high"),
        ("leave-organization", "T1666", "critical"),
        ("snapshot-shared", "T1537", "critical"),
        ("image-shared", "T1537", "critical"),
        ("rds-snapshot-shared", "T1537", "critical"),
        ("security-group-opened", "T1562.007", "high"),
        ("admin-policy-attached", "T1098.003", "critical"),
        ("access-key-created", "T1098.001", "high"),
        ("iam-user-created", "T1136.003", "high"),
        ("login-profile-created", "T1098.001", "high"),
        ("role-trust-changed", "T1098.003", "critical"),
        ("federation-trust", "T1484.002", "high"),
        ("windows-password-read", "T1552", "high"),
        ("user-data-read", "T1552", "medium"),
        ("ssm-command", "T1651", "high"),
        ("lambda-code-changed", "T1525", "high"),
        ("console-sign-in", "T1078.004", "low"),
    ] {
        let found = rows(&twin, rule);
        assert!(!found.is_empty(), "{rule} is not flagged");
        for f in &found {
            assert_eq!(f["technique"], technique, "{rule}");
            assert_eq!(f["severity"], worst, "{rule}");
            assert!(!f["tactic"].as_str().unwrap().is_empty());
        }
    }
    // The worst, even when the attempt failed: leaving the organization was denied here.
    let leave = rows(&twin, "leave-organization");
    assert!(leave.iter().all(|f| f["failed"] == true), "{leave:?}");
    let stopped = rows(&twin, "cloudtrail-tampered");
    assert!(
        stopped
            .iter()
            .any(|f| f["action"] == "StopLogging" && f["failed"] == true),
        "a failed StopLogging is still critical: {stopped:?}"
    );

    // No failed look-up or throttled call.
    for f in twin["flags"].as_array().unwrap() {
        let action = f["action"].as_str().unwrap();
        let error = f["error"].as_str().unwrap_or("");
        assert!(
            !error.contains("Throttling"),
            "a throttled call is flagged: {f}"
        );
        let lookup = ["Get", "Describe", "List"]
            .iter()
            .any(|p| action.starts_with(p));
        let denied = error.contains("AccessDenied") || error.contains("Unauthorized");
        assert!(
            !lookup || error.is_empty() || denied || f["rule"] != "denied",
            "a failed look-up is flagged: {f}"
        );
        assert!(
            !(lookup && (error.starts_with("NoSuch") || error.contains("NotFound"))),
            "a look-up of something not configured is flagged: {f}"
        );
    }

    // Signal, not noise: a minority of the events, in a few dozen rows.
    let flagged: u64 = twin["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["count"].as_u64().unwrap())
        .sum();
    let rows_count = twin["flags"].as_array().unwrap().len();
    println!("flagged {flagged} of {events} events in {rows_count} rows");
    assert!(
        flagged as usize * 3 <= events,
        "{flagged} of {events} flagged"
    );
    assert!((10..=60).contains(&rows_count), "{rows_count} rows");

    // Repeats collapse with their true counts: the denied GetPasswordData calls.
    let password = rows(&twin, "windows-password-read");
    let truth = records
        .iter()
        .filter(|r| r["eventName"] == "GetPasswordData")
        .count() as u64;
    assert_eq!(password.len(), 1, "{password:?}");
    assert_eq!(password[0]["count"].as_u64(), Some(truth));
    assert_eq!(password[0]["failed"], true);
    assert!(
        password[0]["resources"].as_array().unwrap().len() >= 2,
        "the instances are named: {}",
        password[0]
    );
    // Flags by severity, then time; the resources named.
    let order: Vec<&str> = twin["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    let rank = |s: &str| {
        ["critical", "high", "medium", "low"]
            .iter()
            .position(|x| *x == s)
    };
    assert!(
        order.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
        "{order:?}"
    );
    let shared = &rows(&twin, "snapshot-shared")[0];
    assert!(
        shared["resources"][0]
            .as_str()
            .unwrap()
            .starts_with("snapshot snap-"),
        "{shared}"
    );
    assert!(text.contains("FLAGS ("), "the text report has the flags");
    assert!(text.contains("COVERAGE"), "and what was read");
    assert!(
        twin["coverage"]["regions"]
            .as_array()
            .unwrap()
            .contains(&Value::from("us-east-1"))
    );
}

#[test]
fn the_pseudonymised_detonations_render_too() {
    let Some(dir) = realtrail() else { return };
    let (twin, _) = render(
        &dir.join("stratus-detonations-pseudonymized.json"),
        "stratus",
    );
    assert!(twin["events"].as_u64().unwrap() > 100);
    assert!(!twin["flags"].as_array().unwrap().is_empty());
}
