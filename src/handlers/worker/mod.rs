//! Step Functions tasks (and the scheduled reconcile). The payload's `type` picks the task;
//! every task is idempotent and fenced by the request's status and version, so a duplicated or
//! retried delivery never acts twice. One use case a file:
//!
//! - [`approval`]: the wait for a second person's approval, and its end;
//! - [`grant`]: join the lease, create the assignment (fenced, with its creation intent);
//! - [`hold`]: the Hold state's callback token, and the re-check after its timeout;
//! - [`revoke`]: leave the lease (the last one out deletes the assignment), the revoke alarm;
//! - [`report`]: CloudTrail → report → SES and Slack;
//! - [`after_end`]: use of the session after its access ended;
//! - [`end_sessions`]: deny and later lift the user's live sessions;
//! - [`review`]: the review request, and reminders and escalation of pending reviews;
//! - [`reconcile`]: the safety net (it also runs the review reminders);
//! - [`digest`]: the weekly digest.
//!
//! `mod.rs` holds the task payloads, the dispatch, and what every task shares: loading the
//! request and telling Slack.

pub mod after_end;
pub mod approval;
pub mod digest;
pub mod end_sessions;
pub mod grant;
pub mod hold;
pub mod output;
pub mod reconcile;
pub mod report;
pub mod review;
pub mod revoke;

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::aws::cloudtrail::Collector;
use crate::aws::mail::Mailer;
use crate::aws::sso::{Instance, PermissionSetNames, Sso};
use crate::aws::store::Store;
use crate::domain::RequestId;
use crate::domain::request::{Audit, Change, RequestRecord, Status};
use crate::error::Error;
use crate::policy::Policy;
use crate::slack::api::SlackApi;
use crate::slack::messages::About;

/// A task as Step Functions sends it: `{"type": "grant", "request_id": "bg-…"}`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// The AwaitApproval state: store its callback token and ask the approvers.
    AwaitApproval {
        request_id: RequestId,
        task_token: String,
    },
    /// The approval wait ended without a callback (timeout, or a failure): grant an
    /// approval recorded meanwhile, or expire the request.
    ApprovalOver {
        request_id: RequestId,
    },
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
    /// Once every credential the session was issued has expired: was it used after the
    /// access ended? Tells the thread either way, and mails an addendum when it was.
    AfterEnd {
        request_id: RequestId,
    },
    /// The safety net (scheduled, or invoked by hand): compare every break-glass assignment
    /// with the leases, revoke what outlived its lease, report standing access.
    Reconcile,
    /// The weekly digest of the seven days up to `until` (default: now).
    Digest {
        #[serde(default, with = "time::serde::rfc3339::option")]
        until: Option<OffsetDateTime>,
    },
}

impl Task {
    pub fn parse(v: Value) -> Result<Self, Error> {
        serde_json::from_value(v).map_err(|e| Error::InvalidInput(format!("task payload: {e}")))
    }

    /// The task's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Task::AwaitApproval { .. } => "await_approval",
            Task::ApprovalOver { .. } => "approval_over",
            Task::Grant { .. } => "grant",
            Task::Hold { .. } => "hold",
            Task::Check { .. } => "check",
            Task::Revoke { .. } => "revoke",
            Task::RevokeFailed { .. } => "revoke_failed",
            Task::Report { .. } => "report",
            Task::LiftSessions { .. } => "lift_sessions",
            Task::AfterEnd { .. } => "after_end",
            Task::Reconcile => "reconcile",
            Task::Digest { .. } => "digest",
        }
    }

    /// The request the task is about (none for the reconcile).
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            Task::AwaitApproval { request_id, .. }
            | Task::ApprovalOver { request_id }
            | Task::Grant { request_id, .. }
            | Task::Hold { request_id, .. }
            | Task::Check { request_id, .. }
            | Task::Revoke { request_id }
            | Task::RevokeFailed { request_id }
            | Task::Report { request_id }
            | Task::LiftSessions { request_id }
            | Task::AfterEnd { request_id } => Some(request_id),
            Task::Reconcile | Task::Digest { .. } => None,
        }
    }
}

