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
use crate::aws::store::{Audit, Button, Created, RequestRecord, Status, Store};
use crate::domain::{AccountId, Duration, PermissionSetArn, RequestId};
use crate::identity::{Directory, IdentityError, Person};
use crate::policy::{Decision, Grant, Policy, Subject, Target};
use crate::roles::hold::LeaseState;
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
}

pub struct Webhook {
    pub settings: Settings,
    pub policy: Policy,
    pub store: Store,
    pub executions: Executions,
    pub directory: Directory,
    pub names: PermissionSetNames,
    /// How long a refusal's audit entry is kept.
    pub refusal_retention: Duration,
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

    /// A Break Glass click. The button is reusable: while the same person's request from it
    /// is live, a click answers with that request; once its access has ended, a click
    /// starts a new request (checked against the policy again). The same click delivered
    /// twice maps to one request and one execution.
    async fn click(&self, click: Click, now: OffsetDateTime) -> Reply {
        let id = request_id(&click);
        let origin = Origin {
            team_id: click.team_id.clone(),
            api_app_id: click.api_app_id.clone(),
            user_id: click.user_id.clone(),
        };
        let button = match self.store.button(&button_key(&click)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(request = %id, error = %e, "could not read the button");
                return Reply::ephemeral(
                    "Could not read this button's state; try again in a moment.",
                );
            }
        };
        if let Some(prev) = &button.request_id
            && let Some(reply) = self.while_live(prev, &id, now).await
        {
            return reply;
        }
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
                self.start(
                    a,
                    &origin,
                    click.channel_id,
                    click.response_url,
                    now,
                    Some(&button),
                )
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

