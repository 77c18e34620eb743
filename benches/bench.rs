//! `make bench`: the figures of README.md's Performance section, against the project's budgets
//! (listed with each figure).
//!
//! A plain harness (no criterion: it would double the build): each figure is the median (and
//! spread) of repeated runs, printed as a table with the budget and whether it is met.
//!
//! - hot path: verify + parse + policy + reply of a signed click, in process, no network;
//! - render: the report for 1 000 / 10 000 / 100 000 parsed events, in process; and the whole
//!   `break-glass report render` process on CloudTrail files of that size (wall time, peak RSS);
//! - cold start of each role: the release `bootstrap` spawned under a minimal Lambda Runtime
//!   API of ours on loopback, AWS on moto (the test bed, seeded, without a binary);
//! - CloudTrail collection: calls and wall time for N events in several regions, against the
//!   2 calls/s per (account, region) limit;
//! - the webhook's click latency with the on-call lookup (cold and warm, the answer cached
//!   or asked every click), against an ungated click;
//! - size of the stripped binary and the Lambda zip, x86_64 and arm64 (`target/lambda*`);
//! - End access now → `DeleteAccountAssignment` on the whole local stack at default settings
//!   (the real binary under `cargo lambda watch`, the real ASL on moto), and the state
//!   transitions a lease costs (counted in the execution history).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use break_glass::handlers::webhook::{Screened, Settings, screen};
use break_glass::policy::{Decision, Policy, Subject, Target};
use break_glass::report::Event;
use break_glass::report::render::{Header, View};
use break_glass::slack::payload::Interaction;
use break_glass::slack::signature::sign;
use serde_json::{Value, json};

const PS: &str = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef";
const ARN: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef/alice@example.com";

