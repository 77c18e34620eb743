//! The Slack interactivity endpoint.
//!
//! Order matters: size check, then the signature over the raw bytes, before anything else
//! looks at the body. A refused signature is a bare 401, logs nothing replayable and starts
//! nothing. An allowed click is recorded with a conditional write and starts the execution
//! named by the request id, so however often one click arrives it starts one execution.

use http::{HeaderMap, Method, StatusCode};
use serde_json::json;
use time::OffsetDateTime;

use crate::aws::sfn::{Executions, Started};
use crate::aws::store::{Audit, Created, RequestRecord, Status, Store};
use crate::domain::{Duration, RequestId};
use crate::policy::{Decision, Grant, Policy};
use crate::slack::payload::{Click, Interaction, parse_form};
use crate::slack::{self, signature};

/// Slack never sends more; anything larger is refused before it is read further.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An HTTP answer: status, and a JSON body (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<String>,
}

impl Reply {
    fn bare(status: StatusCode) -> Self {
        Self { status, body: None }
    }
    fn ephemeral(text: &str) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(slack::ephemeral(text)),
        }
    }
    fn error(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            body: Some(json!({ "error": message }).to_string()),
        }
    }
}

/// What the pure first stage decided.
#[derive(Debug)]
pub enum Screened {
    /// Answer now; nothing else happens.
    Done(Reply),
    /// An allowed click: record it and start the execution.
    Allowed(Box<(Click, Grant)>),
}

/// Settings the webhook needs besides its clients.
#[derive(Debug, Clone)]
pub struct Settings {
    pub signing_secrets: Vec<String>,
    pub team_id: Option<String>,
    pub api_app_id: Option<String>,
    pub cloudtrail_delay: Duration,
}

pub struct Webhook {
    pub settings: Settings,
    pub policy: Policy,
    pub store: Store,
    pub executions: Executions,
}

impl Webhook {
    /// Handles one request end to end.
    pub async fn handle(&self, method: &Method, headers: &HeaderMap, body: &[u8]) -> Reply {
        let now = OffsetDateTime::now_utc();
        match screen(
            &self.settings,
            &self.policy,
            method,
            headers,
            body,
            now.unix_timestamp(),
        ) {
            Screened::Done(reply) => reply,
            Screened::Allowed(allowed) => self.start(allowed.0, allowed.1, now).await,
        }
    }

    async fn start(&self, click: Click, grant: Grant, now: OffsetDateTime) -> Reply {
        let id = request_id(&click);
        let record = RequestRecord {
            id: id.clone(),
            status: Status::Requested,
            version: 1,
            team_id: click.team_id.clone(),
            slack_user_id: click.user_id.clone(),
            sso_user_name: grant.sso_user_name.clone(),
            account_id: click.account_id.clone(),
            permission_set_arn: click.permission_set_arn.clone(),
            duration: grant.duration,
            rule: grant.rule.clone(),
            channel_id: click.channel_id.clone(),
            response_url: click.response_url.clone(),
            requested_at: now,
            principal_id: None,
            preexisting: false,
            creation_request_id: None,
            granted_at: None,
            expires_at: None,
            revoked_at: None,
            reported_at: None,
        };
        let audit = Audit {
            event: "requested",
            actor: &click.user_id,
            detail: format!(
                "allowed by rule {:?}: {} on {} for {}",
                grant.rule, click.permission_set_arn, click.account_id, grant.duration
            ),
        };
        match self.store.create(&record, audit).await {
            Ok(Created::New(_)) => {
                tracing::info!(request = %id, user = %click.user_id, account = %click.account_id, "request recorded")
            }
            Ok(Created::Existing(r)) => {
                tracing::info!(request = %id, status = r.status.as_str(), "repeated click")
            }
            Err(e) => {
                tracing::error!(request = %id, error = %e, "could not record the request");
                return Reply::ephemeral(
                    "Break glass failed to start: could not record the request. Try again in a moment.",
                );
            }
        }
        // The input is a pure function of the request, so a repeated StartExecution with the
        // same name is idempotent while the first execution runs.
        let input = json!({
            "request_id": id.as_str(),
            "cloudtrail_delay_seconds": self.settings.cloudtrail_delay.as_secs(),
        });
        match self.executions.start(&id, &input).await {
            Ok(Started::Running(arn)) => {
                tracing::info!(request = %id, execution = %arn, "execution running");
                Reply::ephemeral(slack::ACCESS_INCOMING)
            }
            Ok(Started::AlreadyFinished) => Reply::ephemeral(&format!(
                "This button was already used for request `{id}`, which has finished. Ask for a new Break Glass message."
            )),
            Err(e) => {
                tracing::error!(request = %id, error = %e, "could not start the execution");
                Reply::ephemeral("Break glass failed to start. Try again in a moment.")
            }
        }
    }
}

