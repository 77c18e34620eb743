//! The Slack endpoint: interactivity (button clicks, the modal) and the `/break-glass` slash
//! command share one URL. One use case a file:
//!
//! - `mod.rs`: the pure first stage ([`screen`]: size, signature, form, payload, workspace),
//!   dispatch, and what every request path shares (identity and policy, recording a request
//!   and starting its execution, auditing refusals);
//! - [`click`]: a Break Glass button (reusable per person and button);
//! - [`modal`]: the `/break-glass` command and its modal's submission;
//! - [`suggest`]: the modal's type-ahead (`block_suggestion`): accounts and permission sets;
//! - [`lease_buttons`]: **End access now** and **Extend**;
//! - [`review`]: **Reviewed — fine** and **Needs follow-up** (and its note's modal);
//! - [`approval`]: **Approve** and **Deny** of a request that needs a second person's OK;
//! - [`home`]: the App Home tab (Events API `app_home_opened`, on the same URL).
//!
//! Order matters: size check, then the signature over the raw bytes, before anything else
//! looks at the body. A refused signature is a bare 401, logs nothing replayable and starts
//! nothing. Then the workspace, the payload, who the user is, and the policy. An allowed
//! request is recorded with a conditional write and starts the execution named by the request
//! id, so however often one click arrives it starts one execution. Every decision, allowed or
//! denied, is appended to the request's audit trail.

pub mod approval;
pub mod click;
pub mod home;
pub mod lease_buttons;
pub mod modal;
pub mod review;
pub mod suggest;

use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::aws::sfn::{Executions, Started};
use crate::aws::sso::PermissionSetNames;
use crate::aws::store::{Created, Store};
use crate::domain::approval::{Approval, ApprovalState};
use crate::domain::request::{Audit, Button, Part, RequestRecord, Status};
use crate::domain::{AccountId, Duration, PermissionSetArn, RequestId, accounts_text};
use crate::identity::{Directory, IdentityError, Person};
use crate::oncall::{Incident, IncidentError, IncidentId, Oncall};
use crate::policy::{
    AccountsRefused, Answer, AskFailed, Gated, Grant, OncallSource, Policy, Subject,
};
use crate::slack::events::parse_event;
use crate::slack::payload::{Interaction, Origin, parse_form};
use crate::slack::{self, signature};

use click::already;
pub use click::{button_key, live, request_id};
pub use lease_buttons::{LeaseChange, extended_until, lease_change};

/// Slack never sends more; anything larger is refused before it is read further.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An HTTP answer: status, and a JSON body (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<String>,
}

impl Reply {
    pub(super) fn bare(status: StatusCode) -> Self {
        Self { status, body: None }
    }
    pub(super) fn ephemeral(text: &str) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(slack::ephemeral(text)),
        }
    }
    pub(super) fn json(v: Value) -> Self {
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
    /// The organization's accounts, for the modal's type-ahead.
    pub organizations: crate::aws::organizations::Organizations,
    /// Who is on call, and incidents (when the policy uses them).
    pub oncall: Option<Oncall>,
    /// How long a refusal's audit entry is kept.
    pub refusal_retention: Duration,
}

/// A request that passed identity and policy, ready to record.
pub(super) struct Approved {
    id: RequestId,
    person: Person,
    /// Every account asked for (at least one), each allowed by the same rule.
    accounts: Vec<AccountId>,
    permission_set: PermissionSetArn,
    permission_set_name: Option<String>,
    grant: Grant,
    duration: Duration,
    reason: Option<String>,
    /// Pending when the rule's gate asks for approval.
    approval: Approval,
    /// What the gate said (for the audit trail), when the rule is gated.
    gate_note: Option<String>,
    incident: Option<Incident>,
}

/// Why a request was refused, and which modal field to show it on.
pub(super) struct Refusal {
    pub(super) field: &'static str,
    pub(super) message: String,
}

pub(super) fn refuse(field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        field,
        message: message.into(),
    }
}

impl Webhook {
    /// Handles one request end to end. A verified request runs in a span naming the Slack user
    /// and, once known, the break-glass request, so that every log line of it carries them.
    pub async fn handle(&self, method: &Method, headers: &HeaderMap, body: &[u8]) -> Reply {
        use tracing::Instrument;
        let now = OffsetDateTime::now_utc();
        let interaction = match screen(&self.settings, method, headers, body, now.unix_timestamp())
        {
            Screened::Done(reply) => return reply,
            Screened::Proceed(i) => *i,
        };
        let span = tracing::info_span!(
            "slack",
            kind = interaction.kind(),
            user = interaction.user_id(),
            request = tracing::field::Empty
        );
        self.dispatch(interaction, now).instrument(span).await
    }

