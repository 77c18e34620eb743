//! The Slack endpoint: interactivity (button clicks, the modal) and the `/break-glass` slash
//! command share one URL.
//!
//! Order matters: size check, then the signature over the raw bytes, before anything else
//! looks at the body. A refused signature is a bare 401, logs nothing replayable and starts
//! nothing. Then the workspace, the payload, who the user is, and the policy. An allowed
//! request is recorded with a conditional write and starts the execution named by the request
//! id, so however often one click arrives it starts one execution. Every decision, allowed or
//! denied, is appended to the request's audit trail.

use std::collections::BTreeSet;

use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::aws::sfn::{Executions, Started};
use crate::aws::sso::PermissionSetNames;
use crate::aws::store::{Audit, Created, RequestRecord, Status, Store};
use crate::domain::{AccountId, Duration, PermissionSetArn, RequestId};
use crate::identity::{Directory, IdentityError, Person};
use crate::policy::{Decision, Grant, Policy, Subject, Target};
use crate::slack::payload::{
    Click, Command, Interaction, LeaseClick, Origin, Submission, parse_form,
};
use crate::slack::{self, signature};

/// Slack never sends more; anything larger is refused before it is read further.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Durations the modal offers (those up to the user's maximum).
const DURATION_CHOICES: &[u64] = &[900, 1800, 3600, 7200, 14400, 28800, 43200];

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
    fn json(v: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(v.to_string()),
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
    /// A verified request from our workspace to act on.
    Proceed(Box<Interaction>),
}

/// Settings the webhook needs besides its clients.
#[derive(Debug, Clone)]
pub struct Settings {
    pub signing_secrets: Vec<String>,
    pub team_id: Option<String>,
    pub api_app_id: Option<String>,
    pub cloudtrail_delay: Duration,
    pub lease_poll: Duration,
}

pub struct Webhook {
    pub settings: Settings,
    pub policy: Policy,
    pub store: Store,
    pub executions: Executions,
    pub directory: Directory,
    pub names: PermissionSetNames,
}

/// A request that passed identity and policy, ready to record.
struct Approved {
    id: RequestId,
    person: Person,
    account: AccountId,
    permission_set: PermissionSetArn,
    permission_set_name: Option<String>,
    grant: Grant,
    duration: Duration,
    reason: Option<String>,
}

/// Why a request was refused, and which modal field to show it on.
struct Refusal {
    field: &'static str,
    message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        field,
        message: message.into(),
    }
}

impl Webhook {
    /// Handles one request end to end.
    pub async fn handle(&self, method: &Method, headers: &HeaderMap, body: &[u8]) -> Reply {
        let now = OffsetDateTime::now_utc();
        let interaction = match screen(&self.settings, method, headers, body, now.unix_timestamp())
        {
            Screened::Done(reply) => return reply,
            Screened::Proceed(i) => *i,
        };
        match interaction {
            Interaction::BreakGlass(click) => self.click(click, now).await,
            Interaction::Command(cmd) => self.open_modal(cmd).await,
            Interaction::Submission(sub) => self.submit(sub, now).await,
            Interaction::Lease(l) => self.lease(l, now).await,
            Interaction::Ignored { .. } => Reply::bare(StatusCode::OK),
        }
    }

    async fn click(&self, click: Click, now: OffsetDateTime) -> Reply {
        let id = request_id(&click);
        let origin = Origin {
            team_id: click.team_id.clone(),
            api_app_id: click.api_app_id.clone(),
            user_id: click.user_id.clone(),
        };
        let approved = self
            .approve(
                &id,
                &origin,
                &click.account_id,
                &click.permission_set_arn,
                None,
                None,
            )
            .await;
        match approved {
            Ok(a) => {
                self.start(a, &origin, click.channel_id, click.response_url, now)
                    .await
            }
            Err(r) => {
                self.audit_denied(&id, &origin.user_id, &r.message).await;
                Reply::ephemeral(&format!(
                    "Break glass refused: {}.",
                    slack::escape(&r.message)
                ))
            }
        }
    }

