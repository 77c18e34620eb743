//! **Approve** and **Deny** of a request whose rule asked for a second person's OK: only the
//! rule's approvers, never the requester, and once. The decision is a fenced change of the
//! request with its audit entry; then the waiting state machine hears it (its task token:
//! success grants, failure ends the request with nothing granted), the approval message is
//! updated in place and the requester is told. [`may_approve`] is the pure decision; every
//! refusal is audited.

use time::OffsetDateTime;

use super::{Reply, Webhook};
use crate::domain::RequestId;
use crate::domain::approval::{ApprovalState, Clicker, MayApprove, may_approve};
use crate::domain::request::{Audit, Change, RequestRecord, Status};
use crate::error::Error;
use crate::slack::approval as message;
use crate::slack::escape;
use crate::slack::payload::ApprovalClick;

/// The error a denied approval fails the waiting task with (the state machine's name).
pub const APPROVAL_DENIED: &str = "ApprovalDenied";

impl Webhook {
    /// A click on **Approve** or **Deny**.
    pub(super) async fn decide_approval(&self, a: ApprovalClick, now: OffsetDateTime) -> Reply {
        let user = a.origin.user_id.clone();
        let Ok(id) = RequestId::parse(&a.request_id) else {
            return Reply::ephemeral("This button does not name a break-glass request.");
        };
        tracing::Span::current().record("request", id.as_str());
        let mut rec = match self.store.get(&id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Reply::ephemeral("This break-glass request does not exist."),
            Err(e) => {
                tracing::error!(error = %e, "could not read the request");
                return Reply::ephemeral("Could not read the request; try again in a moment.");
            }
        };
        let who = self.clicker(&rec, &user).await;
        let state = if a.approve {
            ApprovalState::Approved
        } else {
            ApprovalState::Denied
        };
        for _ in 0..4 {
            if let Err(answer) = self.judge_approval(&rec, &user, who, now).await {
                if rec.approval.state == Some(ApprovalState::Approved)
                    && rec.status == Status::Requested
                {
                    // Approved, but the state machine may not have heard (a lost callback):
                    // tell it again (completing a completed token changes nothing).
                    let by = rec.approval.by.clone().unwrap_or_default();
                    self.resume(&rec, ApprovalState::Approved, &by).await;
                }
                return Reply::ephemeral(&answer);
            }
            let changes = vec![
                Change::ApprovalState(state),
                Change::ApprovedBy(user.clone()),
                Change::ApprovalAt(now),
            ];
            let (event, to, changes) = match state {
                ApprovalState::Approved => ("approved", rec.status, changes),
                // Nothing was granted: the request is over.
                _ => (
                    "approval_denied",
                    Status::Revoked,
                    [changes, vec![Change::RevokedAt(now)]].concat(),
                ),
            };
            let audit = Audit {
                event,
                actor: &user,
                detail: format!("{} by {user}", state.as_str()),
            };
            match self.store.advance(&rec, to, changes, audit).await {
                Ok(updated) => {
                    tracing::info!(user, outcome = state.as_str(), "approval decided");
                    self.resume(&updated, state, &user).await;
                    self.show_approval(&updated, state, Some(&user), now).await;
                    tokio::join!(
                        self.refresh_home(&user),
                        self.refresh_home(&updated.slack_user_id)
                    );
                    return Reply::ephemeral(&match state {
                        ApprovalState::Approved => format!(
                            "Approved: <@{}> gets the access now.",
                            escape(&updated.slack_user_id)
                        ),
                        _ => format!(
                            "Denied: nothing is granted to <@{}>.",
                            escape(&updated.slack_user_id)
                        ),
                    });
                }
                Err(Error::StateConflict(_)) => {
                    // Someone else may have decided meanwhile: judge again.
                    rec = match self.store.get(&rec.id).await {
                        Ok(Some(r)) => r,
                        _ => break,
                    };
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not record the approval");
                    break;
                }
            }
        }
        Reply::ephemeral("Could not record the decision; try again in a moment.")
    }

    /// [`may_approve`], with its refusals audited; the answer for the clicker.
    async fn judge_approval(
        &self,
        rec: &RequestRecord,
        user: &str,
        who: Clicker,
        now: OffsetDateTime,
    ) -> Result<(), String> {
        let (audit, answer) = match may_approve(rec, who, now) {
            MayApprove::Yes => return Ok(()),
            MayApprove::Decided {
                state: ApprovalState::Expired,
                ..
            } => {
                return Err(
                    "Already expired: nobody approved it in time, and nothing was granted.".into(),
                );
            }
            MayApprove::Decided { state, by } => {
                let who = by
                    .map(|b| format!(" by <@{}>", escape(&b)))
                    .unwrap_or_default();
                return Err(format!(
                    "Already {}{who}; the first decision stands.",
                    state.as_str()
                ));
            }
            MayApprove::NotGated => {
                return Err("This request needs no approval.".into());
            }
            MayApprove::OwnRequest => (
                "approval of their own request refused (two-person rule)",
                "You cannot approve your own request: a second person must.",
            ),
            MayApprove::NotApprover => (
                "approval refused: not one of the rule's approvers",
                "Only the rule's approvers can decide this request.",
            ),
        };
        tracing::warn!(user, reason = audit, "approval refused");
        self.audit_denied(&rec.id, user, audit).await;
        Err(answer.to_owned())
    }

    /// Who `user` is to `rec`: its requester (the same Slack user, or another Slack user who
    /// is the same Identity Center user), and whether one of its rule's approvers (by Slack
    /// id, or by Identity Center group). A user with no Identity Center identity is judged
    /// by Slack id alone.
    async fn clicker(&self, rec: &RequestRecord, user: &str) -> Clicker {
        let person = match self.directory.resolve(&self.policy, user).await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::info!(error = ?e, "no identity for a would-be approver");
                None
            }
        };
        let is_requester = user == rec.slack_user_id
            || person
                .as_ref()
                .is_some_and(|p| p.sso_user_name == rec.sso_user_name);
        let groups = person.map(|p| p.groups).unwrap_or_default();
        let is_approver = self
            .policy
            .gate_of(&rec.rule)
            .is_some_and(|gate| gate.is_approver(user, &groups));
        Clicker {
            is_requester,
            is_approver,
        }
    }

    /// Tells the waiting state machine. A lost callback is not lost for good: when the wait
    /// times out, the state machine reads the request and grants an approved one.
    async fn resume(&self, rec: &RequestRecord, state: ApprovalState, user: &str) {
        let Some(token) = &rec.approval.token else {
            tracing::warn!(
                "no approval token stored yet: the state machine reads the decision when its wait ends"
            );
            return;
        };
        let sent = match state {
            ApprovalState::Approved => {
                self.executions
                    .complete(token, &serde_json::json!({"approved": true, "by": user}))
                    .await
            }
            _ => {
                self.executions
                    .fail(token, APPROVAL_DENIED, &format!("denied by {user}"))
                    .await
            }
        };
        match sent {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the approval wait had already ended"),
            Err(e) => tracing::error!(error = %e, "could not resume the state machine"),
        }
    }

    /// Every approval message updated in place (buttons gone), and the requester told.
    async fn show_approval(
        &self,
        rec: &RequestRecord,
        state: ApprovalState,
        by: Option<&str>,
        at: OffsetDateTime,
    ) {
        let line = message::outcome_line(state, by, at);
        crate::handlers::approval::announce_outcome(
            &self.directory.slack,
            &self.policy,
            rec,
            &line,
        )
        .await;
    }
}