/// One click, one id: the same click delivered again (or double-clicked) maps to the same
/// request. The account and permission set are part of it, so a different button in the
/// same message is a different request.
pub fn request_id(c: &Click) -> RequestId {
    RequestId::derive(&[
        &c.team_id,
        &c.user_id,
        c.channel_id.as_deref().unwrap_or(""),
        c.message_ts.as_deref().unwrap_or(&c.action_ts),
        c.account_id.as_str(),
        c.permission_set_arn.as_str(),
    ])
}

/// The pure first stage: verify, parse, check workspace and policy. No I/O; this is the hot
/// path the benchmarks measure.
pub fn screen(
    settings: &Settings,
    policy: &Policy,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Screened {
    use Screened::Done;
    if method != Method::POST {
        return Done(Reply::bare(StatusCode::METHOD_NOT_ALLOWED));
    }
    if body.len() > MAX_BODY_BYTES {
        return Done(Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body larger than 256 KiB",
        ));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(why) = signature::verify(
        &settings.signing_secrets,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        body,
        now_unix,
    ) {
        // Nothing from the request is logged: it could be replayed.
        tracing::warn!(reason = %why, "refused an unsigned or badly signed request");
        return Done(Reply::bare(StatusCode::UNAUTHORIZED));
    }
    let form = header("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Done(Reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/x-www-form-urlencoded",
        ));
    }
    let interaction = match parse_form(body) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "bad interactivity payload");
            return Done(Reply::error(StatusCode::BAD_REQUEST, &e.to_string()));
        }
    };
    let (team, app) = interaction.team_and_app();
    let foreign_team = settings.team_id.as_deref().is_some_and(|t| t != team);
    let foreign_app =
        matches!((settings.api_app_id.as_deref(), app), (Some(want), Some(got)) if want != got);
    if foreign_team || foreign_app {
        tracing::warn!(
            foreign_team,
            foreign_app,
            "request from another workspace or app"
        );
        return Done(Reply::bare(StatusCode::FORBIDDEN));
    }
    let click = match interaction {
        Interaction::Ignored { .. } => return Done(Reply::bare(StatusCode::OK)),
        Interaction::BreakGlass(c) => c,
    };
    match policy.decide(&click.user_id, &click.account_id, &click.permission_set_arn) {
        Decision::Allow(grant) => Screened::Allowed(Box::new((click, grant))),
        Decision::Deny(why) => {
            tracing::info!(user = %click.user_id, account = %click.account_id, reason = %why, "denied");
            Done(Reply::ephemeral(&format!(
                "Break glass refused: {}.",
                slack::escape(&why)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::signature::sign;

    const SECRET: &str = "test-signing-secret-0123456789";
    const PS: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";

    fn settings() -> Settings {
        Settings {
            signing_secrets: vec![SECRET.into()],
            team_id: Some("T0TESTTEAM".into()),
            api_app_id: Some("A0TESTAPP1".into()),
            cloudtrail_delay: Duration::from_secs(900),
        }
    }

    fn policy() -> Policy {
        Policy::parse(&format!(
            "version = 1\n[users]\nU0ALICE0001 = \"alice@example.com\"\n[[rule]]\nname = \"oncall\"\neffect = \"allow\"\nslack_users = [\"U0ALICE0001\"]\naccounts = [\"123456789012\"]\npermission_sets = [\"{PS}\"]\ndefault_duration = \"1h\"\nmax_duration = \"2h\"\n"
        ))
        .unwrap()
    }

    fn click(user: &str, name: &str, team: &str) -> Vec<u8> {
        let payload = json!({
            "type": "interactive_message",
            "actions": [{"name": name, "type": "button", "value": PS}],
            "callback_id": "deployment_123456789012_abc",
            "team": {"id": team}, "user": {"id": user}, "channel": {"id": "C1"},
            "action_ts": "1.1", "message_ts": "1.0", "api_app_id": "A0TESTAPP1",
        });
        serde_urlencoded::to_string([("payload", payload.to_string())])
            .unwrap()
            .into_bytes()
    }

    fn signed(body: &[u8], ts: i64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "Content-Type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        h.insert("X-Slack-Request-Timestamp", ts.to_string().parse().unwrap());
        h.insert(
            "X-Slack-Signature",
            sign(SECRET.as_bytes(), &ts.to_string(), body)
                .parse()
                .unwrap(),
        );
        h
    }

    const NOW: i64 = 1_800_000_000;

    fn run(headers: &HeaderMap, body: &[u8]) -> Screened {
        screen(&settings(), &policy(), &Method::POST, headers, body, NOW)
    }

    fn status(s: Screened) -> StatusCode {
        match s {
            Screened::Done(r) => r.status,
            Screened::Allowed(..) => StatusCode::ACCEPTED,
        }
    }

    #[test]
    fn an_allowed_signed_click_proceeds() {
        let body = click("U0ALICE0001", "break_glass", "T0TESTTEAM");
        let Screened::Allowed(allowed) = run(&signed(&body, NOW), &body) else {
            panic!("expected allowed")
        };
        let (c, g) = *allowed;
        assert_eq!(g.sso_user_name, "alice@example.com");
        assert_eq!(request_id(&c), request_id(&c.clone()));
    }

    #[test]
    fn refusals() {
        let body = click("U0ALICE0001", "break_glass", "T0TESTTEAM");
        assert_eq!(
            status(run(&signed(&body, NOW - 301), &body)),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(run(&signed(&body, NOW + 301), &body)),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(run(&HeaderMap::new(), &body)),
            StatusCode::UNAUTHORIZED
        );
        let other = click("U0ALICE0001", "break_glass", "T0OTHER");
        assert_eq!(
            status(run(&signed(&body, NOW), &other)),
            StatusCode::UNAUTHORIZED,
            "tampered"
        );
        assert_eq!(
            status(run(&signed(&other, NOW), &other)),
            StatusCode::FORBIDDEN,
            "foreign team"
        );
        let big = vec![b'a'; MAX_BODY_BYTES + 1];
        assert_eq!(
            status(run(&signed(&big, NOW), &big)),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let junk = b"payload=%7B".to_vec();
        assert_eq!(
            status(run(&signed(&junk, NOW), &junk)),
            StatusCode::BAD_REQUEST
        );
        let mut json_ct = signed(&body, NOW);
        json_ct.insert("content-type", "application/json".parse().unwrap());
        assert_eq!(
            status(run(&json_ct, &body)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let r = screen(
            &settings(),
            &policy(),
            &Method::GET,
            &signed(&body, NOW),
            &body,
            NOW,
        );
        assert_eq!(status(r), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn header_names_are_case_insensitive() {
        // http::HeaderMap normalises names; this pins that we rely on it for any casing.
        let body = click("U0ALICE0001", "break_glass", "T0TESTTEAM");
        let mut h = HeaderMap::new();
        let ts = NOW.to_string();
        h.insert(
            http::HeaderName::from_bytes(b"X-SLACK-REQUEST-TIMESTAMP").unwrap(),
            ts.parse().unwrap(),
        );
        h.insert(
            http::HeaderName::from_bytes(b"x-Slack-Signature").unwrap(),
            sign(SECRET.as_bytes(), &ts, &body).parse().unwrap(),
        );
        h.insert(
            "CONTENT-TYPE",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        assert!(matches!(run(&h, &body), Screened::Allowed(..)));
    }

    #[test]
    fn denied_and_ignored_clicks_answer_without_starting() {
        let body = click("U0MALLORY1", "break_glass", "T0TESTTEAM");
        let Screened::Done(r) = run(&signed(&body, NOW), &body) else {
            panic!()
        };
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.unwrap().contains("Break glass refused"));
        let retry = click("U0ALICE0001", "retry", "T0TESTTEAM");
        assert_eq!(
            run(&signed(&retry, NOW), &retry).status_for_test(),
            (StatusCode::OK, None)
        );
    }

    impl Screened {
        fn status_for_test(self) -> (StatusCode, Option<String>) {
            match self {
                Screened::Done(r) => (r.status, r.body),
                Screened::Allowed(..) => (StatusCode::ACCEPTED, None),
            }
        }
    }
}
