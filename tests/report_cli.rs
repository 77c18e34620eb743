//! `break-glass report render` on hostile CloudTrail files: every string escaped or excluded,
//! every write, error and console login of the real session present, broken input refused
//! without partial output, and a golden rendering of a fixed session.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_break-glass");
const USER: &str = "alice@example.com";
const ARN: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef/alice@example.com";

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn event(i: usize, name: &str, source: &str, arn: &str, read_only: bool) -> Value {
    json!({
        "eventVersion": "1.09", "eventID": format!("ev-{i}"), "eventTime": format!("2026-11-24T08:{:02}:{:02}Z", i / 60 % 60, i % 60),
        "awsRegion": "eu-west-1", "eventSource": source, "eventName": name, "readOnly": read_only,
        "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": "123456789012"},
        "recipientAccountId": "123456789012", "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15"
    })
}

/// The real session's events, hostile strings among them, and look-alike sessions.
fn hostile_records() -> Vec<Value> {
    let mut r = vec![
        event(1, "ListBuckets", "s3.amazonaws.com", ARN, true),
        event(2, "CreateAccessKey", "iam.amazonaws.com", ARN, false),
        event(3, "ConsoleLogin", "signin.amazonaws.com", ARN, false),
        event(
            4,
            "GetSecretValue",
            "secretsmanager.amazonaws.com",
            ARN,
            true,
        ),
    ];
    let mut opened = event(
        5,
        "AuthorizeSecurityGroupIngress",
        "ec2.amazonaws.com",
        ARN,
        false,
    );
    opened["requestParameters"] = json!({"groupId": "sg-0123456789abcdef0", "ipPermissions": {"items": [
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}});
    r.push(opened);
    let mut denied = event(6, "DeleteBucket", "s3.amazonaws.com", ARN, false);
    denied["errorCode"] = json!("AccessDenied");
    denied["errorMessage"] = json!("\"><img src=x onerror=alert(1)> <b>not</b> & allowed");
    r.push(denied);
    let mut script = event(7, "PutObject", "s3.amazonaws.com", ARN, false);
    script["userAgent"] = json!("<script>alert('ua')</script>");
    script["requestParameters"] = json!({"bucketName": "</td></tr></table><h1>pwned</h1>"});
    r.push(script);
    let mut huge = event(8, "DescribeInstances", "ec2.amazonaws.com", ARN, true);
    huge["userAgent"] = json!("A".repeat(100_000));
    r.push(huge);
    let mut missing = event(9, "GetCallerIdentity", "sts.amazonaws.com", ARN, true);
    for k in ["awsRegion", "sourceIPAddress", "userAgent", "readOnly"] {
        missing.as_object_mut().unwrap().remove(k);
    }
    missing["errorCode"] = Value::Null;
    r.push(missing);
    // Look-alikes: none of these may appear.
    for (i, arn) in [
        ARN.replace(USER, "alice@example.com.evil"),
        ARN.replace(USER, "aliceXexample.com"),
        ARN.replace("BreakGlassAdmin_", "BreakGlassAdminX_"),
        ARN.replace("123456789012", "210987654321"),
    ]
    .iter()
    .enumerate()
    {
        r.push(event(
            20 + i,
            "EvilLookAlikeAction",
            "iam.amazonaws.com",
            arn,
            false,
        ));
    }
    r.push(json!({"eventName": "NoTimeAtAll", "userIdentity": {"arn": ARN}}));
    r
}

fn write(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
}

fn render(events: &Path, out: &Path, session: bool) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["report", "render", "--events"]).arg(events);
    cmd.arg("--html")
        .arg(out.join("report.html"))
        .arg("--text")
        .arg(out.join("report.txt"));
    if session {
        cmd.args([
            "--user",
            USER,
            "--account",
            "123456789012",
            "--permission-set",
            "BreakGlassAdmin",
        ]);
    }
    cmd.output().unwrap()
}