struct Row {
    what: String,
    figure: String,
    budget: String,
    ok: Option<bool>,
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (pick(0.5), pick(0.0), pick(0.99))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------- hot path

fn hot_path(rows: &mut Vec<Row>) {
    let secret = "bench-signing-secret-0123456789";
    let settings = Settings {
        signing_secrets: vec![secret.into()],
        team_id: Some("T0TESTTEAM".into()),
        api_app_id: Some("A0TESTAPP1".into()),
        cloudtrail_delay: break_glass::domain::Duration::from_secs(900),
    };
    let policy = Policy::parse(&format!(
        "version = 1\n[users]\nU0ALICE0001 = \"alice@example.com\"\n[[rule]]\nname = \"oncall\"\neffect = \"allow\"\nslack_users = [\"U0ALICE0001\"]\naccounts = [\"123456789012\"]\npermission_sets = [\"{PS}\"]\ndefault_duration = \"1h\"\nmax_duration = \"4h\"\n"
    ))
    .unwrap();
    let payload = json!({
        "type": "interactive_message",
        "actions": [{"name": "break_glass", "type": "button", "value": PS}],
        "callback_id": "deployment_123456789012_abc",
        "team": {"id": "T0TESTTEAM", "domain": "example"}, "user": {"id": "U0ALICE0001", "name": "alice"},
        "channel": {"id": "C0DEPLOYS1", "name": "deploys"}, "action_ts": "1700000000.1", "message_ts": "1700000000.0",
        "api_app_id": "A0TESTAPP1", "response_url": "https://hooks.slack.com/actions/T0/1/abc", "trigger_id": "1.2.3",
        "original_message": {"attachments": [{"callback_id": "deployment_123456789012_abc", "actions": [
            {"name": "retry", "text": "Retry", "type": "button", "value": "retry"},
            {"name": "break_glass", "text": "Break Glass Prod", "type": "button", "value": PS}]}]}
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes();
    let now = 1_800_000_000i64;
    let ts = now.to_string();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    headers.insert("x-slack-request-timestamp", ts.parse().unwrap());
    headers.insert(
        "x-slack-signature",
        sign(secret.as_bytes(), &ts, &body).parse().unwrap(),
    );
    let groups = Default::default();
    let once = || {
        let Screened::Proceed(i) = screen(&settings, &http::Method::POST, &headers, &body, now)
        else {
            panic!("the bench click must proceed")
        };
        let Interaction::BreakGlass(c) = *i else {
            panic!()
        };
        let d = policy.decide(
            &Subject {
                slack_user: &c.user_id,
                sso_groups: &groups,
            },
            &Target {
                account: &c.account_id,
                permission_set: &c.permission_set_arn,
                permission_set_name: None,
            },
        );
        assert!(matches!(d, Decision::Allow(_)));
        std::hint::black_box(break_glass::slack::ephemeral(
            break_glass::slack::ACCESS_INCOMING,
        ))
    };
    for _ in 0..2_000 {
        once();
    }
    let mut per_call = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        for _ in 0..100 {
            std::hint::black_box(once());
        }
        per_call.push(t.elapsed().as_secs_f64() * 1e6 / 100.0);
    }
    let (med, lo, hi) = stats(per_call);
    rows.push(Row {
        what: format!(
            "webhook hot path (verify+parse+policy+reply, {} B body)",
            body.len()
        ),
        figure: format!("{med:.1} µs (min {lo:.1}, p99 {hi:.1})"),
        budget: "≤ 20 µs".into(),
        ok: Some(med <= 20.0),
    });
}

// ---------------------------------------------------------------- render

fn record(i: usize) -> Value {
    let (name, source, ro) = match i % 10 {
        0 => ("CreateAccessKey", "iam.amazonaws.com", false),
        1 => ("PutObject", "s3.amazonaws.com", false),
        2 => ("GetSecretValue", "secretsmanager.amazonaws.com", true),
        _ => ("DescribeInstances", "ec2.amazonaws.com", true),
    };
    let mut r = json!({
        "eventVersion": "1.09", "eventID": format!("00000000-0000-4000-8000-{i:012}"),
        "eventTime": format!("2026-11-24T{:02}:{:02}:{:02}Z", 8 + i / 3600 % 12, i / 60 % 60, i % 60),
        "awsRegion": "eu-west-1", "eventSource": source, "eventName": name, "readOnly": ro,
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:alice@example.com", "arn": ARN,
                         "accountId": "123456789012", "sessionContext": {"attributes": {"creationDate": "2026-11-24T08:00:00Z", "mfaAuthenticated": "false"}}},
        "recipientAccountId": "123456789012", "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.0 md/awscrt#0.19.19 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#debian.12 md/prompt#off md/command#ec2.describe-instances",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": format!("i-{i:017x}")}]}, "filterSet": {}},
        "responseElements": null, "requestID": format!("{i:08x}-1111-2222-3333-444444444444"),
        "eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "ec2.eu-west-1.amazonaws.com"}
    });
    if i % 50 == 7 {
        r["errorCode"] = json!("Client.UnauthorizedOperation");
        r["errorMessage"] =
            json!("You are not authorized to perform this operation. <script>alert(1)</script>");
    }
    r
}

fn render(rows: &mut Vec<Row>, dir: &Path) {
    let header = Header {
        user: "alice@example.com".into(),
        account_id: "123456789012".into(),
        account_name: Some("production".into()),
        more_accounts: Vec::new(),
        permission_set: "BreakGlassAdmin".into(),
        from: break_glass::time_util::from_rfc3339("2026-11-24T08:00:00Z").unwrap(),
        to: break_glass::time_util::from_rfc3339("2026-11-24T20:00:00Z").unwrap(),
        request_id: Some("bg-000000000000000000000000".into()),
        reason: None,
        slack_link: None,
        incident: None,
        ended_at: None,
    };
    for n in [1_000, 10_000, 100_000] {
        let events: Vec<Event> = (0..n)
            .map(|i| Event::from_record(&record(i)).unwrap())
            .collect();
        let mut times = Vec::new();
        for _ in 0..if n >= 100_000 { 3 } else { 10 } {
            let t = Instant::now();
            let v = View::new(
                &header,
                &events,
                &[],
                &[],
                break_glass::report::analysis::Coverage::new(vec!["us-east-1".into()], None, &[]),
                n,
            );
            let html = v.html().unwrap();
            let text = v.text().unwrap();
            std::hint::black_box((html.len(), text.len()));
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (med, lo, hi) = stats(times);
        rows.push(Row {
            what: format!("render {n} parsed events (HTML + text)"),
            figure: format!("{med:.1} ms (min {lo:.1}, max {hi:.1})"),
            budget: if n == 10_000 {
                "≤ 15 ms".into()
            } else {
                "-".into()
            },
            ok: (n == 10_000).then_some(med <= 15.0),
        });

        // The whole CLI process on a CloudTrail file of that size.
        let file = dir.join(format!("trail-{n}.json"));
        let records: Vec<Value> = (0..n).map(record).collect();
        std::fs::write(
            &file,
            serde_json::to_vec(&json!({"Records": records})).unwrap(),
        )
        .unwrap();
        let size_mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
        let mut walls = Vec::new();
        let mut rss = 0;
        for _ in 0..if n >= 100_000 { 3 } else { 5 } {
            // Through a small wrapper process (this harness in `--measure` mode): wait4's peak
            // RSS of a child forked from this big process would count our pages, not its own.
            let t = Instant::now();
            let child = Command::new(std::env::current_exe().unwrap())
                .arg("--measure")
                .arg(env!("CARGO_BIN_EXE_break-glass"))
                .args(["report", "render", "--events"])
                .arg(&file)
                .arg("--html")
                .arg(dir.join("r.html"))
                .arg("--text")
                .arg(dir.join("r.txt"))
                .args([
                    "--user",
                    "alice@example.com",
                    "--account",
                    "123456789012",
                    "--permission-set",
                    "BreakGlassAdmin",
                ])
                .stdout(Stdio::piped())
                .output()
                .unwrap();
            let status = child.status.success();
            let peak: i64 = String::from_utf8_lossy(&child.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            assert!(status, "report render failed");
            walls.push(t.elapsed().as_secs_f64() * 1e3);
            rss = rss.max(peak);
        }
        let (med, lo, hi) = stats(walls);
        let (time_budget, rss_budget) = match n {
            10_000 => (Some(60.0), Some(32.0)),
            100_000 => (None, Some(256.0)),
            _ => (None, None),
        };
        let rss_mib = rss as f64 / 1024.0;
        rows.push(Row {
            what: format!("`report render` process, {n} events ({size_mb:.0} MB file)"),
            figure: format!("{med:.0} ms (min {lo:.0}, max {hi:.0}), peak RSS {rss_mib:.0} MiB"),
            budget: match (time_budget, rss_budget) {
                (Some(t), Some(m)) => format!("≤ {t} ms, ≤ {m} MiB"),
                (None, Some(m)) => format!("bounded (≤ {m} MiB)"),
                _ => "-".into(),
            },
            ok: rss_budget.map(|m| rss_mib <= m && time_budget.is_none_or(|t| med <= t)),
        });
    }
}

/// Waits for a child and returns (success, peak RSS in KiB) from wait4's rusage.
fn wait_rss(child: Child) -> (bool, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on our own child; `usage` is a valid out-pointer.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    std::mem::forget(child);
    (
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        usage.ru_maxrss,
    )
}

// ---------------------------------------------------------------- the local stack

struct Stack {
    child: Child,
    env: HashMap<String, String>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn start_stack(dir: &Path) -> Stack {
    start_stack_with(dir, &["--no-binary", "--duration", "1h"])
}

fn start_stack_with(dir: &Path, args: &[&str]) -> Stack {
    let env_file = dir.join("env");
    let _ = std::fs::remove_file(&env_file);
    let child = Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("testbed/stack.py"))
        .arg("--env-file")
        .arg(&env_file)
        .args(args)
        .stdout(std::fs::File::create(dir.join("stack.log")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect(".venv missing: run make bench (it installs the test bed)");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !env_file.exists() {
        assert!(Instant::now() < deadline, "the local stack did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let env = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    Stack { child, env }
}

/// A minimal Lambda Runtime API: serves one event, records when the function first polled
/// and when it answered.
fn runtime_api(event: Value) -> (String, mpsc::Receiver<(&'static str, Instant, String)>) {
    runtime_api_serving(vec![event])
}

type Events = std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Value>>>;

/// The Runtime API serving `events` one after the other (each poll gets the next; once they
/// are gone, polls are held open); records each poll, each event's delivery and each answer.
fn runtime_api_serving(
    events: Vec<Value>,
) -> (String, mpsc::Receiver<(&'static str, Instant, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    let events: Events = std::sync::Arc::new(std::sync::Mutex::new(events.into()));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            let events = events.clone();
            std::thread::spawn(move || serve(stream, events, tx));
        }
    });
    (addr, rx)
}

fn serve(stream: TcpStream, events: Events, tx: mpsc::Sender<(&'static str, Instant, String)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        if line.contains("/invocation/next") {
            let _ = tx.send(("next", Instant::now(), String::new()));
            let Some(event) = events.lock().unwrap().pop_front() else {
                // Hold the poll open: the process stays idle, as Lambda freezes it.
                std::thread::sleep(Duration::from_secs(3600));
                return;
            };
            let b = event.to_string();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: bench-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:break-glass\r\nLambda-Runtime-Trace-Id: Root=1-0-0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
            let _ = tx.send(("delivered", Instant::now(), String::new()));
        } else {
            let kind = if line.contains("/error") {
                "error"
            } else {
                "response"
            };
            let _ = tx.send((
                kind,
                Instant::now(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let _ = write!(out, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

fn peak_rss_kib(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

static QUIET: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A state machine that ends at once: the webhook's StartExecution costs the same, without
/// fifteen executions running in moto behind the measurements.
fn quiet_state_machine(stack: &Stack) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&stack.env["AWS_ENDPOINT_URL"])
            .region(aws_sdk_sfn::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sfn::config::Credentials::new(
                "t", "t", None, None, "bench",
            ))
            .load()
            .await;
        aws_sdk_sfn::Client::new(&sdk)
            .create_state_machine()
            .name("bench-quiet")
            .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/bench")
            .send()
            .await
            .unwrap()
            .state_machine_arn
    })
}

/// The environment of a function under our Runtime API at `addr`, AWS on the test bed.
fn function_env(
    e: &HashMap<String, String>,
    role: &str,
    addr: &str,
    state_machine: &str,
) -> Vec<(String, String)> {
    let fixed = [
        ("APP_ROLE", role),
        ("AWS_LAMBDA_RUNTIME_API", addr),
        ("AWS_LAMBDA_FUNCTION_NAME", "break-glass"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("STATE_MACHINE_ARN", state_machine),
        ("REPORT_SENDER", "break-glass@example.com"),
        ("REPORT_RECIPIENTS", "security@example.com"),
        ("RUST_LOG", "warn"),
    ];
    let from_stack = [
        "AWS_ENDPOINT_URL",
        "TABLE_NAME",
        "SLACK_SECRET_ARN",
        "SLACK_API_URL",
        "SLACK_TEAM_ID",
        "SLACK_API_APP_ID",
        "POLICY_FILE",
        "SSO_INSTANCE_ARN",
        "IDENTITY_STORE_ID",
        // The test bed's policy gates rules on PagerDuty and Opsgenie (its fakes).
        "ONCALL_SECRET_ARN",
        "PAGERDUTY_API_URL",
        "OPSGENIE_API_URL",
    ];
    fixed
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(from_stack.iter().map(|k| (k.to_string(), e[*k].clone())))
        .collect()
}

fn cold_start(
    rows: &mut Vec<Row>,
    stack: &Stack,
    bootstrap: &Path,
    role: &str,
    event: impl Fn(usize) -> Value,
) {
    let e = &stack.env;
    let state_machine = QUIET.get_or_init(|| quiet_state_machine(stack)).clone();
    let mut totals = Vec::new();
    let mut inits = Vec::new();
    let mut rss = Vec::new();
    for i in 0..15 {
        let (addr, rx) = runtime_api(event(i));
        let t0 = Instant::now();
        let mut child = Command::new(bootstrap)
            .env_clear()
            .envs(function_env(e, role, &addr, &state_machine))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut init = None;
        let mut answer = None;
        while answer.is_none() {
            let (kind, at, body) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the function did not answer");
            match kind {
                "next" if init.is_none() => init = Some(at - t0),
                "response" => answer = Some((at - t0, body)),
                "error" => panic!("{role} cold start returned an error: {body}"),
                _ => {}
            }
        }
        let (total, body) = answer.unwrap();
        if i == 0 {
            assert!(
                body.contains("statusCode") || body.contains("release"),
                "{role}: unexpected answer {body}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
        rss.push(peak_rss_kib(child.id()) as f64 / 1024.0);
        let _ = child.kill();
        let _ = child.wait();
        totals.push(total.as_secs_f64() * 1e3);
        inits.push(init.unwrap().as_secs_f64() * 1e3);
    }
    let (t, tlo, thi) = stats(totals);
    let (i, ilo, ihi) = stats(inits);
    let (r, _, rhi) = stats(rss);
    let webhook = role == "webhook";
    rows.push(Row {
        what: format!("{role} cold start: spawn → first response (15 runs)"),
        figure: format!("{t:.1} ms (min {tlo:.1}, max {thi:.1})"),
        budget: if webhook {
            "≤ 40 ms".into()
        } else {
            "-".into()
        },
        ok: webhook.then_some(t <= 40.0),
    });
    rows.push(Row {
        what: format!("{role} init: spawn → first poll of the Runtime API"),
        figure: format!("{i:.1} ms (min {ilo:.1}, max {ihi:.1})"),
        budget: if webhook {
            "≤ 15 ms".into()
        } else {
            "-".into()
        },
        ok: webhook.then_some(i <= 15.0),
    });
    rows.push(Row {
        what: format!("{role} peak RSS"),
        figure: format!("{r:.1} MiB (max {rhi:.1})"),
        budget: if webhook {
            "≤ 24 MiB".into()
        } else {
            "-".into()
        },
        ok: webhook.then_some(rhi <= 24.0),
    });
}

fn signed_click_event(stack: &Stack, i: usize) -> Value {
    click_event_for(stack, i, "EXAMPLE_PERMISSION_SET_ARN")
}

/// A signed click on a button for the permission set named by the env key `ps`.
fn click_event_for(stack: &Stack, i: usize, ps: &str) -> Value {
    let e = &stack.env;
    let payload = json!({
        "type": "interactive_message",
        "actions": [{"name": "break_glass", "type": "button", "value": e[ps]}],
        "callback_id": format!("deployment_{}_abc", e["EXAMPLE_ACCOUNT_ID"]),
        "team": {"id": e["SLACK_TEAM_ID"]}, "user": {"id": e["EXAMPLE_SLACK_USER_ID"]},
        "channel": {"id": "C0BENCH001"}, "action_ts": format!("1700009999.{i:06}"), "message_ts": format!("1700009999.{i:06}"),
        "api_app_id": e["SLACK_API_APP_ID"],
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sig = sign(e["SLACK_SIGNING_SECRET"].as_bytes(), &ts, body.as_bytes());
    json!({
        "version": "2.0", "routeKey": "POST /slack", "rawPath": "/slack", "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts, "x-slack-signature": sig},
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench.example", "domainPrefix": "bench",
                           "requestId": format!("r{i}"), "routeKey": "POST /slack", "stage": "$default", "time": "24/Nov/2026:08:00:00 +0000",
                           "timeEpoch": 1800000000000u64, "http": {"method": "POST", "path": "/slack", "protocol": "HTTP/1.1",
                           "sourceIp": "192.0.2.1", "userAgent": "Slackbot 1.0"}},
        "body": body, "isBase64Encoded": false
    })
}

// ---------------------------------------------------------------- on-call gating

/// The webhook's click latency with the on-call lookup: the example user on call (level 1 of
/// `EXAMPLE_ONCALL_SCHEDULE_ID` in the test bed's PagerDuty fake) clicks the gated permission
/// set. Each run spawns the release webhook and serves it six clicks: the first is the cold
/// start (spawn → answer), the others warm (event delivered → answer). Three settings: an
/// ungated click, for comparison; gated with the on-call answer cached (30 s, the default);
/// gated with the cache off (PagerDuty asked on every click, as the local stack runs).
fn gated_clicks(rows: &mut Vec<Row>, stack: &Stack, bootstrap: &Path) {
    let e = &stack.env;
    let state_machine = QUIET.get_or_init(|| quiet_state_machine(stack)).clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pagerduty = e["PAGERDUTY_API_URL"].clone();
    let asked = || {
        rt.block_on(async {
            let v: Value = reqwest::get(format!("{pagerduty}/_testbed/requests"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .filter(|r| r["path"] == "/oncalls")
                .count()
        })
    };
    rt.block_on(async {
        reqwest::Client::new()
            .put(format!("{pagerduty}/_testbed/oncall"))
            .json(&json!({"schedule_id": e["EXAMPLE_ONCALL_SCHEDULE_ID"],
                          "emails": [e["EXAMPLE_SSO_USER_NAME"]], "level": 1}))
            .send()
            .await
            .unwrap();
    });
    let settings = [
        ("ungated click", "EXAMPLE_PERMISSION_SET_ARN", "30"),
        (
            "gated click, on call, answer cached (30 s)",
            "EXAMPLE_GATED_PERMISSION_SET_ARN",
            "30",
        ),
        (
            "gated click, on call, PagerDuty asked every click",
            "EXAMPLE_GATED_PERMISSION_SET_ARN",
            "0",
        ),
    ];
    // Runs of the three settings take turns, so that the emulator's table, which grows with
    // every click, weighs on each the same.
    let mut cold = vec![Vec::new(); settings.len()];
    let mut warm = vec![Vec::new(); settings.len()];
    let mut lookups = vec![0; settings.len()];
    let mut next_click = 5_000;
    for _ in 0..8 {
        for (s, (label, ps, cache)) in settings.iter().enumerate() {
            let before = asked();
            let events = (0..6)
                .map(|_| {
                    next_click += 1;
                    click_event_for(stack, next_click, ps)
                })
                .collect();
            let (addr, rx) = runtime_api_serving(events);
            let t0 = Instant::now();
            let mut child = Command::new(bootstrap)
                .env_clear()
                .envs(function_env(e, "webhook", &addr, &state_machine))
                .env("ONCALL_CACHE_SECONDS", cache)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut delivered = None;
            let mut answers = 0;
            while answers < 6 {
                let (kind, at, body) = rx
                    .recv_timeout(Duration::from_secs(30))
                    .expect("the webhook did not answer");
                match kind {
                    "delivered" => delivered = Some(at),
                    "response" => {
                        assert!(body.contains("access incoming"), "{label}: {body}");
                        let ms = if answers == 0 {
                            (at - t0).as_secs_f64() * 1e3
                        } else {
                            (at - delivered.unwrap()).as_secs_f64() * 1e3
                        };
                        if answers == 0 {
                            cold[s].push(ms);
                        } else {
                            warm[s].push(ms);
                        }
                        answers += 1;
                    }
                    "error" => panic!("{label}: {body}"),
                    _ => {}
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            lookups[s] += asked() - before;
        }
    }
    for (s, (label, _, _)) in settings.iter().enumerate() {
        let (c, clo, chi) = stats(cold[s].clone());
        let (w, wlo, whi) = stats(warm[s].clone());
        rows.push(Row {
            what: format!("webhook {label}: cold, spawn → answer (8 runs)"),
            figure: format!("{c:.1} ms (min {clo:.1}, max {chi:.1})"),
            budget: "≤ 3 s (Slack)".into(),
            ok: Some(chi <= 3000.0),
        });
        rows.push(Row {
            what: format!(
                "webhook {label}: warm, event → answer (40 clicks, {} on-call lookups)",
                lookups[s]
            ),
            figure: format!("{w:.1} ms (min {wlo:.1}, max {whi:.1})"),
            budget: "≤ 3 s (Slack)".into(),
            ok: Some(whi <= 3000.0),
        });
    }
}

// ---------------------------------------------------------------- ending a lease

/// A signed form body posted to the stack's webhook; the reply's text.
async fn post_form(http: &reqwest::Client, e: &HashMap<String, String>, payload: Value) -> String {
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sig = sign(e["SLACK_SIGNING_SECRET"].as_bytes(), &ts, body.as_bytes());
    let reply = http
        .post(&e["WEBHOOK_URL"])
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    reply.text().await.unwrap()
}

async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "bench: no {what} within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sdk_of(e: &HashMap<String, String>) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&e["AWS_ENDPOINT_URL"])
        .region(aws_sdk_sfn::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sfn::config::Credentials::new(
            "t", "t", None, None, "bench",
        ))
        .load()
        .await
}

async fn request_field(
    ddb: &aws_sdk_dynamodb::Client,
    e: &HashMap<String, String>,
    id: &str,
    field: &str,
) -> Option<String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = ddb
        .get_item()
        .table_name(&e["TABLE_NAME"])
        .key("pk", AttributeValue::S(id.into()))
        .key("sk", AttributeValue::S("request".into()))
        .consistent_read(true)
        .send()
        .await
        .ok()?
        .item?;
    item.get(field)?.as_s().ok().cloned()
}

/// End access now → `DeleteAccountAssignment` issued (the test bed logs when each call
/// arrives), over 20 leases at default settings; then the transitions of a lease that
/// expires, with the lease and the re-check interval scaled down 3 600× (1 s for 1 h).
fn ending(rows: &mut Vec<Row>, dir: &Path, binary: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let runs = 20;
    let latencies: Vec<f64> = {
        let stack = start_stack_with(dir, &["--binary", binary.to_str().unwrap()]);
        let e = &stack.env;
        rt.block_on(async {
            let sdk = sdk_of(e).await;
            let ddb = aws_sdk_dynamodb::Client::new(&sdk);
            let mut out = Vec::new();
            for i in 0..runs {
                let click = json!({
                    "type": "interactive_message",
                    "actions": [{"name": "break_glass", "type": "button", "value": e["EXAMPLE_PERMISSION_SET_ARN"]}],
                    "callback_id": format!("deployment_{}_abc", e["EXAMPLE_ACCOUNT_ID"]),
                    "team": {"id": e["SLACK_TEAM_ID"]}, "user": {"id": e["EXAMPLE_SLACK_USER_ID"]},
                    "channel": {"id": "C0BENCH002"}, "action_ts": format!("1700008888.{i:06}1"),
                    "message_ts": format!("1700008888.{i:06}"), "api_app_id": e["SLACK_API_APP_ID"],
                });
                let Ok(Interaction::BreakGlass(c)) = break_glass::slack::payload::parse_form(
                    serde_urlencoded::to_string([("payload", click.to_string())])
                        .unwrap()
                        .as_bytes(),
                ) else {
                    panic!("the bench click does not parse")
                };
                let id = break_glass::handlers::webhook::request_id(&c).to_string();
                post_form(&http, e, click).await;
                poll("hold", || request_field(&ddb, e, &id, "hold_token")).await;
                let t0 = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                let end = json!({
                    "type": "block_actions", "team": {"id": e["SLACK_TEAM_ID"]},
                    "user": {"id": e["EXAMPLE_SLACK_USER_ID"]}, "api_app_id": e["SLACK_API_APP_ID"],
                    "actions": [{"action_id": "end_access", "block_id": "lease", "value": id,
                                 "type": "button", "action_ts": format!("1700008888.{i:06}9")}]
                });
                post_form(&http, e, end).await;
                let url = format!(
                    "{}/_testbed/calls?operation=DeleteAccountAssignment",
                    e["MOTO_URL"]
                );
                let at = poll("DeleteAccountAssignment", || async {
                    let calls: Vec<Value> =
                        http.get(&url).send().await.ok()?.json().await.ok()?;
                    calls
                        .iter()
                        .filter_map(|c| c["at"].as_f64())
                        .find(|at| *at >= t0)
                })
                .await;
                out.push((at - t0) * 1e3);
                // The next lease starts once this one's release is over.
                poll("revoke", || async {
                    (request_field(&ddb, e, &id, "status").await? == "revoked").then_some(())
                })
                .await;
            }
            out
        })
    };
    let (p50, lo, p99) = stats(latencies);
    rows.push(Row {
        what: format!(
            "End access now → DeleteAccountAssignment issued ({runs} leases, local stack, default settings)"
        ),
        figure: format!("p50 {p50:.0} ms, p99 {p99:.0} ms (min {lo:.0})"),
        budget: "≤ 2 s p99".into(),
        ok: Some(p99 <= 2000.0),
    });

    let stack = start_stack_with(
        dir,
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--hold-recheck-seconds",
            "1",
            "--cloudtrail-delay-seconds",
            "1",
        ],
    );
    let e = &stack.env;
    let counts: Vec<(&str, usize)> = rt.block_on(async {
        let sfn = aws_sdk_sfn::Client::new(&sdk_of(e).await);
        let mut counts = Vec::new();
        for (label, duration) in [("1 h", "1s"), ("24 h", "24s")] {
            let view = format!("V-bench-{duration}");
            let submit = json!({
                "type": "view_submission", "team": {"id": e["SLACK_TEAM_ID"]},
                "user": {"id": e["EXAMPLE_SLACK_USER_ID"]}, "api_app_id": e["SLACK_API_APP_ID"],
                "view": {"id": view, "callback_id": "break_glass_request", "private_metadata": "{}",
                         "state": {"values": {
                             "account": {"account": {"type": "static_select", "selected_option": {"value": e["EXAMPLE_ACCOUNT_ID"]}}},
                             "permission_set": {"permission_set": {"type": "static_select", "selected_option": {"value": e["EXAMPLE_PERMISSION_SET_ARN"]}}},
                             "duration": {"duration": {"type": "static_select", "selected_option": {"value": duration}}},
                             "reason": {"reason": {"type": "plain_text_input", "value": null}}}}}
            });
            post_form(&http, e, submit).await;
            let id = break_glass::domain::RequestId::derive(&[
                &e["SLACK_TEAM_ID"],
                &e["EXAMPLE_SLACK_USER_ID"],
                "modal",
                &view,
            ])
            .to_string();
            let arn = format!(
                "{}:{id}",
                e["STATE_MACHINE_ARN"].replacen(":stateMachine:", ":execution:", 1)
            );
            poll("the execution to finish", || async {
                let d = sfn.describe_execution().execution_arn(&arn).send().await.ok()?;
                (d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running).then_some(())
            })
            .await;
            let history = sfn
                .get_execution_history()
                .execution_arn(&arn)
                .max_results(1000)
                .send()
                .await
                .unwrap();
            let entered = history
                .events()
                .iter()
                .filter(|ev| ev.state_entered_event_details().is_some())
                .count();
            counts.push((label, entered));
        }
        counts
    });
    for (label, entered) in counts {
        rows.push(Row {
            what: format!(
                "state transitions of a {label} lease that expires (re-check every hour; measured scaled 3600×)"
            ),
            figure: format!("{entered}"),
            budget: "O(1): a handful".into(),
            ok: None,
        });
    }
}

// ---------------------------------------------------------------- CloudTrail collection

fn collection(rows: &mut Vec<Row>, stack: &Stack) {
    let e = &stack.env;
    let regions = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    let per_region = 400;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    for region in regions {
        let records: Vec<Value> = (0..per_region)
            .map(|i| {
                let mut r = record(i);
                r["awsRegion"] = json!(region);
                r["eventID"] = json!(format!("{region}-{i}"));
                r["eventTime"] = json!(format!("2026-11-24T08:{:02}:{:02}Z", i / 60 % 60, i % 60));
                r
            })
            .collect();
        let body = json!({"account_id": "123456789012", "region": region, "events": records});
        let url = format!("{}/_testbed/cloudtrail/events", e["MOTO_URL"]);
        let status =
            rt.block_on(async { http.post(&url).json(&body).send().await.unwrap().status() });
        assert!(status.is_success(), "fixture events refused: {status}");
    }
    let (events, calls, wall) = rt.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&e["AWS_ENDPOINT_URL"])
            .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudtrail::config::Credentials::new(
                "t", "t", None, None, "bench",
            ))
            .load()
            .await;
        let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
        let collector = break_glass::aws::cloudtrail::Collector::new(
            &sdk,
            &regions,
            Some("123456789012".into()),
            None,
            "aws",
        );
        let sources = collector.sources("123456789012", "bg-bench").await;
        let session = break_glass::report::Session {
            account_id: "123456789012".into(),
            more_accounts: Vec::new(),
            permission_set_name: "BreakGlassAdmin".into(),
            user_name: "alice@example.com".into(),
        };
        let from = break_glass::time_util::from_rfc3339("2026-11-24T07:00:00Z").unwrap();
        let to = break_glass::time_util::from_rfc3339("2026-11-24T10:00:00Z").unwrap();
        let t = Instant::now();
        let c = break_glass::report::collect::collect(sources, &session, from, to).await;
        (c.events.len(), c.calls, t.elapsed())
    });
    let expected = regions.len() * per_region.div_ceil(50);
    let serial = Duration::from_millis(500) * (per_region.div_ceil(50) as u32 - 1);
    rows.push(Row {
        what: format!(
            "CloudTrail: {per_region} events × {} regions",
            regions.len()
        ),
        figure: format!(
            "{events} events, {calls} calls, {:.1} s wall",
            wall.as_secs_f64()
        ),
        budget: format!(
            "{expected} calls, ≥ {:.1} s (2 calls/s per pair, pairs concurrent)",
            serial.as_secs_f64()
        ),
        ok: Some(
            calls == expected
                && events == regions.len() * per_region
                && wall >= serial
                && wall < serial * 2 + Duration::from_secs(2),
        ),
    });
}

// ---------------------------------------------------------------- sizes

fn sizes(rows: &mut Vec<Row>) {
    for (arch, dir) in [
        ("x86_64", "target/lambda-x86_64/break-glass"),
        ("arm64", "target/lambda-arm64/break-glass"),
    ] {
        let dir = repo().join(dir);
        let size = |f: &str| {
            std::fs::metadata(dir.join(f))
                .map(|m| m.len() as f64 / 1024.0 / 1024.0)
                .ok()
        };
        match (size("bootstrap"), size("bootstrap.zip")) {
            (Some(b), z) => {
                rows.push(Row {
                    what: format!("release bootstrap, {arch} (stripped)"),
                    figure: format!("{b:.1} MiB"),
                    budget: "≤ 12 MiB".into(),
                    ok: Some(b <= 12.0),
                });
                if let Some(z) = z {
                    rows.push(Row {
                        what: format!("Lambda zip, {arch}"),
                        figure: format!("{z:.1} MiB"),
                        budget: "≤ 6 MiB".into(),
                        ok: Some(z <= 6.0),
                    });
                }
            }
            _ => rows.push(Row {
                what: format!("release bootstrap, {arch}"),
                figure: "not built (make bench builds it)".into(),
                budget: "≤ 12 MiB".into(),
                ok: None,
            }),
        }
    }
}

/// `--measure CMD ARGS…`: run CMD, print its peak RSS in KiB, exit with its success.
fn measure(args: &[String]) -> ! {
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (ok, peak) = wait_rss(child);
    println!("{peak}");
    std::process::exit(if ok { 0 } else { 1 })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure") {
        measure(&args[1..]);
    }
    // `cargo bench` passes `--bench`; a name filters the groups.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |g: &str| filter.is_empty() || filter.iter().any(|f| g.contains(f.as_str()));
    let dir = repo().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rows = Vec::new();
    if want("hot") {
        hot_path(&mut rows);
    }
    if want("render") {
        render(&mut rows, &dir);
    }
    if want("cold") || want("collect") || want("oncall") {
        let stack = start_stack(&dir);
        let bootstrap = repo().join("target/lambda-x86_64/break-glass/bootstrap");
        if want("cold") {
            if bootstrap.exists() {
                // The first webhook run records this request; the worker then looks at its lease.
                let first_click = signed_click_event(&stack, 0);
                let Ok(Interaction::BreakGlass(c)) = break_glass::slack::payload::parse_form(
                    first_click["body"].as_str().unwrap().as_bytes(),
                ) else {
                    panic!("the bench click does not parse")
                };
                let first_request = break_glass::handlers::webhook::request_id(&c).to_string();
                cold_start(&mut rows, &stack, &bootstrap, "webhook", |i| {
                    signed_click_event(&stack, i)
                });
                cold_start(
                    &mut rows,
                    &stack,
                    &bootstrap,
                    "worker",
                    move |_| json!({"type": "check", "request_id": first_request}),
                );
            } else {
                eprintln!(
                    "{} missing: run `make bench` (it builds the release binary)",
                    bootstrap.display()
                );
            }
        }
        if want("collect") {
            collection(&mut rows, &stack);
        }
        // Last on this stack: its clicks grow the table the cold start reads.
        if want("oncall") && bootstrap.exists() {
            gated_clicks(&mut rows, &stack, &bootstrap);
        }
    }
    if want("ending") {
        let release = repo().join("target/lambda-x86_64/break-glass/bootstrap");
        let binary = if release.exists() {
            release
        } else {
            repo().join("target/debug/break-glass")
        };
        ending(&mut rows, &dir, &binary);
    }
    if want("size") {
        sizes(&mut rows);
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    println!(
        "\nbreak-glass benchmarks: {} cores, {cpu}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let w = rows
        .iter()
        .map(|r| r.what.chars().count())
        .max()
        .unwrap_or(0);
    let f = rows
        .iter()
        .map(|r| r.figure.chars().count())
        .max()
        .unwrap_or(0);
    for r in &rows {
        let verdict = match r.ok {
            Some(true) => "ok",
            Some(false) => "OVER",
            None => "",
        };
        println!(
            "  {:<w$}  {:<f$}  {:<28} {verdict}",
            r.what, r.figure, r.budget
        );
    }
}
