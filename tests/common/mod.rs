//! The local stack for integration tests: `testbed/stack.py` (moto with our extension, the
//! Slack fake, `cargo lambda watch` and this crate's real binary), started once per test
//! binary and shared by its tests. Each test uses its own click, so they do not interfere.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sfn::config::{Credentials, Region};
use break_glass::slack::signature::sign;
use serde_json::{Value, json};

pub struct Stack {
    pub env: HashMap<String, String>,
    /// Everything the stack printed: the function's logs, moto's, the fakes'.
    pub log: PathBuf,
    _child: Child,
}

impl Stack {
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the stack's env file"))
    }
}

static STACK: OnceLock<Stack> = OnceLock::new();

/// The stack the test binary started (with its own settings): helpers that must not start
/// one with the defaults use this.
fn current() -> &'static Stack {
    STACK
        .get()
        .expect("start the test binary's stack first (its `s()`)")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BG_PYTHON") {
        return p.into();
    }
    let venv = repo().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `make test` (it creates the venv)",
        venv.display()
    );
    venv
}

/// The shared stack: hold 4 s, CloudTrail delay 1 s, so a whole cycle takes seconds.
pub fn stack() -> &'static Stack {
    stack_with("4s")
}

/// The shared stack with another default lease duration; the first call in a test binary
/// decides. Holds wait on their callback with the binary's default re-check interval.
pub fn stack_with(duration: &str) -> &'static Stack {
    stack_configured(duration, 3)
}

/// The shared stack with a default lease duration and an attempt timeout for AWS calls (3 s
/// keeps the injected "hung call" faults quick; a slow call needs a longer one).
pub fn stack_configured(duration: &str, call_timeout_secs: u64) -> &'static Stack {
    start(duration, call_timeout_secs, &[])
}

/// The shared stack with the policy's review time set to `within` (so that a pending review
/// is reminded after it, and escalated after twice it, within a test).
pub fn stack_reviewing(within: &str) -> &'static Stack {
    start("4s", 3, &["--review-within", within])
}

pub fn start(duration: &str, call_timeout_secs: u64, extra: &[&str]) -> &'static Stack {
    start_with_env(duration, call_timeout_secs, extra, &[])
}