    /// Identity, then policy, then the request's own terms (duration, reason).
    async fn approve(
        &self,
        id: &RequestId,
        origin: &Origin,
        account: &AccountId,
        permission_set: &PermissionSetArn,
        duration: Option<Duration>,
        reason: Option<String>,
    ) -> Result<Approved, Refusal> {
        if !self.policy.may_cover(&origin.user_id) {
            return Err(refuse("account", "no policy rule covers you"));
        }
        let person = self
            .directory
            .resolve(&self.policy, &origin.user_id)
            .await
            .map_err(|e| match e {
                IdentityError::Refused(why) => refuse("account", why),
                IdentityError::Unavailable(why) => {
                    tracing::error!(error = %why, "identity lookup failed");
                    refuse(
                        "account",
                        "could not look you up right now; try again in a moment",
                    )
                }
            })?;
        // Only rules that name permission sets by name need the name now (one Identity Center
        // call); otherwise the worker looks it up at grant, off the click's critical path.
        let permission_set_name = if self.policy.uses_permission_set_names() {
            match self.names.name_of(permission_set).await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::error!(error = %e, "permission set lookup failed");
                    return Err(refuse("permission_set", "unknown permission set"));
                }
            }
        } else {
            None
        };
        let subject = Subject {
            slack_user: &origin.user_id,
            sso_groups: &person.groups,
        };
        let target = Target {
            account,
            permission_set,
            permission_set_name: permission_set_name.as_deref(),
        };
        let grant = match self.policy.decide(&subject, &target) {
            Decision::Allow(g) => g,
            Decision::Deny(why) => return Err(refuse("permission_set", why)),
        };
        let duration = duration.unwrap_or(grant.duration);
        if duration > grant.max_duration {
            return Err(refuse(
                "duration",
                format!("longer than the {} this access allows", grant.max_duration),
            ));
        }
        if grant.reason_required && reason.is_none() {
            return Err(refuse(
                "reason",
                "this access needs a reason: use /break-glass to give one",
            ));
        }
        Ok(Approved {
            id: id.clone(),
            person,
            account: account.clone(),
            permission_set: permission_set.clone(),
            permission_set_name,
            grant,
            duration,
            reason,
        })
    }

    async fn audit_denied(&self, id: &RequestId, actor: &str, why: &str) {
        tracing::info!(request = %id, user = actor, reason = why, "denied");
        if let Err(e) = self
            .store
            .audit_denied(id, actor, format!("denied: {why}"))
            .await
        {
            tracing::error!(request = %id, error = %e, "could not audit a refusal");
        }
    }

    /// Records the request and starts its execution; the reply for the requester.
    async fn start(
        &self,
        a: Approved,
        origin: &Origin,
        channel_id: Option<String>,
        response_url: Option<String>,
        now: OffsetDateTime,
    ) -> Reply {
        let id = a.id.clone();
        let record = RequestRecord {
            id: id.clone(),
            status: Status::Requested,
            version: 1,
            team_id: origin.team_id.clone(),
            slack_user_id: origin.user_id.clone(),
            sso_user_name: a.person.sso_user_name.clone(),
            account_id: a.account.clone(),
            permission_set_arn: a.permission_set.clone(),
            duration: a.duration,
            rule: a.grant.rule.clone(),
            reason: a.reason.clone(),
            max_duration: a.grant.max_duration,
            channel_id,
            response_url,
            notify_channel: a.grant.notify_channel.clone(),
            thread_ts: None,
            permission_set_name: a.permission_set_name.clone(),
            requested_at: now,
            principal_id: a.person.principal_id.clone(),
            preexisting: false,
            shared: false,
            ended_by: None,
            creation_request_id: None,
            granted_at: None,
            expires_at: None,
            revoked_at: None,
            reported_at: None,
            end_sessions: a.grant.end_sessions,
            sessions_denied_until: None,
            sessions_lifted_at: None,
        };
        let audit = Audit {
            event: "requested",
            actor: &origin.user_id,
            detail: format!(
                "allowed by rule {:?}: {} ({}) on {} for {}{}",
                a.grant.rule,
                a.permission_set_name.as_deref().unwrap_or("?"),
                a.permission_set,
                a.account,
                a.duration,
                a.reason
                    .as_deref()
                    .map(|r| format!("; reason: {r}"))
                    .unwrap_or_default()
            ),
        };
        match self.store.create(&record, audit).await {
            Ok(Created::New(_)) => {
                tracing::info!(request = %id, user = %origin.user_id, account = %a.account, "request recorded")
            }
            Ok(Created::Existing(r)) => {
                tracing::info!(request = %id, status = r.status.as_str(), "repeated request")
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
            "lease_poll_seconds": self.settings.lease_poll.as_secs(),
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

    /// `/break-glass`: a modal offering only what the policy allows this user.
    async fn open_modal(&self, cmd: Command) -> Reply {
        let refused =
            |why: &str| Reply::ephemeral(&format!("Break glass refused: {}.", slack::escape(why)));
        if !self.policy.may_cover(&cmd.origin.user_id) {
            return refused("no policy rule covers you");
        }
        let person = match self
            .directory
            .resolve(&self.policy, &cmd.origin.user_id)
            .await
        {
            Ok(p) => p,
            Err(IdentityError::Refused(why)) => return refused(&why),
            Err(IdentityError::Unavailable(why)) => {
                tracing::error!(error = %why, "identity lookup failed");
                return refused("could not look you up right now; try again in a moment");
            }
        };
        let options = self.policy.options(&Subject {
            slack_user: &cmd.origin.user_id,
            sso_groups: &person.groups,
        });
        if options.is_empty() {
            return refused("no policy rule names an account and permission set you may choose");
        }
        let mut labels = Vec::with_capacity(options.len());
        for (_, ps, _) in &options {
            let label = match PermissionSetArn::parse(ps) {
                Ok(arn) => self
                    .names
                    .name_of(&arn)
                    .await
                    .unwrap_or_else(|_| ps.clone()),
                Err(_) => ps.clone(),
            };
            labels.push(label);
        }
        let view = modal(&self.policy, &options, &labels, cmd.channel_id.as_deref());
        match self.directory.slack.open_view(&cmd.trigger_id, &view).await {
            Ok(()) => Reply::bare(StatusCode::OK),
            Err(e) => {
                tracing::error!(error = %e, "views.open failed");
                Reply::ephemeral("Could not open the break-glass form; try again.")
            }
        }
    }

    /// The modal's submission: every value checked again; errors shown in the modal.
    async fn submit(&self, sub: Submission, now: OffsetDateTime) -> Reply {
        let id = RequestId::derive(&[
            &sub.origin.team_id,
            &sub.origin.user_id,
            "modal",
            &sub.view_id,
        ]);
        let errors = |r: Refusal| {
            Reply::json(json!({"response_action": "errors", "errors": {r.field: r.message}}))
        };
        let Some(account) = sub
            .account
            .as_deref()
            .and_then(|a| AccountId::parse(a).ok())
        else {
            return errors(refuse("account", "choose an account"));
        };
        let permission_set = match sub.permission_set.as_deref() {
            Some(p) if p.starts_with("arn:") => PermissionSetArn::parse(p).ok(),
            Some(name) => self.names.arn_of(name).await.ok(),
            None => None,
        };
        let Some(permission_set) = permission_set else {
            return errors(refuse("permission_set", "choose a permission set"));
        };
        let Some(duration) = sub
            .duration
            .as_deref()
            .and_then(|d| Duration::parse(d).ok())
        else {
            return errors(refuse("duration", "choose a duration"));
        };
        let reason = sub
            .reason
            .map(|r| crate::domain::truncate(r.trim(), 500).to_owned());
        match self
            .approve(
                &id,
                &sub.origin,
                &account,
                &permission_set,
                Some(duration),
                reason,
            )
            .await
        {
            Ok(a) => {
                let channel = modal_channel(&sub.private_metadata);
                let reply = self.start(a, &sub.origin, channel, None, now).await;
                // The modal closes; the requester hears back in a direct message.
                let text = reply
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                    .and_then(|v| v["text"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| slack::ACCESS_INCOMING.to_owned());
                if let Err(e) = self
                    .directory
                    .slack
                    .post_message(&sub.origin.user_id, &json!({"text": text}), None)
                    .await
                {
                    tracing::warn!(error = %e, "could not tell the requester");
                }
                Reply::json(json!({"response_action": "clear"}))
            }
            Err(r) => {
                self.audit_denied(&id, &sub.origin.user_id, &r.message)
                    .await;
                errors(r)
            }
        }
    }

    /// **End access now** and **Extend**: only the requester or a responder; a fenced write
    /// moves `expires_at`, and the Hold loop acts on it at its next look.
    async fn lease(&self, l: LeaseClick, now: OffsetDateTime) -> Reply {
        let Ok(id) = RequestId::parse(&l.request_id) else {
            return Reply::ephemeral("This button does not name a break-glass request.");
        };
        let rec = match self.store.get(&id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Reply::ephemeral("This break-glass request does not exist."),
            Err(e) => {
                tracing::error!(request = %id, error = %e, "could not read the request");
                return Reply::ephemeral("Could not read the request; try again in a moment.");
            }
        };
        let user = l.origin.user_id.as_str();
        if rec.slack_user_id != user && !self.policy.responders.contains(user) {
            tracing::warn!(request = %id, user, "refused a lease button from someone else");
            return Reply::ephemeral(
                "Only the requester or a responder can end or extend this access.",
            );
        }
        let (Status::Granted, Some(granted_at), Some(expires_at)) =
            (rec.status, rec.granted_at, rec.expires_at)
        else {
            return Reply::ephemeral(&format!(
                "This access is not active (it is {}).",
                rec.status.as_str()
            ));
        };
        let (changes, audit, answer) = if l.extend {
            let Some(until) =
                extended_until(granted_at, expires_at, now, rec.duration, rec.max_duration)
            else {
                return Reply::ephemeral(&format!(
                    "This access is already at its maximum of {}.",
                    rec.max_duration
                ));
            };
            (
                vec![("expires_at", crate::aws::store::ts(until))],
                Audit {
                    event: "extended",
                    actor: user,
                    detail: format!("until {}", crate::time_util::rfc3339(until)),
                },
                format!(
                    "Extended until <!date^{}^{{time}}|{}>.",
                    until.unix_timestamp(),
                    crate::time_util::hhmm(until)
                ),
            )
        } else {
            (
                vec![
                    ("expires_at", crate::aws::store::ts(now)),
                    ("ended_by", crate::aws::store::s(user)),
                ],
                Audit {
                    event: "ended_early",
                    actor: user,
                    detail: format!("End access now pressed by {user}"),
                },
                "Access is being removed; the report follows.".to_owned(),
            )
        };
        match self
            .store
            .advance(&rec, Status::Granted, changes, audit)
            .await
        {
            Ok(_) => {
                tracing::info!(request = %id, user, extend = l.extend, "lease changed");
                Reply::ephemeral(&answer)
            }
            Err(crate::error::Error::StateConflict(_)) => Reply::ephemeral(
                "This access changed at the same moment; look at its latest state and try again.",
            ),
            Err(e) => {
                tracing::error!(request = %id, error = %e, "could not change the lease");
                Reply::ephemeral("Could not change the access; try again in a moment.")
            }
        }
    }
}

/// Where **Extend** moves a lease's end: by the request's duration from its end (or from now,
/// if it already passed), never past `max` after the grant. `None` when there is no room.
pub fn extended_until(
    granted_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
    step: Duration,
    max: Duration,
) -> Option<OffsetDateTime> {
    let cap = granted_at + time::Duration::seconds(max.as_secs() as i64);
    let until = (expires_at.max(now) + time::Duration::seconds(step.as_secs() as i64)).min(cap);
    (until > expires_at).then_some(until)
}

/// The channel the slash command was typed in, carried through the modal.
fn modal_channel(private_metadata: &str) -> Option<String> {
    serde_json::from_str::<Value>(private_metadata)
        .ok()
        .and_then(|v| v["channel_id"].as_str().map(str::to_owned))
}

/// The `/break-glass` modal: account, permission set, duration, reason.
pub fn modal(
    policy: &Policy,
    options: &[(AccountId, String, Grant)],
    labels: &[String],
    channel: Option<&str>,
) -> Value {
    let plain = |s: &str| json!({"type": "plain_text", "text": crate::domain::truncate(s, 75)});
    let option = |text: &str, value: &str| json!({"text": plain(text), "value": value});
    let accounts: BTreeSet<&AccountId> = options.iter().map(|(a, _, _)| a).collect();
    let account_options: Vec<Value> = accounts
        .iter()
        .take(100)
        .map(|a| match policy.account_name(a) {
            Some(n) => option(&format!("{n} ({a})"), a.as_str()),
            None => option(a.as_str(), a.as_str()),
        })
        .collect();
    let mut seen = BTreeSet::new();
    let ps_options: Vec<Value> = options
        .iter()
        .zip(labels)
        .filter(|((_, ps, _), _)| seen.insert(ps.clone()))
        .take(100)
        .map(|((_, ps, _), label)| option(label, ps))
        .collect();
    let longest = options
        .iter()
        .map(|(_, _, g)| g.max_duration)
        .max()
        .unwrap_or(Duration::from_secs(0));
    let mut durations: BTreeSet<u64> = DURATION_CHOICES
        .iter()
        .copied()
        .filter(|d| *d <= longest.as_secs())
        .collect();
    durations.extend(options.iter().map(|(_, _, g)| g.duration.as_secs()));
    let duration_options: Vec<Value> = durations
        .into_iter()
        .map(|d| {
            let d = Duration::from_secs(d).to_string();
            option(&d, &d)
        })
        .collect();
    let reason_required = options.iter().any(|(_, _, g)| g.reason_required);
    json!({
        "type": "modal",
        "callback_id": crate::slack::payload::MODAL_CALLBACK,
        "title": plain("Break glass"),
        "submit": plain("Break glass"),
        "close": plain("Cancel"),
        "private_metadata": json!({"channel_id": channel}).to_string(),
        "blocks": [
            {"type": "input", "block_id": "account", "label": plain("Account"),
             "element": {"type": "static_select", "action_id": "account", "options": account_options}},
            {"type": "input", "block_id": "permission_set", "label": plain("Permission set"),
             "element": {"type": "static_select", "action_id": "permission_set", "options": ps_options}},
            {"type": "input", "block_id": "duration", "label": plain("For how long"),
             "element": {"type": "static_select", "action_id": "duration", "options": duration_options}},
            {"type": "input", "block_id": "reason", "optional": !reason_required, "label": plain("Reason"),
             "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true, "max_length": 500}},
        ],
    })
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

/// The pure first stage: size, signature, form, payload, workspace. No I/O; with
/// [`Policy::decide`] this is the hot path the benchmarks measure.
pub fn screen(
    settings: &Settings,
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
    Screened::Proceed(Box::new(interaction))
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
            lease_poll: Duration::from_secs(60),
        }
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
        screen(&settings(), &Method::POST, headers, body, NOW)
    }

    fn status(s: Screened) -> StatusCode {
        match s {
            Screened::Done(r) => r.status,
            Screened::Proceed(_) => StatusCode::ACCEPTED,
        }
    }

    #[test]
    fn a_signed_click_proceeds() {
        let body = click("U0ALICE0001", "break_glass", "T0TESTTEAM");
        let Screened::Proceed(i) = run(&signed(&body, NOW), &body) else {
            panic!("expected to proceed")
        };
        let Interaction::BreakGlass(c) = *i else {
            panic!()
        };
        assert_eq!(c.user_id, "U0ALICE0001");
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
        let r = screen(&settings(), &Method::GET, &signed(&body, NOW), &body, NOW);
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
        assert!(matches!(run(&h, &body), Screened::Proceed(_)));
    }

    #[test]
    fn the_modal_offers_only_what_the_policy_allows() {
        let policy = Policy::parse(&format!(
            "version = 1\n[accounts]\n\"123456789012\" = \"production\"\n[[rule]]\nname = \"oncall\"\neffect = \"allow\"\nslack_users = [\"U0ALICE0001\"]\naccounts = [\"123456789012\"]\npermission_sets = [\"{PS}\"]\ndefault_duration = \"1h\"\nmax_duration = \"2h\"\nreason_required = true\n"
        ))
        .unwrap();
        let groups = BTreeSet::new();
        let options = policy.options(&Subject {
            slack_user: "U0ALICE0001",
            sso_groups: &groups,
        });
        let view = modal(
            &policy,
            &options,
            &["BreakGlassAdmin".to_owned()],
            Some("C1"),
        );
        let blocks = view["blocks"].as_array().unwrap();
        assert_eq!(
            blocks[0]["element"]["options"][0]["text"]["text"],
            "production (123456789012)"
        );
        assert_eq!(blocks[1]["element"]["options"][0]["value"], PS);
        assert_eq!(
            blocks[1]["element"]["options"][0]["text"]["text"],
            "BreakGlassAdmin"
        );
        let durations: Vec<&str> = blocks[2]["element"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            durations,
            ["15m", "30m", "1h", "2h"],
            "nothing longer than the maximum"
        );
        assert_eq!(blocks[3]["optional"], false, "the reason is required");
        assert_eq!(
            modal_channel(view["private_metadata"].as_str().unwrap()).as_deref(),
            Some("C1")
        );
    }
}
