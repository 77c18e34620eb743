//! Hardening on the local stack: a deploy is told about live leases a narrowed policy would
//! no longer allow, every refusal is its own expiring audit entry, and the requester's copy of
//! the report can never sink the security team's. Leases last an hour here.

mod common;

use aws_sdk_sfn::types::ExecutionStatus;
use common::*;
use serde_json::json;

fn s() -> &'static Stack {
    stack_with("1h")
}

fn modal_id(user: &str, view: &str) -> String {
    break_glass::domain::RequestId::derive(&[s().get("SLACK_TEAM_ID"), user, "modal", view])
        .to_string()
}

/// `break-glass leases check --policy FILE` with the operator's AWS credentials (here the
/// stack's), as `make deploy` runs it.
fn leases_check(policy: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_break-glass"))
        .args(["leases", "check", "--policy"])
        .arg(policy)
        .env("TABLE_NAME", s().get("TABLE_NAME"))
        .env("AWS_ENDPOINT_URL", s().get("AWS_ENDPOINT_URL"))
        .env("AWS_REGION", s().get("AWS_REGION"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("SSO_INSTANCE_ARN", s().get("SSO_INSTANCE_ARN"))
        .env("IDENTITY_STORE_ID", s().get("IDENTITY_STORE_ID"))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A live lease outside a narrowed policy (its account removed from the rule), and one whose
/// rule would no longer end sessions, are named before the deploy; the deployed policy names
/// none.
#[tokio::test]
async fn a_deploy_is_told_about_live_leases_outside_the_new_policy() {
    let user = s().get("EXAMPLE_SLACK_USER_ID");
    let body = seed_click(
        user,
        "1700000801.000100",
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let oncall = request_id_of(&body);
    post_signed(&body).await;
    let dave = s().get("GROUP_SLACK_USER_ID");
    let body = submission(
        dave,
        "V-narrow",
        s().get("EXAMPLE_ACCOUNT_ID"),
        "ReadOnly",
        "1h",
        Some("incident 7"),
    );
    post_signed(&body).await;
    let readonly = modal_id(dave, "V-narrow");
    wait_granted(&oncall).await;
    wait_granted(&readonly).await;

    let deployed = std::path::PathBuf::from(s().get("POLICY_FILE"));
    let (ok, out) = leases_check(&deployed);
    assert!(ok, "{out}");
    assert!(out.contains("is allowed by this policy"), "{out}");

    let account = format!("accounts = [\"{}\"]", s().get("EXAMPLE_ACCOUNT_ID"));
    let narrowed_text = std::fs::read_to_string(&deployed)
        .unwrap()
        .replacen(&account, "accounts = [\"999999999999\"]", 1)
        .replace("end_sessions = true", "end_sessions = false");
    let narrowed = deployed.with_file_name("narrowed.toml");
    std::fs::write(&narrowed, narrowed_text).unwrap();
    let (ok, out) = leases_check(&narrowed);
    assert!(ok, "{out}");
    let line = |id: &str| {
        out.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not named: {out}"))
            .to_owned()
    };
    assert!(
        line(&oncall).contains(s().get("EXAMPLE_ACCOUNT_ID")),
        "{out}"
    );
    assert!(line(&readonly).contains("ends live sessions"), "{out}");

    for id in [&oncall, &readonly] {
        press(if *id == oncall { user } else { dave }, "end_access", id).await;
        assert_eq!(finished(id, 90).await.0, ExecutionStatus::Succeeded);
    }
}

/// Every refused submission is its own audit entry (who, why, when), even of one modal, and
/// each expires through the table's TTL.
#[tokio::test]
async fn every_refusal_is_its_own_expiring_audit_entry() {
    // Dave's rules allow ReadOnly only.
    let dave = s().get("GROUP_SLACK_USER_ID");
    let body = submission(
        dave,
        "V-refused",
        s().get("EXAMPLE_ACCOUNT_ID"),
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
        "1h",
        Some("let me in"),
    );
    for _ in 0..2 {
        let (status, reply) = post_signed(&body).await;
        assert_eq!(status, 200);
        assert!(reply.contains("\"errors\""), "{reply}");
    }
    let id = modal_id(dave, "V-refused");
    let store = break_glass::aws::store::Store::new(
        aws_sdk_dynamodb::Client::new(&sdk().await),
        s().get("TABLE_NAME"),
    );
    let trail = store
        .audit_trail(&break_glass::domain::RequestId::parse(&id).unwrap())
        .await
        .unwrap();
    assert_eq!(trail.len(), 2, "{trail:?}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for entry in &trail {
        assert_eq!(entry["event"].as_s().unwrap(), "denied");
        assert_eq!(entry["actor"].as_s().unwrap(), dave);
        let ttl: i64 = entry["expires_ttl"].as_n().unwrap().parse().unwrap();
        assert!(ttl > now + 300 * 86_400, "kept about 400 days: {ttl}");
    }
}

/// The requester's copy of the report failing for good (SES rejects it) leaves the security
/// team's copy and the cycle untouched.
#[tokio::test]
async fn the_requesters_copy_cannot_sink_the_security_teams() {
    let (user, sso) = (
        s().get("EMAIL_SLACK_USER_ID"),
        s().get("EMAIL_SSO_USER_NAME"),
    );
    let to_requester = format!("member.1={}", sso.replace('@', "%40"));
    for operation in ["SendEmail", "SendRawEmail"] {
        inject_fault(json!({"operation": operation, "times": 100, "status": 400,
                            "code": "MessageRejected", "match": to_requester}))
        .await;
    }
    let body = seed_click(
        user,
        "1700000803.000100",
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let id = request_id_of(&body);
    post_signed(&body).await;
    wait_granted(&id).await;
    press(user, "end_access", &id).await;
    assert_eq!(finished(&id, 90).await.0, ExecutionStatus::Succeeded);

    let sent = http_json(
        reqwest::Method::GET,
        &format!("{}/_testbed/ses/messages", s().get("MOTO_URL")),
        None,
    )
    .await;
    let to_team: Vec<_> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.to_string().contains(&id))
        .collect();
    assert_eq!(to_team.len(), 1, "one copy went out: {to_team:?}");
    assert!(
        to_team[0]["destinations"]
            .to_string()
            .contains("security@example.com")
            && !to_team[0]["destinations"].to_string().contains(sso),
        "{}",
        to_team[0]
    );
    let reported = audit_details(&id)
        .await
        .into_iter()
        .find(|(e, _)| e == "reported")
        .unwrap()
        .1;
    assert!(
        reported.contains("the requester's copy failed"),
        "{reported}"
    );
}
