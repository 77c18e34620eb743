//! The wait for a second person's approval, before Grant.
//!
//! The AwaitApproval state (`lambda:invoke.waitForTaskToken`, its timeout the rule's
//! `approval_timeout`) hands its token to `await_approval`, which stores it on the request
//! (fenced), then posts the approval request to the rule's channel and directly to each
//! approver, named by Slack id or a member of an approver group (found in Slack by the
//! policy's mapping or their e-mail). **Approve** completes the token (Grant follows),
//! **Deny** fails it; either way every copy of the request shows the outcome.
//! However the wait ends otherwise (its timeout, a lost callback, a failed post), the
//! `approval_over` task reads the request: an approval recorded meanwhile still grants;
//! anything else expires and nothing is granted.

use time::OffsetDateTime;

use super::output::ApprovalOver;
use super::{ACTOR, Worker};
use crate::domain::RequestId;
use crate::domain::approval::{ApprovalState, MAX_DIRECT_ASKS, direct_asks};
use crate::domain::request::{Audit, Change, RequestRecord, Status};
use crate::error::Error;
use crate::handlers::approval::{announce_outcome, show_outcome};
use crate::identity::slack_users_in_groups;
use crate::slack::approval as message;

const ATTEMPTS: usize = 5;

impl Worker {
    /// Stores the wait's token, then asks the approvers (once). An approval already decided
    /// completes the token at once.
    pub async fn await_approval(&self, id: &RequestId, token: &str) -> Result<(), Error> {
        if token.is_empty() || token.len() > 4096 {
            return Err(Error::InvalidInput(
                "the await_approval task needs its task token".into(),
            ));
        }
        for _ in 0..ATTEMPTS {
            let rec = self.load(id).await?;
            match rec.approval.state {
                Some(ApprovalState::Pending) => {}
                Some(ApprovalState::Approved) => {
                    self.executions
                        .complete(token, &serde_json::json!({"approved": true}))
                        .await?;
                    return Ok(());
                }
                _ => {
                    let state = rec
                        .approval
                        .state
                        .map_or("not needed", ApprovalState::as_str);
                    self.executions
                        .fail(token, "ApprovalDenied", &format!("approval {state}"))
                        .await?;
                    return Ok(());
                }
            }
            let rec = match self
                .store
                .note_quietly(&rec, vec![Change::ApprovalToken(token.to_owned())])
                .await
            {
                Ok(r) => r,
                // Decided meanwhile: look again.
                Err(Error::StateConflict(_)) => continue,
                Err(e) => return Err(e),
            };
            if rec.approval.ts.is_none() {
                self.ask_approvers(rec).await?;
            }
            return Ok(());
        }
        Err(Error::Transient(format!(
            "request {id} kept changing while its approval wait was armed"
        )))
    }