#[test]
fn hostile_strings_are_escaped_and_the_real_session_is_complete() {
    let d = dir("hostile");
    let file = d.join("trail.json");
    write(&file, &json!({"Records": hostile_records()}));
    let out = render(&file, &d, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    let text = std::fs::read_to_string(d.join("report.txt")).unwrap();

    for raw in [
        "<script>alert",
        "<img src=x",
        "<h1>pwned",
        "<b>not</b>",
        "</table><h1>",
    ] {
        assert!(!html.contains(raw), "raw {raw:?} in the HTML");
    }
    assert!(
        html.contains("&#60;script&#62;alert(&#39;ua&#39;)&#60;/script&#62;"),
        "escaped script"
    );
    assert!(!html.contains("<script"), "no script element at all");
    assert!(!html.contains(&"A".repeat(300)), "100 KB user agent cut");
    assert!(html.contains("more characters]"), "with a visible marker");
    for name in [
        "CreateAccessKey",
        "ConsoleLogin",
        "DeleteBucket",
        "AccessDenied",
        "PutObject",
        "AuthorizeSecurityGroupIngress",
        "GetSecretValue",
        "GetCallerIdentity",
    ] {
        assert!(html.contains(name) && text.contains(name), "{name} missing");
    }
    assert!(
        !html.contains("EvilLookAlikeAction") && !text.contains("EvilLookAlikeAction"),
        "look-alike session reported"
    );
    assert!(!html.contains("NoTimeAtAll"));
    // Flagged first: the console login, the IAM write, the denied delete, the secret read, the
    // security group opened to the world.
    let flagged = &html[html.find("Flags (").unwrap()..html.find("Left behind").unwrap()];
    for name in [
        "ConsoleLogin",
        "CreateAccessKey",
        "DeleteBucket",
        "GetSecretValue",
        "AuthorizeSecurityGroupIngress",
    ] {
        assert!(flagged.contains(name), "{name} not flagged");
    }
    assert!(!flagged.contains("ListBuckets"));
    assert!(
        flagged.contains("sg-0123456789abcdef0"),
        "the group is named"
    );
    // What the session created and did not delete: the key and the open rule.
    let left = &html[html.find("Left behind").unwrap()..html.find("Summary by service").unwrap()];
    assert!(
        left.contains("CreateAccessKey") && left.contains("AuthorizeSecurityGroupIngress"),
        "{left}"
    );
    assert!(!left.contains("ListBuckets"));
    // Coverage names only real regions (one event has none).
    let coverage = &text[text.find("COVERAGE").unwrap()..];
    assert!(coverage.contains("Regions read: eu-west-1;"), "{coverage}");
}

#[test]
fn broken_input_fails_cleanly_without_partial_output() {
    let d = dir("broken");
    let full = serde_json::to_string(&json!({"Records": hostile_records()})).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", full.as_bytes()[..full.len() / 2].to_vec()),
        ("not json", b"hello".to_vec()),
        ("wrong shape", br#"{"Items": []}"#.to_vec()),
        ("gzip cut", {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(full.as_bytes()).unwrap();
            let b = gz.finish().unwrap();
            b[..b.len() / 2].to_vec()
        }),
    ];
    for (what, bytes) in cases {
        let file = d.join("in.json");
        std::fs::write(&file, bytes).unwrap();
        let out = render(&file, &d, true);
        assert_eq!(out.status.code(), Some(2), "{what}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
        assert!(
            !d.join("report.html").exists() && !d.join("report.txt").exists(),
            "{what}: partial output"
        );
    }
    let out = Command::new(BIN)
        .args(["report", "render", "--events", "x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args([
            "report",
            "render",
            "--events",
            "x",
            "--html",
            "a",
            "--text",
            "b",
            "--account",
            "12",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--account"));
}

#[test]
fn gzip_files_and_lookup_events_responses_are_read_too() {
    let d = dir("formats");
    let records = hostile_records();
    let gz_path = d.join("trail.json.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&serde_json::to_vec(&json!({"Records": records})).unwrap())
        .unwrap();
    gz.finish().unwrap();
    assert!(render(&gz_path, &d, true).status.success());
    let from_gz = std::fs::read_to_string(d.join("report.txt")).unwrap();

    let lookup = json!({"Events": records.iter().map(|r| json!({"EventId": r["eventID"], "CloudTrailEvent": r.to_string()})).collect::<Vec<_>>()});
    let lk_path = d.join("lookup.json");
    write(&lk_path, &lookup);
    assert!(render(&lk_path, &d, true).status.success());
    assert_eq!(
        std::fs::read_to_string(d.join("report.txt")).unwrap(),
        from_gz,
        "same report from either format"
    );
}

/// A fixed session renders exactly as `tests/golden/report.{txt,html,json}`. After an intended
/// change of the templates: `UPDATE_GOLDEN=1 cargo test --test report_cli`.
#[test]
fn golden_rendering() {
    let d = dir("golden");
    let file = d.join("trail.json");
    let records: Vec<Value> = hostile_records()
        .into_iter()
        .filter(|r| r["eventID"] != "ev-8")
        .collect();
    write(&file, &json!({"Records": records}));
    let out = Command::new(BIN)
        .args(["report", "render", "--events"])
        .arg(&file)
        .arg("--html")
        .arg(d.join("report.html"))
        .arg("--text")
        .arg(d.join("report.txt"))
        .arg("--json")
        .arg(d.join("report.json"))
        .args([
            "--user",
            USER,
            "--account",
            "123456789012",
            "--permission-set",
            "BreakGlassAdmin",
        ])
        .args([
            "--from",
            "2026-11-24T08:00:00Z",
            "--to",
            "2026-11-24T09:00:00Z",
        ])
        // The last event (GetCallerIdentity at 08:00:09) comes after the end.
        .args(["--ended", "2026-11-24T08:00:08Z"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for name in ["report.txt", "report.html", "report.json"] {
        let got = std::fs::read_to_string(d.join(name)).unwrap();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden.join(name), &got).unwrap();
        }
        let want = std::fs::read_to_string(golden.join(name))
            .expect("golden file (UPDATE_GOLDEN=1 writes it)");
        assert_eq!(got, want, "{name} differs from tests/golden/{name}");
    }
}

/// The HTML report as a person sees it: rendered by headless Chromium (Debian's `chromium`,
/// installed by `make test`), the screenshot must show the report's styling (the red header
/// rule, the yellow CloudTrail-lag note), not a blank or unstyled page. The screenshot is
/// `target/report-screenshot.png`. (`docs/report.png` in the README is the same browser's
/// picture of a real Stratus Red Team run's report.)
#[test]
fn the_html_report_renders_in_a_real_browser() {
    let chromium = std::env::var("BG_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `make test` installs Debian's chromium"
    );
    let d = dir("browser");
    let html = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.html");
    let shot = d.join("report.png");
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", d.join("profile").display()))
        .args(["--window-size=1100,1400"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::copy(
        &shot,
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("../report-screenshot.png"),
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1100, 1400));
    let channels = info.color_type.samples();
    let has = |rgb: [u8; 3]| {
        buf[..info.buffer_size()]
            .chunks(channels)
            .filter(|p| p[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 3))
            .count()
    };
    assert!(
        has([0xc9, 0x37, 0x2c]) > 500,
        "the red header rule is drawn"
    );
    assert!(
        has([0xff, 0xfa, 0xe6]) > 5_000,
        "the CloudTrail-lag note is drawn"
    );
    assert!(
        has([0xff, 0xff, 0xff]) > 100_000,
        "the white report card is drawn"
    );
}

/// The CLI behaves like one: help on every subcommand, a version, usage errors exit 2.
#[test]
fn help_version_and_usage_errors() {
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    for args in [
        &["--help"][..],
        &["report", "render", "--help"],
        &["policy", "check", "--help"],
        &["leases", "check", "--help"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Usage: break-glass"), "{args:?}: {help}");
    }
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("break-glass {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [&["bogus"][..], &["policy", "check"], &["report", "render"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Usage:"),
            "{args:?}"
        );
    }
}
