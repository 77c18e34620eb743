//! Step Functions tasks. The payload's `type` picks the task; every task is idempotent and
//! fenced by the request's status and version, so a duplicated or retried delivery never
//! acts twice.

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::aws::mail::{Mail, Mailer};
use crate::aws::sso::{Instance, PermissionSetNames, Sso};
use crate::aws::store::{Audit, Lease, RequestRecord, Status, Store, s, ts};
use crate::domain::{AccountId, PermissionSetArn, RequestId};
use crate::error::Error;
use crate::policy::Policy;
use crate::report::Session;
use crate::report::collect::{Collector, collect};
use crate::report::render::{Header, View, csv};
use crate::slack::api::SlackApi;
use crate::slack::messages::{self, About, Flagged};
use crate::time_util::rfc3339;

/// A task as Step Functions sends it: `{"type": "grant", "request_id": "bg-…"}`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// `poll_seconds` comes from executions started before the Hold waited on a callback
    /// (their Wait loop needs at most that long a wait); it caps the wait.
    Grant {
        request_id: RequestId,
        #[serde(default)]
        poll_seconds: Option<u64>,
    },
    /// The Hold state: store its callback token (`$$.Task.Token`) on the request, or
    /// complete it at once if the lease is already over.
    Hold {
        request_id: RequestId,
        task_token: String,
    },
    /// After a Hold timed out: has the lease ended (expired, or ended early)?
    Check {
        request_id: RequestId,
        #[serde(default)]
        poll_seconds: Option<u64>,
    },
    Revoke {
        request_id: RequestId,
    },
    /// Revoke failed for good: mark the request, raise the alarm, tell Slack.
    RevokeFailed {
        request_id: RequestId,
    },
    Report {
        request_id: RequestId,
    },
    /// Once the request's sessions have expired: lift the deny on them (and any other
    /// expired deny on the same permission set).
    LiftSessions {
        request_id: RequestId,
    },
    /// The safety net (scheduled, or invoked by hand): compare every break-glass assignment
    /// with the leases, revoke what outlived its lease, report standing access.
    Reconcile,
}

impl Task {
    pub fn parse(v: Value) -> Result<Self, Error> {
        serde_json::from_value(v).map_err(|e| Error::InvalidInput(format!("task payload: {e}")))
    }
}

pub struct Worker {
    pub store: Store,
    pub executions: crate::aws::sfn::Executions,
    /// How long past its end a lease whose execution still runs is left to the state machine.
    pub reconcile_grace: crate::domain::Duration,
    /// Added to the session duration before a deny on old sessions is lifted.
    pub end_sessions_margin: crate::domain::Duration,
    pub sso: Sso,
    pub names: PermissionSetNames,
    pub slack: SlackApi,
    pub instance: Instance,
    /// The longest one Hold waits before it looks at the lease again (the safety net for a
    /// lost End access now callback).
    pub hold_recheck: crate::domain::Duration,
    pub collector: Collector,
    pub mailer: Mailer,
    pub recipients: Vec<String>,
    /// Also send the report to the requester (their Identity Center e-mail).
    pub report_to_requester: bool,
    pub policy: Policy,
    pub report_margin: crate::domain::Duration,
    /// Most timeline rows the mail carries (the rest go in the CSV attachment).
    pub max_rows: usize,
}

pub(crate) const ACTOR: &str = "break-glass";

/// What leaving a lease did.
pub(crate) struct Left {
    /// For the audit trail.
    pub outcome: String,
    /// The assignment was deleted (this was the last lease, and not standing access).
    pub deleted: bool,
    /// The requests that still hold the assignment (it was kept for them).
    pub others: Vec<String>,
}

impl Left {
    fn kept(outcome: impl Into<String>) -> Self {
        Left {
            outcome: outcome.into(),
            deleted: false,
            others: Vec::new(),
        }
    }
}