    async fn dispatch(&self, interaction: Interaction, now: OffsetDateTime) -> Reply {
        match interaction {
            Interaction::BreakGlass(click) => self.click(click, now).await,
            Interaction::Command(cmd) => self.open_modal(cmd).await,
            Interaction::Submission(sub) => self.submit(sub, now).await,
            Interaction::Lease(l) => self.lease(l, now).await,
            Interaction::Review(r) => self.review(r, now).await,
            Interaction::ReviewNote(n) => self.review_note(n, now).await,
            Interaction::Approval(a) => self.decide_approval(a, now).await,
            Interaction::Suggestion(s) => self.suggest(s).await,
            Interaction::HomeOpened(o) => self.home_opened(&o.user_id, now).await,
            Interaction::UrlVerification { .. } => Reply::bare(StatusCode::OK),
            Interaction::Ignored { .. } => Reply::bare(StatusCode::OK),
        }
    }

    /// Identity (with who is on call and the incident, asked at the same time), then policy
    /// for every account on its own, then the request's own terms (duration, reason,
    /// incident, number of accounts), then the rule's gate.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn approve(
        &self,
        id: &RequestId,
        origin: &Origin,
        accounts: &[AccountId],
        permission_set: &PermissionSetArn,
        duration: Option<Duration>,
        reason: Option<String>,
        incident: Option<&str>,
    ) -> Result<Approved, Refusal> {
        if !self.policy.may_cover(&origin.user_id) {
            return Err(refuse("account", "no policy rule covers you"));
        }
        let incident = incident.map(str::trim).filter(|i| !i.is_empty());
        let incident = match incident.map(IncidentId::parse).transpose() {
            Ok(i) => i,
            Err(why) => return Err(refuse("incident", why)),
        };
        if accounts.is_empty() {
            return Err(refuse("account", "choose an account"));
        }
        let mut sources = Vec::new();
        for a in accounts {
            for s in self.policy.oncall_sources(a, permission_set) {
                if !sources.contains(&s) {
                    sources.push(s);
                }
            }
        }
        let (person, answers, incident) = tokio::join!(
            self.directory
                .resolve_with(&self.policy, &origin.user_id, !sources.is_empty()),
            self.on_call(&sources),
            self.incident(incident.as_ref()),
        );
        let person = person.map_err(|e| match e {
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
        let grant = self
            .policy
            .decide_accounts(
                &subject,
                accounts,
                permission_set,
                permission_set_name.as_deref(),
            )
            .map_err(|r| match r {
                AccountsRefused::Accounts(why) => refuse("account", why),
                AccountsRefused::PermissionSet(why) => refuse("permission_set", why),
            })?;
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
        let incident = incident?;
        if grant.incident_required && incident.is_none() {
            return Err(refuse(
                "incident",
                "this access needs an open PagerDuty incident: use /break-glass and name it",
            ));
        }
        let (approval, gate_note) = match &grant.gate {
            None => (Approval::default(), None),
            Some(gate) => match gate.decide(&answers, &person.emails) {
                Gated::Allow(why) => (Approval::default(), Some(why)),
                Gated::Approve(why) => (
                    Approval::pending(why.clone(), gate.approval_timeout),
                    Some(format!("needs approval: {why}")),
                ),
                Gated::Deny(why) => return Err(refuse("permission_set", why)),
            },
        };
        Ok(Approved {
            id: id.clone(),
            person,
            accounts: accounts.to_vec(),
            permission_set: permission_set.clone(),
            permission_set_name,
            grant,
            duration,
            reason,
            approval,
            gate_note,
            incident,
        })
    }

    /// Who is on call for each source (none when the policy gates nothing here).
    async fn on_call(&self, sources: &[OncallSource]) -> Vec<(OncallSource, Answer)> {
        match (&self.oncall, sources.is_empty()) {
            (_, true) => Vec::new(),
            (Some(oncall), false) => oncall.ask_all(sources).await,
            (None, false) => sources
                .iter()
                .map(|s| {
                    let why = "no on-call service configured (see the logs of the start)";
                    (s.clone(), Err(AskFailed::Misconfigured(why.to_owned())))
                })
                .collect(),
        }
    }

    /// The incident a request names: it must exist and be open.
    async fn incident(&self, id: Option<&IncidentId>) -> Result<Option<Incident>, Refusal> {
        let Some(id) = id else { return Ok(None) };
        let Some(oncall) = &self.oncall else {
            return Err(refuse(
                "incident",
                "incidents cannot be checked here (no PagerDuty token)",
            ));
        };
        match oncall.incident(id).await {
            Ok(i) if i.is_open() => Ok(Some(i)),
            Ok(i) => Err(refuse(
                "incident",
                format!("incident {} is {}, not open", id.as_str(), i.status),
            )),
            Err(e @ IncidentError::NotFound(_)) => Err(refuse("incident", e.to_string())),
            Err(e) => {
                tracing::error!(error = %e, "incident lookup failed");
                Err(refuse(
                    "incident",
                    "could not check the incident right now; try again in a moment",
                ))
            }
        }
    }

    pub(super) async fn audit_denied(&self, id: &RequestId, actor: &str, why: &str) {
        tracing::info!(user = actor, reason = why, "denied");
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
            tracing::error!(error = %e, "could not audit a refusal");
        }
    }

    /// Records the request and starts its execution; the reply for the requester.
    pub(super) async fn start(
        &self,
        a: Approved,
        origin: &Origin,
        channel_id: Option<String>,
        response_url: Option<String>,
        now: OffsetDateTime,
        button: Option<&Button>,
    ) -> Reply {
        let id = a.id.clone();
        tracing::Span::current().record("request", id.as_str());
        let record = RequestRecord {
            id: id.clone(),
            status: Status::Requested,
            version: 1,
            team_id: origin.team_id.clone(),
            slack_user_id: origin.user_id.clone(),
            sso_user_name: a.person.sso_user_name.clone(),
            account_id: a.accounts[0].clone(),
            more_accounts: a.accounts[1..].iter().cloned().map(Part::new).collect(),
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
            revoke_failed_at: None,
            after_end_checked_at: None,
            reconciled_at: None,
            digest: None,
            review: Default::default(),
            approval: a.approval.clone(),
            incident_id: a.incident.as_ref().map(|i| i.id.clone()),
            incident_url: a.incident.as_ref().and_then(|i| i.url.clone()),
        };
        let audit = Audit {
            event: "requested",
            actor: &origin.user_id,
            detail: format!(
                "allowed by rule {:?}: {} ({}) on {} for {}{}",
                a.grant.rule,
                a.permission_set_name.as_deref().unwrap_or("?"),
                a.permission_set,
                accounts_text(&a.accounts),
                a.duration,
                a.reason
                    .as_deref()
                    .map(|r| format!("; reason: {r}"))
                    .unwrap_or_default()
            ) + &a
                .incident
                .as_ref()
                .map(|i| match &i.url {
                    Some(url) => format!("; incident {} ({url})", i.id),
                    None => format!("; incident {}", i.id),
                })
                .unwrap_or_default()
                + &a.gate_note
                    .as_deref()
                    .map(|g| format!("; {g}"))
                    .unwrap_or_default(),
        };
        match self.store.create(&record, audit, button).await {
            Ok(Created::New(_)) => {
                tracing::info!(user = %origin.user_id, accounts = %accounts_text(&a.accounts), "request recorded")
            }
            Ok(Created::Existing(r)) => {
                tracing::info!(status = r.status.as_str(), "repeated request");
                return self.run(&r).await;
            }
            Ok(Created::ButtonTaken(other)) => {
                // A concurrent click on the same button won: answer with its request.
                tracing::info!(other = %other, "the button started another request first");
                return match self.store.get(&other).await {
                    Ok(Some(r)) => Reply::ephemeral(&already(&r, false)),
                    _ => Reply::ephemeral(slack::ACCESS_INCOMING),
                };
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record the request");
                return Reply::ephemeral(
                    "Break glass failed to start: could not record the request. Try again in a moment.",
                );
            }
        }
        self.run(&record).await
    }

    /// Starts the request's execution. The input is a pure function of the request, so a
    /// repeated StartExecution with the same name is idempotent while the first one runs.
    /// A request that needs approval waits for it first, at most its approval timeout.
    pub(super) async fn run(&self, rec: &RequestRecord) -> Reply {
        let id = &rec.id;
        let input = json!({
            "request_id": id.as_str(),
            "cloudtrail_delay_seconds": self.settings.cloudtrail_delay.as_secs(),
            "approval_timeout_seconds": rec.approval.timeout.map_or(0, |t| t.as_secs()),
        });
        match self.executions.start(id, &input).await {
            Ok(Started::Running(arn)) => {
                tracing::info!(execution = %arn, "execution running");
                match (&rec.approval.state, &rec.approval.why) {
                    (Some(ApprovalState::Pending), Some(why)) => {
                        Reply::ephemeral(&slack::approval::asked(rec, why))
                    }
                    _ => Reply::ephemeral(slack::ACCESS_INCOMING),
                }
            }
            Ok(Started::AlreadyFinished) => Reply::ephemeral(&format!(
                "The request this click started (`{id}`) has ended. Click Break Glass again for new access."
            )),
            Err(e) => {
                tracing::error!(error = %e, "could not start the execution");
                Reply::ephemeral("Break glass failed to start. Try again in a moment.")
            }
        }
    }
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
    // Interactivity and slash commands are form-encoded; the Events API sends JSON.
    let content_type = header("content-type")
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    let parsed = if content_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        parse_form(body)
    } else if content_type.eq_ignore_ascii_case("application/json") {
        parse_event(body)
    } else {
        return Done(Reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/x-www-form-urlencoded or application/json",
        ));
    };
    let interaction = match parsed {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "bad interactivity payload");
            return Done(Reply::error(StatusCode::BAD_REQUEST, &e.to_string()));
        }
    };
    if let Interaction::UrlVerification { challenge } = &interaction {
        return Done(Reply::json(json!({ "challenge": challenge })));
    }
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
mod tests;