pub struct Worker {
    pub store: Store,
    pub executions: crate::aws::sfn::Executions,
    /// How long past its end a lease whose execution still runs is left to the state machine.
    pub reconcile_grace: crate::domain::Duration,
    /// How much one reconcile run may do.
    pub reconcile_limits: crate::config::ReconcileLimits,
    /// The pace of the reconciler's Identity Center calls.
    pub pace: std::sync::Arc<crate::aws::pace::Pace>,
    /// Added to the session duration before a deny on old sessions is lifted.
    pub end_sessions_margin: crate::domain::Duration,
    pub sso: Sso,
    pub names: PermissionSetNames,
    pub slack: SlackApi,
    pub instance: Instance,
    /// The longest one Hold waits before it looks at the lease again (the safety net for a
    /// lost End access now callback).
    pub hold_recheck: crate::domain::Duration,
    /// How long CloudTrail may lag: the look for use after the end waits this long too.
    pub cloudtrail_delay: crate::domain::Duration,
    pub collector: Collector,
    pub mailer: Mailer,
    pub recipients: Vec<String>,
    /// Also send the report to the requester (their Identity Center e-mail).
    pub report_to_requester: bool,
    pub policy: Policy,
    pub report_margin: crate::domain::Duration,
    /// Most timeline rows the mail carries (the rest go in the CSV attachment).
    pub max_rows: usize,
    /// PagerDuty, for a note on the incident a request named (when configured).
    pub oncall: Option<crate::oncall::Oncall>,
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
    pub(crate) fn kept(outcome: impl Into<String>) -> Self {
        Left {
            outcome: outcome.into(),
            deleted: false,
            others: Vec::new(),
        }
    }
}

impl Worker {
    /// Runs one task, in a span naming the task and its request, so that every log line of
    /// it (the adapters' too) carries them.
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        use tracing::Instrument;
        let task = Task::parse(payload)?;
        let span = tracing::info_span!(
            "task",
            kind = task.kind(),
            request = task.request_id().map_or("", RequestId::as_str)
        );
        self.run(task).instrument(span).await
    }

    async fn run(&self, task: Task) -> Result<Value, Error> {
        fn out(v: impl serde::Serialize) -> Result<Value, Error> {
            serde_json::to_value(v).map_err(|e| Error::InvalidInput(format!("task output: {e}")))
        }
        match task {
            Task::AwaitApproval {
                request_id,
                task_token,
            } => out(self.await_approval(&request_id, &task_token).await?),
            Task::ApprovalOver { request_id } => out(self.approval_over(&request_id).await?),
            Task::Grant {
                request_id,
                poll_seconds,
            } => out(self.grant(&request_id, self.recheck(poll_seconds)).await?),
            Task::Hold {
                request_id,
                task_token,
            } => out(self
                .hold(&request_id, &task_token, self.recheck(None))
                .await?),
            Task::Check {
                request_id,
                poll_seconds,
            } => out(self.check(&request_id, self.recheck(poll_seconds)).await?),
            Task::Revoke { request_id } => out(self.revoke(&request_id).await?),
            Task::RevokeFailed { request_id } => out(self.revoke_failed(&request_id).await?),
            Task::Report { request_id } => out(self.report(&request_id).await?),
            Task::LiftSessions { request_id } => out(self.lift_sessions(&request_id).await?),
            Task::AfterEnd { request_id } => out(self.after_end(&request_id).await?),
            Task::Reconcile => self.reconcile().await,
            Task::Digest { until } => out(self.digest(until).await?),
        }
    }

    /// Publishes the requester's App Home again (after a grant or a revoke), with their
    /// reviewer groups when the policy names any. Best effort.
    pub(crate) async fn refresh_home(&self, rec: &RequestRecord) {
        let mut groups = std::collections::BTreeSet::new();
        if let (Some(review), Some(principal)) = (&self.policy.review, &rec.principal_id)
            && !review.reviewer_groups.is_empty()
            && !review.reviewers.contains(&rec.slack_user_id)
        {
            let wanted = review.reviewer_groups.iter().map(String::as_str).collect();
            match self.sso.member_of(&self.instance, principal, &wanted).await {
                Ok(g) => groups = g,
                Err(e) => tracing::warn!(error = %e, "no groups for the Home view"),
            }
        }
        crate::handlers::home::refresh(
            &self.store,
            &self.policy,
            &self.slack,
            &rec.slack_user_id,
            &groups,
        )
        .await;
    }

    pub(crate) async fn load(&self, id: &RequestId) -> Result<RequestRecord, Error> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("request {id}")))
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
        let about = About {
            request_id: rec.id.as_str(),
            user: &rec.sso_user_name,
            account_ids: rec.accounts_text(),
            accounts: crate::slack::accounts_mrkdwn(&rec.accounts(), &self.policy),
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
                    .note(&rec, vec![Change::ThreadTs(ts.clone())], audit)
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