    /// Posts the approval request to the rule's channel and directly to the approvers (those
    /// named by Slack id, and the members of the approver groups, at most
    /// [`MAX_DIRECT_ASKS`]), then records where every copy is, so that the decision updates
    /// them all. A channel that refuses the post fails the task: the state machine asks
    /// again (a new token, a new post), and nobody waits for approvers who were never asked.
    /// A decision made while the copies were being sent is shown on them here.
    async fn ask_approvers(&self, rec: RequestRecord) -> Result<(), Error> {
        let ps = match &rec.permission_set_name {
            Some(n) => n.clone(),
            None => self
                .names
                .name_of(&rec.permission_set_arn)
                .await
                .unwrap_or_else(|_| rec.permission_set_arn.as_str().to_owned()),
        };
        let body = message::request(&rec, &self.policy, &ps);
        let mut changes = Vec::new();
        if let Some(channel) = &rec.notify_channel {
            let posted = self.slack.post(channel, &body, None).await.map_err(|e| {
                Error::Transient(format!("could not post the approval request: {e}"))
            })?;
            changes.push(Change::ApprovalChannel(posted.channel));
            changes.push(Change::ApprovalTs(posted.ts));
        }
        let approvers = self.direct_approvers(&rec).await;
        let posts = approvers.iter().map(|approver| async {
            match self.slack.post(approver, &body, None).await {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, approver = approver.as_str(), "could not message an approver");
                    None
                }
            }
        });
        let copies: Vec<_> = futures_util::future::join_all(posts)
            .await
            .into_iter()
            .flatten()
            .collect();
        tracing::info!(asked_directly = copies.len(), "approval requested");
        changes.push(Change::ApprovalCopies(copies));
        // A decision written meanwhile moved the version: read again and record it all the
        // same, then show that decision on the messages it could not update.
        let mut current = rec.clone();
        for _ in 0..ATTEMPTS {
            match self.store.note_quietly(&current, changes.clone()).await {
                Ok(recorded) => {
                    if let Some(state) = recorded
                        .approval
                        .state
                        .filter(|s| *s != ApprovalState::Pending)
                    {
                        let at = recorded.approval.at.unwrap_or_else(OffsetDateTime::now_utc);
                        let line =
                            message::outcome_line(state, recorded.approval.by.as_deref(), at);
                        show_outcome(&self.slack, &self.policy, &recorded, &line).await;
                    }
                    break;
                }
                Err(Error::StateConflict(_)) => current = self.load(&rec.id).await?,
                Err(e) => {
                    tracing::warn!(error = %e, "could not record the approval messages");
                    break;
                }
            }
        }
        Ok(())
    }

    /// The approvers to ask directly ([`direct_asks`]): the rule's Slack ids, and the Slack
    /// users of its approver groups' members.
    async fn direct_approvers(&self, rec: &RequestRecord) -> Vec<String> {
        let Some(gate) = self.policy.gate_of(&rec.rule) else {
            return Vec::new();
        };
        let members = if gate.approver_groups.is_empty() {
            Vec::new()
        } else {
            slack_users_in_groups(
                &self.slack,
                &self.sso,
                &self.instance,
                &self.policy,
                &gate.approver_groups,
                Some(&rec.team_id),
                MAX_DIRECT_ASKS,
            )
            .await
        };
        direct_asks(
            &gate.approvers,
            &members,
            (&rec.slack_user_id, &rec.sso_user_name),
            MAX_DIRECT_ASKS,
        )
    }

    /// After the wait ended without a callback: an approval recorded meanwhile grants;
    /// otherwise the request expires (nothing granted) and the requester is told.
    pub async fn approval_over(&self, id: &RequestId) -> Result<ApprovalOver, Error> {
        for _ in 0..ATTEMPTS {
            let rec = self.load(id).await?;
            match rec.approval.state {
                Some(ApprovalState::Approved) => return Ok(ApprovalOver { approved: true }),
                // Only a gated request waits for approval: never grant one that has no
                // approval state (it should not be here).
                None => return Ok(ApprovalOver { approved: false }),
                Some(ApprovalState::Denied | ApprovalState::Expired) => {
                    return Ok(ApprovalOver { approved: false });
                }
                Some(ApprovalState::Pending) => {}
            }
            let now = OffsetDateTime::now_utc();
            let audit = Audit {
                event: "approval_expired",
                actor: ACTOR,
                detail: "nobody decided in time; nothing was granted".into(),
            };
            let changes = vec![
                Change::ApprovalState(ApprovalState::Expired),
                Change::ApprovalAt(now),
                Change::RevokedAt(now),
            ];
            match self
                .store
                .advance(&rec, Status::Revoked, changes, audit)
                .await
            {
                Ok(expired) => {
                    tracing::info!("approval expired");
                    let line = message::outcome_line(ApprovalState::Expired, None, now);
                    announce_outcome(&self.slack, &self.policy, &expired, &line).await;
                    self.refresh_home(&expired).await;
                    return Ok(ApprovalOver { approved: false });
                }
                // Decided meanwhile: look again.
                Err(Error::StateConflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Transient(format!(
            "request {id} kept changing while its approval expired"
        )))
    }
}