impl Worker {
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        match Task::parse(payload)? {
            Task::Grant {
                request_id,
                poll_seconds,
            } => Ok(self
                .grant(&request_id, self.recheck(poll_seconds))
                .await?
                .json()),
            Task::Hold {
                request_id,
                task_token,
            } => {
                self.hold(&request_id, &task_token, self.recheck(None))
                    .await
            }
            Task::Check {
                request_id,
                poll_seconds,
            } => Ok(self
                .check(&request_id, self.recheck(poll_seconds))
                .await?
                .json()),
            Task::Revoke { request_id } => self.revoke(&request_id).await,
            Task::RevokeFailed { request_id } => self.revoke_failed(&request_id).await,
            Task::Report { request_id } => self.report(&request_id).await,
            Task::LiftSessions { request_id } => self.lift_sessions(&request_id).await,
            Task::Reconcile => self.reconcile().await,
        }
    }

    pub(crate) async fn load(&self, id: &RequestId) -> Result<RequestRecord, Error> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("request {id}")))
    }

    /// Leaves the lease set; the last lease out deletes the assignment unless it was standing
    /// access, and ends live sessions when its rule says so. `holder` is the leaving request
    /// and whether its rule ends sessions; `None` only finishes a release left half-way, and
    /// only one started at least `settle` ago (a Revoke may be finishing it right now).
    pub(crate) async fn leave(
        &self,
        account: &AccountId,
        ps: &PermissionSetArn,
        principal: &str,
        holder: Option<(&str, bool)>,
        settle: time::Duration,
    ) -> Result<Left, Error> {
        let key = Lease::key(principal, account, ps);
        for _ in 0..5 {
            let Some(l) = self.store.lease(&key).await? else {
                return Ok(Left::kept(
                    "nothing to delete: the lease was already released",
                ));
            };
            let now = OffsetDateTime::now_utc();
            let mine = holder.filter(|(h, _)| l.holders.iter().any(|x| x == h));
            let next = if let Some((h, end_sessions)) = mine {
                let mut n = l.clone();
                n.holders.retain(|x| x != h);
                n.releasing = n.holders.is_empty();
                if n.releasing {
                    // The moment access ends, recorded before anything is deleted: whoever
                    // finishes the release ends the sessions issued before it.
                    n.released_at = Some(now);
                    n.end_sessions_for = end_sessions.then(|| h.to_owned());
                }
                n.version += 1;
                if !self.store.put_lease(&n, Some(l.version)).await? {
                    continue;
                }
                n
            } else if l.releasing && l.holders.is_empty() {
                if holder.is_none() && l.released_at.is_some_and(|at| now - at < settle) {
                    return Ok(Left::kept("a release in progress: left to it"));
                }
                // An earlier attempt left the lease and stopped half-way: finish its release.
                l
            } else {
                return Ok(Left::kept(format!(
                    "already left the lease; {} other lease(s) hold it",
                    l.holders.len()
                )));
            };
            if !next.holders.is_empty() {
                return Ok(Left {
                    outcome: format!(
                        "assignment kept: {} other live lease(s) still need it ({})",
                        next.holders.len(),
                        next.holders.join(", ")
                    ),
                    deleted: false,
                    others: next.holders.clone(),
                });
            }
            let left = if next.standing {
                Left::kept("standing access kept: the assignment existed before break glass")
            } else {
                let deletion = self
                    .sso
                    .delete_assignment(&self.instance, account, ps, principal)
                    .await?;
                if let Some(req) = &deletion {
                    self.sso.wait_deleted(&self.instance, req).await?;
                }
                let mut outcome = if deletion.is_some() {
                    "assignment deleted".to_owned()
                } else {
                    "the assignment was already gone".to_owned()
                };
                if let Some(request) = &next.end_sessions_for {
                    // The assignment is gone, so no session can be issued any more, and the
                    // releasing lease keeps a new grant out until the deny is in place: every
                    // session up to now (plus clock skew) is an old one.
                    let before = OffsetDateTime::now_utc() + crate::sessions::CLOCK_SKEW;
                    let deny = self
                        .deny_sessions(account, ps, principal, request, before)
                        .await?;
                    outcome.push_str(&format!(
                        "; sessions issued before {} denied until {}",
                        rfc3339(deny.before),
                        rfc3339(deny.until)
                    ));
                }
                Left {
                    outcome,
                    deleted: deletion.is_some(),
                    others: Vec::new(),
                }
            };
            self.store.delete_lease(&key, next.version).await?;
            return Ok(left);
        }
        Err(Error::Transient(format!(
            "lease {key} kept changing under us"
        )))
    }

    /// Leaves the lease (the last one out deletes the assignment, never standing access) and
    /// waits until it is gone. Safe in every state: it is also where every failure after
    /// Grant ends up.
    pub async fn revoke(&self, id: &RequestId) -> Result<Value, Error> {
        let rec = self.load(id).await?;
        let rec = match rec.status {
            Status::Revoked | Status::Reported => rec,
            Status::Requested | Status::Granting | Status::Granted => {
                let left = match (&rec.principal_id, rec.status) {
                    (Some(p), Status::Granting | Status::Granted) => {
                        self.leave(
                            &rec.account_id,
                            &rec.permission_set_arn,
                            p,
                            Some((id.as_str(), rec.end_sessions)),
                            time::Duration::ZERO,
                        )
                        .await?
                    }
                    _ => Left::kept("nothing to delete: access was never granted"),
                };
                let now = OffsetDateTime::now_utc();
                let ended_early = rec.ended_by.is_some();
                let rec = self
                    .store
                    .advance(
                        &rec,
                        Status::Revoked,
                        vec![("revoked_at", ts(now))],
                        Audit {
                            event: "revoked",
                            actor: ACTOR,
                            detail: left.outcome.clone(),
                        },
                    )
                    .await?;
                tracing::info!(request = %id, outcome = left.outcome, "revoked");
                let why = match (rec.granted_at, ended_early) {
                    (None, _) => "access could not be granted; anything partly granted was removed",
                    (Some(_), true) => "ended early",
                    (Some(_), false) => "expired",
                };
                match self.still_holding(&left.others).await {
                    Some((other, until)) => {
                        self.tell(rec, |a| messages::continues(a, why, &other, until))
                            .await
                    }
                    None => self.tell(rec, |a| messages::revoked(a, why)).await,
                }
            }
        };
        let rec = self.note_sessions_denied(rec).await?;
        Ok(json!({
            "revoked_at": rec.revoked_at.map(rfc3339),
            "sessions_denied_until": rec.sessions_denied_until.map(rfc3339),
        }))
    }

    /// The state machine gave up on Revoke: mark the request, raise the alarm (the
    /// `revoke failed` log line feeds a metric), and tell the requester and the thread.
    pub async fn revoke_failed(&self, id: &RequestId) -> Result<Value, Error> {
        let rec = self.load(id).await?;
        tracing::error!(request = %id, user = %rec.sso_user_name, account = %rec.account_id, "revoke failed");
        // With the assignment gone, what failed is ending the live sessions.
        let gone = match &rec.principal_id {
            Some(p) => self
                .sso
                .has_assignment(&self.instance, &rec.account_id, &rec.permission_set_arn, p)
                .await
                .is_ok_and(|held| !held),
            None => false,
        };
        let sessions_only = gone && rec.end_sessions;
        let rec = self
            .store
            .note(
                &rec,
                vec![("revoke_failed_at", ts(OffsetDateTime::now_utc()))],
                Audit {
                    event: "revoke_failed",
                    actor: ACTOR,
                    detail: if sessions_only {
                        "the assignment was deleted, but ending the user's live sessions failed after every retry".into()
                    } else {
                        "Revoke failed after every retry: remove the assignment by hand".into()
                    },
                },
            )
            .await?;
        if sessions_only {
            self.tell(rec, messages::sessions_not_ended).await;
        } else {
            self.tell(rec, messages::revoke_failed).await;
        }
        Ok(json!({"alarm": true}))
    }

    /// Reads the session's CloudTrail events and mails the report.
    pub async fn report(&self, id: &RequestId) -> Result<Value, Error> {
        let rec = self.load(id).await?;
        match rec.status {
            Status::Reported => return Ok(json!({"events": null, "already_reported": true})),
            Status::Revoked => {}
            other => {
                return Err(Error::StateConflict(format!(
                    "request {id} is {} and cannot be reported before it is revoked",
                    other.as_str()
                )));
            }
        }
        let (Some(granted), Some(revoked)) = (rec.granted_at, rec.revoked_at) else {
            return Err(Error::StateConflict(format!(
                "request {id} was never granted"
            )));
        };
        let margin = time::Duration::seconds(self.report_margin.as_secs() as i64);
        let (from, to) = (granted - margin, revoked + margin);
        let ps_name = self
            .sso
            .permission_set_name(&self.instance, &rec.permission_set_arn)
            .await?;
        let session = Session {
            account_id: rec.account_id.as_str().to_owned(),
            permission_set_name: ps_name.clone(),
            user_name: rec.sso_user_name.clone(),
        };
        let sources = self
            .collector
            .sources(rec.account_id.as_str(), id.as_str())
            .await;
        let found = collect(sources, &session, from, to).await;
        let header = Header {
            user: rec.sso_user_name.clone(),
            account_id: rec.account_id.as_str().to_owned(),
            account_name: self.policy.account_name(&rec.account_id).map(str::to_owned),
            permission_set: ps_name,
            from: granted,
            to: revoked,
            request_id: Some(id.as_str().to_owned()),
            reason: rec.reason.clone(),
            slack_link: rec
                .notify_channel
                .as_ref()
                .or(rec.channel_id.as_ref())
                .map(|c| {
                    format!(
                        "https://slack.com/app_redirect?team={}&channel={c}",
                        rec.team_id
                    )
                }),
        };
        let view = View::new(
            &header,
            &found.events,
            &found.portal,
            &found.incomplete,
            self.max_rows,
        );
        let render_err =
            |e: askama::Error| Error::InvalidInput(format!("rendering the report: {e}"));
        let html = view.html().map_err(render_err)?;
        let text = view.text().map_err(render_err)?;
        let full = (view.omitted > 0).then(|| csv(&found.events));
        let filename = format!("break-glass-{id}.csv");
        let subject = view.subject();
        let attachment = full.as_deref().map(|c| (filename.as_str(), c));
        // The security team's copy goes on its own: nothing about the requester's address can
        // stop it.
        let team_copy = Mail {
            to: &self.recipients,
            subject: &subject,
            html: &html,
            text: &text,
            attachment,
        };
        let message_id = self.mailer.send(&team_copy).await?;
        let mut to = self.recipients.clone();
        let mut requester_copy = String::new();
        if self.report_to_requester
            && let Some(principal) = &rec.principal_id
        {
            requester_copy = match self.sso.user_email(&self.instance, principal).await {
                Ok(Some(email)) if to.contains(&email) => String::new(),
                Ok(Some(email)) => match crate::aws::mail::valid_address(&email) {
                    Err(e) => format!("; the requester's copy was not sent: {e}"),
                    Ok(()) => match self
                        .mailer
                        .send(&Mail {
                            to: std::slice::from_ref(&email),
                            ..team_copy
                        })
                        .await
                    {
                        Ok(m) => {
                            to.push(email);
                            format!("; the requester's copy: SES {m}")
                        }
                        Err(e) => {
                            tracing::warn!(request = %id, error = %e, "the requester's copy of the report failed");
                            format!("; the requester's copy failed: {e}")
                        }
                    },
                },
                Ok(None) => "; the requester has no e-mail address".to_owned(),
                Err(e) => {
                    tracing::warn!(request = %id, error = %e, "no e-mail for the requester");
                    format!("; no e-mail for the requester: {e}")
                }
            };
        }
        let rec = self
            .store
            .advance(
                &rec,
                Status::Reported,
                vec![("reported_at", ts(OffsetDateTime::now_utc()))],
                Audit {
                    event: "reported",
                    actor: ACTOR,
                    detail: format!(
                        "{} events in {} LookupEvents calls, mailed to {} (SES {message_id}){requester_copy}{}",
                        found.events.len(),
                        found.calls,
                        self.recipients.join(", "),
                        if found.incomplete.is_empty() {
                            ""
                        } else {
                            "; collection incomplete"
                        }
                    ),
                },
            )
            .await?;
        tracing::info!(request = %id, events = found.events.len(), calls = found.calls, "reported");
        let flagged: Vec<Flagged> = found
            .events
            .iter()
            .filter_map(|e| {
                crate::report::flag(e).map(|why| Flagged {
                    time: e.time,
                    why,
                    service: e.service(),
                    action: &e.name,
                })
            })
            .collect();
        let counts = (view.total, view.writes, view.errors);
        let recipients = to.join(", ");
        let incomplete = !found.incomplete.is_empty();
        self.tell(rec, |a| {
            messages::reported(a, counts, &flagged, &recipients, incomplete)
        })
        .await;
        Ok(json!({
            "events": found.events.len(),
            "calls": found.calls,
            "incomplete": found.incomplete,
            "message_id": message_id,
        }))
    }
}

