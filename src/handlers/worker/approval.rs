//! The wait for a second person's approval, before Grant.
//!
//! The AwaitApproval state (`lambda:invoke.waitForTaskToken`, its timeout the rule's
//! `approval_timeout`) hands its token to `await_approval`, which stores it on the request
//! (fenced), then posts the approval request to the rule's channel and to each approver
//! named by Slack id. **Approve** completes the token (Grant follows), **Deny** fails it.
//! However the wait ends otherwise (its timeout, a lost callback, a failed post), the
//! `approval_over` task reads the request: an approval recorded meanwhile still grants;
//! anything else expires and nothing is granted.

use time::OffsetDateTime;

use super::output::ApprovalOver;
use super::{ACTOR, Worker};
use crate::domain::RequestId;
use crate::domain::approval::ApprovalState;
use crate::domain::request::{Audit, Change, RequestRecord, Status};
use crate::error::Error;
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

    /// Posts the approval request to the rule's channel (recording where, so that the
    /// decision can update it) and to each approver named by Slack id. A channel that
    /// refuses the post fails the task: the state machine asks again (a new token, a new
    /// post), and nobody waits for approvers who were never asked.
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
        if let Some(channel) = &rec.notify_channel {
            let ts = self
                .slack
                .post_message(channel, &body, None)
                .await
                .map_err(|e| {
                    Error::Transient(format!("could not post the approval request: {e}"))
                })?;
            let changes = vec![
                Change::ApprovalChannel(channel.clone()),
                Change::ApprovalTs(ts),
            ];
            // Where the message is, so that the decision updates it; a decision written
            // meanwhile moved the version: read again and record it all the same.
            let mut current = rec.clone();
            for _ in 0..ATTEMPTS {
                match self.store.note_quietly(&current, changes.clone()).await {
                    Ok(_) => break,
                    Err(Error::StateConflict(_)) => current = self.load(&rec.id).await?,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not record the approval message");
                        break;
                    }
                }
            }
        }
        if let Some(gate) = self.policy.gate_of(&rec.rule) {
            for approver in gate.approvers.iter().filter(|a| **a != rec.slack_user_id) {
                if let Err(e) = self.slack.post_message(approver, &body, None).await {
                    tracing::warn!(error = %e, approver, "could not message an approver");
                }
            }
        }
        tracing::info!("approval requested");
        Ok(())
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
                    if let (Some(channel), Some(ts)) =
                        (&expired.approval.channel, &expired.approval.ts)
                    {
                        let ps = expired
                            .permission_set_name
                            .as_deref()
                            .unwrap_or(expired.permission_set_arn.as_str());
                        let body = message::decided(&expired, &self.policy, ps, &line);
                        if let Err(e) = self.slack.update_message(channel, ts, &body).await {
                            tracing::warn!(error = %e, "could not update the approval message");
                        }
                    }
                    let body = message::for_requester(&expired, &line);
                    if let Err(e) = self
                        .slack
                        .post_message(&expired.slack_user_id, &body, None)
                        .await
                    {
                        tracing::warn!(error = %e, "could not tell the requester");
                    }
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