    /// The answer to a click while the button's last request (`prev`) is still live; `None`
    /// when it is over (or unreadable: the conditional write decides then).
    async fn while_live(
        &self,
        prev: &RequestId,
        clicked: &RequestId,
        now: OffsetDateTime,
    ) -> Option<Reply> {
        let rec = match self.store.get(prev).await {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(request = %prev, error = %e, "could not read the button's last request");
                return None;
            }
        };
        if !live(&rec, now) {
            return None;
        }
        if rec.status == Status::Requested {
            // Recorded, but its execution may have failed to start: start it (idempotent).
            return Some(self.run(prev).await);
        }
        Some(Reply::ephemeral(&already(&rec, prev == clicked)))
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
            .audit_denied(
                id,
                actor,
                format!("denied: {why}"),
                time::Duration::seconds(self.refusal_retention.as_secs() as i64),
            )
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
        button: Option<&Button>,
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
            ended_at: None,
            hold_token: None,
            clicks: Vec::new(),
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
        match self.store.create(&record, audit, button).await {
            Ok(Created::New(_)) => {
                tracing::info!(request = %id, user = %origin.user_id, account = %a.account, "request recorded")
            }
            Ok(Created::Existing(r)) => {
                tracing::info!(request = %id, status = r.status.as_str(), "repeated request")
            }
            Ok(Created::ButtonTaken(other)) => {
                // A concurrent click on the same button won: answer with its request.
                tracing::info!(request = %id, other = %other, "the button started another request first");
                return match self.store.get(&other).await {
                    Ok(Some(r)) => Reply::ephemeral(&already(&r, false)),
                    _ => Reply::ephemeral(slack::ACCESS_INCOMING),
                };
            }
            Err(e) => {
                tracing::error!(request = %id, error = %e, "could not record the request");
                return Reply::ephemeral(
                    "Break glass failed to start: could not record the request. Try again in a moment.",
                );
            }
        }
        self.run(&id).await
    }

    /// Starts the request's execution. The input is a pure function of the request, so a
    /// repeated StartExecution with the same name is idempotent while the first one runs.
    async fn run(&self, id: &RequestId) -> Reply {
        let input = json!({
            "request_id": id.as_str(),
            "cloudtrail_delay_seconds": self.settings.cloudtrail_delay.as_secs(),
        });
        match self.executions.start(id, &input).await {
            Ok(Started::Running(arn)) => {
                tracing::info!(request = %id, execution = %arn, "execution running");
                Reply::ephemeral(slack::ACCESS_INCOMING)
            }
            Ok(Started::AlreadyFinished) => Reply::ephemeral(&format!(
                "The request this click started (`{id}`) has ended. Click Break Glass again for new access."
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
                let reply = self.start(a, &sub.origin, channel, None, now, None).await;
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

    /// **End access now** and **Extend**: only the requester or a responder, each a fenced
    /// write that also records the click (delivered twice, it acts once). End is final: it
    /// marks the request ended and wakes the Hold at once, and no Extend brings it back.
    async fn lease(&self, l: LeaseClick, now: OffsetDateTime) -> Reply {
        let Ok(id) = RequestId::parse(&l.request_id) else {
            return Reply::ephemeral("This button does not name a break-glass request.");
        };
        let user = l.origin.user_id.as_str();
        let click = format!("{user}:{}", l.action_ts);
        for _ in 0..4 {
            let rec = match self.store.get(&id).await {
                Ok(Some(r)) => r,
                Ok(None) => return Reply::ephemeral("This break-glass request does not exist."),
                Err(e) => {
                    tracing::error!(request = %id, error = %e, "could not read the request");
                    return Reply::ephemeral("Could not read the request; try again in a moment.");
                }
            };
            if rec.slack_user_id != user && !self.policy.responders.contains(user) {
                tracing::warn!(request = %id, user, "refused a lease button from someone else");
                return Reply::ephemeral(
                    "Only the requester or a responder can end or extend this access.",
                );
            }
            let change = if rec.clicks.contains(&click) {
                LeaseChange::Repeated
            } else {
                lease_change(&rec, user, l.extend, now)
            };
            let (changes, audit, answer) = match change {
                LeaseChange::Refused(why) => return Reply::ephemeral(&why),
                LeaseChange::Repeated | LeaseChange::EndedAlready if l.extend => {
                    return Reply::ephemeral(&repeated_answer(&rec, true));
                }
                LeaseChange::Repeated | LeaseChange::EndedAlready => {
                    // The Hold may not have heard: wake it again (harmless if it did).
                    return self.wake(&rec, &repeated_answer(&rec, false)).await;
                }
                LeaseChange::Extend(until) => (
                    vec![("expires_at", crate::aws::store::ts(until))],
                    Audit {
                        event: "extended",
                        actor: user,
                        detail: format!("until {}", crate::time_util::rfc3339(until)),
                    },
                    format!("Extended until {}.", slack_time(until)),
                ),
                LeaseChange::End => (
                    vec![
                        ("expires_at", crate::aws::store::ts(now)),
                        ("ended_by", crate::aws::store::s(user)),
                        ("ended_at", crate::aws::store::ts(now)),
                    ],
                    Audit {
                        event: "ended_early",
                        actor: user,
                        detail: format!("End access now pressed by {user}"),
                    },
                    "Access is being removed now; the report follows.".to_owned(),
                ),
            };
            let changes = Store::with_click(&rec, &click, changes);
            match self
                .store
                .advance(&rec, Status::Granted, changes, audit)
                .await
            {
                Ok(updated) => {
                    tracing::info!(request = %id, user, extend = l.extend, "lease changed");
                    return if l.extend {
                        Reply::ephemeral(&answer)
                    } else {
                        self.wake(&updated, &answer).await
                    };
                }
                // The Hold stored its token, or another click landed: look again.
                Err(crate::error::Error::StateConflict(_)) => continue,
                Err(e) => {
                    tracing::error!(request = %id, error = %e, "could not change the lease");
                    return Reply::ephemeral("Could not change the access; try again in a moment.");
                }
            }
        }
        Reply::ephemeral(
            "This access changed at the same moment; look at its latest state and try again.",
        )
    }

    /// Completes the Hold's callback of an ended request, so that Revoke starts now. Without
    /// a token the Hold has not stored one yet, and it finds the lease ended when it does.
    async fn wake(&self, rec: &RequestRecord, answer: &str) -> Reply {
        let Some(token) = &rec.hold_token else {
            return Reply::ephemeral(answer);
        };
        let released = LeaseState::of(rec, OffsetDateTime::now_utc(), 1);
        match self.executions.complete(token, &released.json()).await {
            Ok(delivered) => {
                tracing::info!(request = %rec.id, delivered, "hold woken");
                Reply::ephemeral(answer)
            }
            Err(e) => {
                tracing::error!(request = %rec.id, error = %e, "could not wake the hold");
                Reply::ephemeral(
                    "Access is ended, but its removal could not be started right now: press End access now again (otherwise it is removed at the hold's next check).",
                )
            }
        }
    }
}

/// What a lease button press does to a request (pure: the caller writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseChange {
    /// End the access now, for good.
    End,
    /// Move the end to this moment.
    Extend(OffsetDateTime),
    /// The access was ended already (End pressed again: wake the Hold again).
    EndedAlready,
    /// This very click was applied already.
    Repeated,
    /// Nothing changes; the answer says why.
    Refused(String),
}

/// Decides a press of **End access now** (`extend` false) or **Extend** on `rec`. End is
/// final: once the access was ended (by anyone) or has expired, Extend is refused with the
/// reason; Extend is capped by the rule's maximum.
pub fn lease_change(
    rec: &RequestRecord,
    _user: &str,
    extend: bool,
    now: OffsetDateTime,
) -> LeaseChange {
    let (Status::Granted, Some(granted_at), Some(expires_at)) =
        (rec.status, rec.granted_at, rec.expires_at)
    else {
        return LeaseChange::Refused(match rec.status {
            Status::Revoked | Status::Reported if extend => {
                "This access has ended and cannot be extended. Break glass again if you still need access."
                    .to_owned()
            }
            Status::Revoked | Status::Reported => "This access has already ended.".to_owned(),
            other => format!("This access is not active yet (it is {}).", other.as_str()),
        });
    };
    if let Some(by) = &rec.ended_by {
        if !extend {
            return LeaseChange::EndedAlready;
        }
        let at = rec.ended_at.map(slack_time).unwrap_or_default();
        return LeaseChange::Refused(format!(
            "This access was ended by <@{}> {at} and cannot be extended. Break glass again if you still need access.",
            slack::escape(by)
        ));
    }
    if !extend {
        return LeaseChange::End;
    }
    if expires_at <= now {
        return LeaseChange::Refused(
            "This access has expired and is being removed; it cannot be extended. Break glass again if you still need access."
                .to_owned(),
        );
    }
    match extended_until(granted_at, expires_at, now, rec.duration, rec.max_duration) {
        Some(until) => LeaseChange::Extend(until),
        None => LeaseChange::Refused(format!(
            "This access is already at its maximum of {}.",
            rec.max_duration
        )),
    }
}

/// The answer to a lease click that was applied already (or to End on ended access).
fn repeated_answer(rec: &RequestRecord, extend: bool) -> String {
    match (extend, rec.expires_at) {
        (true, Some(until)) if rec.ended_by.is_none() => {
            format!("Extended until {}.", slack_time(until))
        }
        (true, _) => "This access has ended and cannot be extended.".to_owned(),
        (false, _) => "Access is being removed now; the report follows.".to_owned(),
    }
}

/// `<!date^…>` renders in each reader's time zone; the fallback is UTC.
fn slack_time(t: OffsetDateTime) -> String {
    format!(
        "<!date^{}^{{time}}|{}>",
        t.unix_timestamp(),
        crate::time_util::hhmm(t)
    )
}

/// Whether a request still holds (or is about to hold) its access: a click on its button
/// then starts nothing new. Ended means the access was revoked, ended early or expired,
/// even while the old execution still waits for CloudTrail. A request stuck before its
/// grant for an hour (its execution never ran) no longer blocks the button.
pub fn live(rec: &RequestRecord, now: OffsetDateTime) -> bool {
    match rec.status {
        Status::Requested | Status::Granting => now - rec.requested_at < time::Duration::HOUR,
        Status::Granted => rec.ended_by.is_none() && rec.expires_at.is_some_and(|e| e > now),
        Status::Revoked | Status::Reported => false,
    }
}

/// The answer to a click while the button's request is live. The same click delivered
/// again gets the first delivery's answer.
fn already(rec: &RequestRecord, same_click: bool) -> String {
    match (rec.status, rec.expires_at) {
        _ if same_click => slack::ACCESS_INCOMING.to_owned(),
        (Status::Granted, Some(until)) => format!(
            "You already have this access until {} (request `{}`): use its End access now and Extend buttons.",
            slack_time(until),
            rec.id
        ),
        _ => format!(
            "Your access from this button is on its way (request `{}`).",
            rec.id
        ),
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

/// One click, one id: the same click delivered again maps to the same request (Slack gives
/// every click its own `action_ts`). A second click on the same button is a new candidate
/// request; [`button_key`] ties it to the first.
pub fn request_id(c: &Click) -> RequestId {
    RequestId::derive(&[
        &c.team_id,
        &c.user_id,
        c.channel_id.as_deref().unwrap_or(""),
        c.message_ts.as_deref().unwrap_or(&c.action_ts),
        c.account_id.as_str(),
        c.permission_set_arn.as_str(),
        &c.action_ts,
    ])
}

/// One Break Glass button as one person sees it: the message it is in, the account and the
/// permission set (a different button in the same message is a different one).
pub fn button_key(c: &Click) -> String {
    RequestId::derive(&[
        "button",
        &c.team_id,
        &c.user_id,
        c.channel_id.as_deref().unwrap_or(""),
        c.message_ts.as_deref().unwrap_or(&c.action_ts),
        c.account_id.as_str(),
        c.permission_set_arn.as_str(),
    ])
    .to_string()
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