/// [`start`], with settings of the binary (`RECONCILE_PAIRS_PER_RUN`, …) in `env`.
pub fn start_with_env(
    duration: &str,
    call_timeout_secs: u64,
    extra: &[&str],
    env: &[(&str, &str)],
) -> &'static Stack {
    STACK.get_or_init(|| {
        let dir = repo().join(format!("target/test-stack/{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let env_file = dir.join("env");
        let log = std::fs::File::create(dir.join("stack.log")).unwrap();
        let mut child = Command::new(python())
            .arg(repo().join("testbed/stack.py"))
            .args(["--env-file", env_file.to_str().unwrap()])
            .args(["--binary", env!("CARGO_BIN_EXE_break-glass")])
            .args(["--cloudtrail-delay-seconds", "1", "--duration", duration])
            .args(["--instances", "2"])
            // Local calls answer in milliseconds; a short attempt timeout keeps the injected
            // "hung call" faults quick.
            .env("AWS_CALL_TIMEOUT_SECONDS", call_timeout_secs.to_string())
            // Reports of more than 5 events are capped, with the full timeline as a CSV.
            .env("REPORT_MAX_ROWS", "5")
            // The requester gets the report too.
            .env("REPORT_TO_REQUESTER", "true")
            // Sessions of the seeded permission sets last 5 s, so that a deny on old
            // sessions (rules with end_sessions) is lifted within seconds.
            .args(["--session-duration", "PT5S"])
            .args(extra)
            .env("END_SESSIONS_MARGIN_SECONDS", "1")
            .envs(env.iter().copied())
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start testbed/stack.py");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !env_file.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("stack.log")).unwrap_or_default();
                panic!("the local stack exited ({status}) before it was ready:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the local stack was not ready within 120 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let env = std::fs::read_to_string(&env_file)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Stack {
            env,
            log: dir.join("stack.log"),
            _child: child,
        }
    })
}

/// The `i`th spare allowed user of the test bed: (Slack user id, Identity Center user name).
/// Tests that run at the same time take different ones, so their leases never meet.
pub fn spare_user(i: usize) -> (String, String) {
    let all = current().get("SPARE_USERS");
    let pair = all
        .split(',')
        .nth(i)
        .unwrap_or_else(|| panic!("the test bed has no spare user {i}: {all}"));
    let (slack, sso) = pair.split_once('=').unwrap();
    (slack.to_owned(), sso.to_owned())
}

pub async fn sdk() -> aws_config::SdkConfig {
    let s = stack();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(s.get("AWS_ENDPOINT_URL"))
        .region(Region::new(s.get("AWS_REGION").to_owned()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The original demo's message clicked by `user`, as a form body. `message_ts` makes the
/// click unique to a test.
pub fn seed_click(user: &str, message_ts: &str, permission_set_arn: &str) -> Vec<u8> {
    seed_click_at(
        user,
        message_ts,
        &format!("{message_ts}1"),
        permission_set_arn,
    )
}

/// A click on the original demo's message at `action_ts` (Slack's id of one click: a second
/// click on the same button has its own).
pub fn seed_click_at(
    user: &str,
    message_ts: &str,
    action_ts: &str,
    permission_set_arn: &str,
) -> Vec<u8> {
    let s = stack();
    let payload = json!({
        "type": "interactive_message",
        "actions": [{"name": "break_glass", "type": "button", "value": permission_set_arn}],
        "callback_id": format!("deployment_{}_abc", s.get("EXAMPLE_ACCOUNT_ID")),
        "team": {"id": s.get("SLACK_TEAM_ID"), "domain": "example"},
        "channel": {"id": "C0DEPLOYS1", "name": "deploys"},
        "user": {"id": user, "name": "someone"},
        "action_ts": action_ts,
        "message_ts": message_ts,
        "attachment_id": "1",
        "token": "legacy",
        "api_app_id": s.get("SLACK_API_APP_ID"),
        "is_app_unfurl": false,
        "original_message": {"attachments": [{"callback_id": "deployment_x_abc", "actions": [
            {"name": "retry", "text": "Retry", "type": "button", "value": "retry"},
            {"name": "break_glass", "text": "Break Glass Prod", "type": "button", "value": permission_set_arn}
        ]}]},
        "response_url": format!("{}/response/{message_ts}", s.get("SLACK_FAKE_URL")),
        "trigger_id": "1.2.3",
    });
    serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes()
}

/// The request id the webhook derives for a click body.
pub fn request_id_of(body: &[u8]) -> String {
    match break_glass::slack::payload::parse_form(body).unwrap() {
        break_glass::slack::payload::Interaction::BreakGlass(c) => {
            break_glass::handlers::webhook::request_id(&c).to_string()
        }
        other => panic!("not a break-glass click: {other:?}"),
    }
}

/// Posts to the webhook. `secret` signs it (None: unsigned), `skew` shifts the timestamp.
pub async fn post(body: &[u8], secret: Option<&str>, skew: i64) -> (u16, String) {
    let s = stack();
    let ts = (now() + skew).to_string();
    let mut req = reqwest::Client::new()
        .post(s.get("WEBHOOK_URL"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_vec());
    if let Some(secret) = secret {
        req = req
            .header("X-Slack-Request-Timestamp", &ts)
            .header("X-Slack-Signature", sign(secret.as_bytes(), &ts, body));
    }
    let resp = req.send().await.expect("webhook reachable");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

pub async fn post_signed(body: &[u8]) -> (u16, String) {
    post(body, Some(stack().get("SLACK_SIGNING_SECRET")), 0).await
}

/// Executions of the state machine with this name.
pub async fn executions_named(
    sfn: &aws_sdk_sfn::Client,
    name: &str,
) -> Vec<aws_sdk_sfn::types::ExecutionListItem> {
    let out = sfn
        .list_executions()
        .state_machine_arn(stack().get("STATE_MACHINE_ARN"))
        .send()
        .await
        .unwrap();
    out.executions()
        .iter()
        .filter(|e| e.name() == name)
        .cloned()
        .collect()
}

pub async fn http_json(method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

/// The last `n` lines of each of the binary's logs (for the message of a test that timed
/// out: CI keeps nothing else), each line cut at 400 characters.
pub fn log_tail(n: usize) -> String {
    let Some(stack) = STACK.get() else {
        return "(no stack)".into();
    };
    let logs = stack.log.with_file_name("logs");
    let mut out = Vec::new();
    for i in 1..=4 {
        let path = logs.join(format!("break-glass-{i}.log"));
        let Ok(log) = std::fs::read_to_string(&path) else {
            continue;
        };
        let lines: Vec<&str> = log.lines().collect();
        out.push(format!("== {}", path.display()));
        out.extend(
            lines[lines.len().saturating_sub(n)..]
                .iter()
                .map(|l| l.chars().take(400).collect::<String>()),
        );
    }
    if out.is_empty() {
        return format!("(no binary logs in {})", logs.display());
    }
    out.join("\n")
}

/// Polls `check` every 200 ms until it returns Some, or panics after `secs`.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}; the binary's last words:\n{}",
            log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The decoded base64 parts of a raw MIME message (text, HTML, attachments), in order.
pub fn mime_parts(raw: &str) -> Vec<String> {
    use base64::Engine;
    raw.split("\r\n\r\n")
        .filter_map(|part| {
            let body: String = part.lines().take_while(|l| !l.starts_with("--")).collect();
            base64::engine::general_purpose::STANDARD.decode(body).ok()
        })
        .filter_map(|b| String::from_utf8(b).ok())
        .collect()
}

/// The Identity Store user id of a user name.
pub async fn principal(user_name: &str) -> String {
    aws_sdk_identitystore::Client::new(&sdk().await)
        .get_user_id()
        .identity_store_id(stack().get("IDENTITY_STORE_ID"))
        .alternate_identifier(
            aws_sdk_identitystore::types::AlternateIdentifier::UniqueAttribute(
                aws_sdk_identitystore::types::UniqueAttribute::builder()
                    .attribute_path("userName")
                    .attribute_value(aws_smithy_types::Document::String(user_name.to_owned()))
                    .build()
                    .unwrap(),
            ),
        )
        .send()
        .await
        .unwrap()
        .user_id
}

/// How many assignments of `ps` on the example account `principal` has.
pub async fn assignment_count(principal: &str, ps: &str) -> usize {
    let out = aws_sdk_ssoadmin::Client::new(&sdk().await)
        .list_account_assignments()
        .instance_arn(stack().get("SSO_INSTANCE_ARN"))
        .account_id(stack().get("EXAMPLE_ACCOUNT_ID"))
        .permission_set_arn(ps)
        .send()
        .await
        .unwrap();
    out.account_assignments()
        .iter()
        .filter(|a| a.principal_id() == Some(principal))
        .count()
}

/// The request's item in the table, if recorded.
pub async fn request_item(
    id: &str,
) -> Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    aws_sdk_dynamodb::Client::new(&sdk().await)
        .get_item()
        .table_name(stack().get("TABLE_NAME"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("request".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// The request's audit trail as (event, `field`), oldest first.
async fn audit_pairs(id: &str, field: &str) -> Vec<(String, String)> {
    let store = break_glass::aws::store::Store::new(
        aws_sdk_dynamodb::Client::new(&sdk().await),
        stack().get("TABLE_NAME"),
    );
    store
        .audit_trail(&break_glass::domain::RequestId::parse(id).unwrap())
        .await
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["event"].as_s().unwrap().clone(),
                i[field].as_s().unwrap().clone(),
            )
        })
        .collect()
}

/// The request's audit trail as (event, actor), oldest first.
pub async fn audit_events(id: &str) -> Vec<(String, String)> {
    audit_pairs(id, "actor").await
}

/// The request's audit trail as (event, detail), oldest first.
pub async fn audit_details(id: &str) -> Vec<(String, String)> {
    audit_pairs(id, "detail").await
}

/// The detail of the first `event` of an audit trail ([`audit_details`]); panics, showing the
/// trail, when there is none.
pub fn detail_of(details: &[(String, String)], event: &str) -> String {
    details
        .iter()
        .find(|(e, _)| e == event)
        .map(|(_, d)| d.clone())
        .unwrap_or_else(|| panic!("no {event} in {details:?}"))
}

/// Everything the stack's binaries have logged so far (the alarms' log lines among it).
pub fn binary_logs() -> String {
    std::fs::read_dir(current().get("LOG_DIR"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect()
}

/// The audit trail of a whole single-account cycle whose rule asks nothing more: from the
/// request to the look for use after the end.
pub const WHOLE_CYCLE: &[&str] = &[
    "requested",
    "granting",
    "lease_joined",
    "creating",
    "assignment_requested",
    "granted",
    "announced",
    "revoked",
    "reported",
    "review_requested",
    "after_end_checked",
];

/// [`WHOLE_CYCLE`] where the rule ends live sessions: they are denied right after the revoke
/// and the deny is lifted before the look after the end.
pub fn whole_cycle_ending_sessions() -> Vec<&'static str> {
    let mut trail = WHOLE_CYCLE.to_vec();
    let revoked = trail.iter().position(|e| *e == "revoked").unwrap();
    trail.insert(revoked + 1, "sessions_ended");
    let look = trail
        .iter()
        .position(|e| *e == "after_end_checked")
        .unwrap();
    trail.insert(look, "sessions_deny_lifted");
    trail
}

/// The request's audit trail, event names only.
pub async fn audit_names(id: &str) -> Vec<String> {
    audit_events(id).await.into_iter().map(|(e, _)| e).collect()
}

/// Waits until the execution named `id` exists and has finished: its status and error.
pub async fn finished(
    id: &str,
    secs: u64,
) -> (aws_sdk_sfn::types::ExecutionStatus, Option<String>) {
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    let arn = eventually("the execution", 30, || async {
        executions_named(&sfn, id)
            .await
            .first()
            .map(|e| e.execution_arn().to_owned())
    })
    .await;
    eventually("the execution to finish", secs, || async {
        let d = sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .ok()?;
        (d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running)
            .then(|| (d.status().clone(), d.error().map(str::to_owned)))
    })
    .await
}

/// Invokes the worker through the Lambda Invoke API, as an operator (or EventBridge) would.
pub async fn invoke_worker(payload: Value) -> Value {
    let s = stack();
    let url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        s.get("LAMBDA_ENDPOINT_URL"),
        s.get("WORKER_FUNCTION")
    );
    http_json(reqwest::Method::POST, &url, Some(payload)).await
}

/// What the Slack fake has received (Web API calls and response_url posts), oldest first.
pub async fn slack_requests() -> Vec<Value> {
    let v = http_json(
        reqwest::Method::GET,
        &format!("{}/_testbed/requests", stack().get("SLACK_FAKE_URL")),
        None,
    )
    .await;
    v.as_array().cloned().unwrap_or_default()
}

/// A signed-to-be `/break-glass` modal submission (form body) by `user`.
pub fn submission(
    user: &str,
    view_id: &str,
    account: &str,
    ps: &str,
    duration: &str,
    reason: Option<&str>,
) -> Vec<u8> {
    submission_with_incident(user, view_id, account, ps, duration, reason, None)
}

/// [`submission`], with the form's PagerDuty incident field filled in (`Some`).
pub fn submission_with_incident(
    user: &str,
    view_id: &str,
    account: &str,
    ps: &str,
    duration: &str,
    reason: Option<&str>,
    incident: Option<&str>,
) -> Vec<u8> {
    let s = stack();
    let mut values = json!({
        "account": {"account": {"type": "external_select", "selected_option": {"value": account}}},
        "permission_set": {"permission_set": {"type": "external_select", "selected_option": {"value": ps}}},
        "duration": {"duration": {"type": "static_select", "selected_option": {"value": duration}}},
        "reason": {"reason": {"type": "plain_text_input", "value": reason}}
    });
    if incident.is_some() {
        values["incident"] = json!({"incident": {"type": "plain_text_input", "value": incident}});
    }
    let payload = json!({
        "type": "view_submission",
        "team": {"id": s.get("SLACK_TEAM_ID")}, "user": {"id": user}, "api_app_id": s.get("SLACK_API_APP_ID"),
        "view": {"id": view_id, "callback_id": "break_glass_request",
                 "private_metadata": "{\"channel_id\":\"C0INCIDENT1\"}",
                 "state": {"values": values}}
    });
    serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes()
}

/// `break-glass audit export` of today in `format` (`json` or `csv`), as an operator runs it.
pub fn audit_export_today(format: &str) -> String {
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let out = operator_cli()
        .args([
            "audit", "export", "--from", &today, "--to", &today, "--format", format,
        ])
        .env("TABLE_NAME", current().get("TABLE_NAME"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The modal's submission with several accounts chosen (its `multi_external_select`).
pub fn submission_of_accounts(
    user: &str,
    view_id: &str,
    accounts: &[&str],
    permission_set: &str,
    duration: &str,
) -> Vec<u8> {
    let s = stack();
    let chosen: Vec<Value> = accounts.iter().map(|a| json!({"value": a})).collect();
    let payload = json!({
        "type": "view_submission",
        "team": {"id": s.get("SLACK_TEAM_ID")}, "user": {"id": user}, "api_app_id": s.get("SLACK_API_APP_ID"),
        "view": {"id": view_id, "callback_id": "break_glass_request",
                 "private_metadata": "{\"channel_id\":\"C0INCIDENT1\"}",
                 "state": {"values": {
                     "account": {"account": {"type": "multi_external_select", "selected_options": chosen}},
                     "permission_set": {"permission_set": {"type": "external_select", "selected_option": {"value": permission_set}}},
                     "duration": {"duration": {"type": "static_select", "selected_option": {"value": duration}}},
                     "reason": {"reason": {"type": "plain_text_input", "value": "deploy broke app and network"}}
                 }}}
    });
    serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes()
}

/// The request id the webhook derives for `user`'s submission of `view_id`.
pub fn modal_request_id(user: &str, view_id: &str) -> String {
    break_glass::domain::RequestId::derive(&[stack().get("SLACK_TEAM_ID"), user, "modal", view_id])
        .to_string()
}

/// Whether `principal` holds `ps` on `account`.
pub async fn assigned_on(principal: &str, account: &str, ps: &str) -> bool {
    aws_sdk_ssoadmin::Client::new(&sdk().await)
        .list_account_assignments()
        .instance_arn(stack().get("SSO_INSTANCE_ARN"))
        .account_id(account)
        .permission_set_arn(ps)
        .send()
        .await
        .unwrap()
        .account_assignments()
        .iter()
        .any(|a| a.principal_id() == Some(principal))
}

/// Injects a fault into the test bed's AWS (see `testbed/motoext.py`).
pub async fn inject_fault(fault: Value) {
    http_json(
        reqwest::Method::POST,
        &format!("{}/_testbed/faults", stack().get("MOTO_URL")),
        Some(fault),
    )
    .await;
}

/// The test bed's fault rules and the faults met so far (`{"rules": [...], "hits": [...]}`).
pub async fn fault_hits() -> Value {
    http_json(
        reqwest::Method::GET,
        &format!("{}/_testbed/faults", stack().get("MOTO_URL")),
        None,
    )
    .await
}

/// A late grant in the making: waits until the grant of `id` is calling
/// `CreateAccountAssignment` (made slow by the test), then stops the execution and runs the
/// Revoke task by hand, as the state machine does after a Grant timeout, while the create is
/// still on its way.
pub async fn revoke_while_creating(id: &str) {
    eventually("the create call", 30, || async {
        audit_names(id)
            .await
            .contains(&"creating".to_owned())
            .then_some(())
    })
    .await;
    stop_execution(id).await;
    let out = invoke_worker(json!({"type": "revoke", "request_id": id})).await;
    assert!(out["revoked_at"].is_string(), "{out}");
}

/// Stops the request's execution by hand, as an operator might (the call returns while a
/// task of it may still be running).
pub async fn stop_execution(id: &str) {
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    sfn.stop_execution()
        .execution_arn(execution_of(&sfn, id).await)
        .send()
        .await
        .unwrap();
}

/// [`stop_execution`], then waits until Step Functions says it stopped (the emulator may
/// answer before its status moves): what a reconcile run that follows must see.
pub async fn stop_execution_and_wait(id: &str) {
    stop_execution(id).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    let execution = execution_of(&sfn, id).await;
    eventually("the execution to stop", 30, || async {
        let out = sfn
            .describe_execution()
            .execution_arn(&execution)
            .send()
            .await
            .unwrap();
        (out.status != aws_sdk_sfn::types::ExecutionStatus::Running).then_some(())
    })
    .await;
}

async fn execution_of(sfn: &aws_sdk_sfn::Client, id: &str) -> String {
    executions_named(sfn, id).await[0]
        .execution_arn()
        .to_owned()
}

/// The request's status in the table.
pub async fn status_of(id: &str) -> String {
    request_item(id).await.unwrap()["status"]
        .as_s()
        .unwrap()
        .clone()
}

/// Waits until the request is granted.
pub async fn wait_granted(id: &str) {
    eventually("the grant", 60, || async {
        (request_item(id).await?["status"].as_s().ok()? == "granted").then_some(())
    })
    .await;
}

/// The states the request's execution entered, in order (each one a state transition).
pub async fn states_entered(id: &str) -> Vec<String> {
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    let arn = executions_named(&sfn, id).await[0]
        .execution_arn()
        .to_owned();
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let out = sfn
            .get_execution_history()
            .execution_arn(&arn)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        for e in out.events() {
            if let Some(d) = e.state_entered_event_details() {
                names.push(d.name().to_owned());
            }
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            return names;
        }
    }
}

/// The request's `expires_at`.
pub async fn expires_of(id: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        request_item(id).await.unwrap()["expires_at"]
            .as_s()
            .unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// A new click (its own `action_ts`) on a lease button.
pub async fn press(user: &str, action: &str, request_id: &str) -> String {
    static CLICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = CLICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    press_click(user, action, request_id, &format!("1.{n}")).await
}

/// A click on a lease button as Slack delivers it (`action_ts` identifies the click).
pub async fn press_click(user: &str, action: &str, request_id: &str, action_ts: &str) -> String {
    let payload = json!({
        "type": "block_actions", "team": {"id": current().get("SLACK_TEAM_ID")}, "user": {"id": user},
        "api_app_id": current().get("SLACK_API_APP_ID"),
        "response_url": format!("{}/response/lease", current().get("SLACK_FAKE_URL")),
        "actions": [{"action_id": action, "block_id": "lease", "value": request_id, "type": "button", "action_ts": action_ts}]
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let (status, reply) = post_signed(body.as_bytes()).await;
    assert_eq!(status, 200, "{reply}");
    serde_json::from_str::<Value>(&reply).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The (action_id, value) of the buttons of a message or view (its `blocks`).
pub fn buttons(message: &Value) -> Vec<(String, String)> {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["action_id"].as_str().unwrap_or_default().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The operator's CLI (this crate's binary), with AWS pointed at the local stack as an
/// operator's credentials would be (and nothing of the developer's `~/.aws`).
pub fn operator_cli() -> Command {
    let s = current();
    let mut cli = Command::new(env!("CARGO_BIN_EXE_break-glass"));
    cli.env("AWS_ENDPOINT_URL", s.get("AWS_ENDPOINT_URL"))
        .env("AWS_REGION", s.get("AWS_REGION"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    cli
}