impl Worker {
    /// The Hold's re-check interval: the configured one, or the poll interval an execution
    /// started before the callback hold passes.
    fn recheck(&self, poll_seconds: Option<u64>) -> u64 {
        poll_seconds
            .unwrap_or(self.hold_recheck.as_secs())
            .clamp(1, 86_400)
    }

    /// The first of `others` that still holds the access, and until when (for telling the
    /// requester that their access continues under it).
    async fn still_holding(&self, others: &[String]) -> Option<(String, Option<OffsetDateTime>)> {
        for other in others {
            let Ok(id) = RequestId::parse(other) else {
                continue;
            };
            if let Ok(Some(r)) = self.store.get(&id).await
                && r.status == Status::Granted
                && r.ended_by.is_none()
                && let Some(until) = r.expires_at
            {
                return Some((other.clone(), Some(until)));
            }
        }
        others.first().map(|o| (o.clone(), None))
    }

    /// Tells the requester (through the click's `response_url`, else a direct message) and
    /// the policy's channel (in the request's thread; the first message starts it). Best
    /// effort: a failed follow-up is logged and never fails the task. Returns the record
    /// as it is afterwards (with the thread's `ts` once known).
    pub(crate) async fn tell(
        &self,
        rec: RequestRecord,
        message: impl FnOnce(&About<'_>) -> Value,
    ) -> RequestRecord {
        let account_name = self.policy.account_name(&rec.account_id).map(str::to_owned);
        let about = About {
            request_id: rec.id.as_str(),
            user: &rec.sso_user_name,
            account_id: rec.account_id.as_str(),
            account_name: account_name.as_deref(),
            permission_set: rec
                .permission_set_name
                .as_deref()
                .unwrap_or(rec.permission_set_arn.as_str()),
        };
        let message = message(&about);
        let mut reply = message.clone();
        reply["response_type"] = json!("ephemeral");
        reply["replace_original"] = json!(false);
        let answered = match &rec.response_url {
            Some(url) => self.slack.respond(url, &reply).await,
            None => false,
        };
        if !answered
            && let Err(e) = self
                .slack
                .post_message(&rec.slack_user_id, &message, None)
                .await
        {
            tracing::warn!(request = %rec.id, error = %e, "could not tell the requester");
        }
        let Some(channel) = rec.notify_channel.clone() else {
            return rec;
        };
        match self
            .slack
            .post_message(&channel, &message, rec.thread_ts.as_deref())
            .await
        {
            Ok(ts) if rec.thread_ts.is_none() && !ts.is_empty() => {
                let audit = Audit {
                    event: "announced",
                    actor: ACTOR,
                    detail: format!("thread {ts} in {channel}"),
                };
                match self
                    .store
                    .note(&rec, vec![("thread_ts", s(&ts))], audit)
                    .await
                {
                    Ok(updated) => updated,
                    Err(e) => {
                        tracing::warn!(request = %rec.id, error = %e, "could not record the thread");
                        rec
                    }
                }
            }
            Ok(_) => rec,
            Err(e) => {
                tracing::warn!(request = %rec.id, error = %e, "could not post to the channel");
                rec
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_payloads() {
        let id = RequestId::derive(&["a"]);
        assert_eq!(
            Task::parse(json!({"type": "grant", "request_id": id.as_str()})).unwrap(),
            Task::Grant {
                request_id: id.clone(),
                poll_seconds: None
            }
        );
        assert_eq!(
            Task::parse(json!({"type": "hold", "request_id": id.as_str(), "task_token": "t"}))
                .unwrap(),
            Task::Hold {
                request_id: id.clone(),
                task_token: "t".into()
            }
        );
        assert_eq!(
            Task::parse(json!({"type": "check", "request_id": id.as_str(), "poll_seconds": 5}))
                .unwrap(),
            Task::Check {
                request_id: id.clone(),
                poll_seconds: Some(5)
            }
        );
        for bad in [
            json!({"type": "explode", "request_id": id.as_str()}),
            json!({"type": "grant"}),
            json!({"type": "grant", "request_id": "../../etc"}),
            json!({"type": "grant", "request_id": id.as_str(), "extra": 1}),
            json!({"type": "hold", "request_id": id.as_str()}),
            json!("grant"),
        ] {
            let e = Task::parse(bad).unwrap_err();
            assert_eq!(e.name(), "InvalidInput");
        }
    }
}
