//! A Break Glass click. The button is reusable: each person's button (message, account,
//! permission set) points at the request it last started; while that request is live a click
//! answers with it, once its access has ended a click is a new request (checked against the
//! policy again). The same click delivered twice maps to one request and one execution.

use time::OffsetDateTime;

use super::{Reply, Webhook};
use crate::domain::RequestId;
use crate::domain::approval::ApprovalState;
use crate::domain::request::{RequestRecord, Status};
use crate::slack;
use crate::slack::messages::slack_time;
use crate::slack::payload::{Click, Origin};

impl Webhook {
    /// A Break Glass click. The button is reusable: while the same person's request from it
    /// is live, a click answers with that request; once its access has ended, a click
    /// starts a new request (checked against the policy again). The same click delivered
    /// twice maps to one request and one execution.
    pub(super) async fn click(&self, click: Click, now: OffsetDateTime) -> Reply {
        let id = request_id(&click);
        tracing::Span::current().record("request", id.as_str());
        let origin = Origin {
            team_id: click.team_id.clone(),
            api_app_id: click.api_app_id.clone(),
            user_id: click.user_id.clone(),
        };
        let button = match self.store.button(&button_key(&click)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "could not read the button");
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
                std::slice::from_ref(&click.account_id),
                &click.permission_set_arn,
                None,
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
    pub(super) async fn while_live(
        &self,
        prev: &RequestId,
        clicked: &RequestId,
        now: OffsetDateTime,
    ) -> Option<Reply> {
        let rec = match self.store.get(prev).await {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(previous = %prev, error = %e, "could not read the button's last request");
                return None;
            }
        };
        if !live(&rec, now) {
            return None;
        }
        if rec.status == Status::Requested {
            // Recorded, but its execution may have failed to start: start it (idempotent).
            let started = self.run(&rec).await;
            let waiting = rec.approval.state == Some(ApprovalState::Pending);
            return Some(if waiting && prev != clicked {
                Reply::ephemeral(&already(&rec, false))
            } else {
                started
            });
        }
        Some(Reply::ephemeral(&already(&rec, prev == clicked)))
    }
}

/// Whether a request still holds (or is about to hold) its access: a click on its button
/// then starts nothing new. Ended means the access was revoked, ended early or expired,
/// even while the old execution still waits for CloudTrail. A request stuck before its
/// grant for an hour (its execution never ran) past any approval it waited for no longer
/// blocks the button.
pub fn live(rec: &RequestRecord, now: OffsetDateTime) -> bool {
    match rec.status {
        Status::Requested | Status::Granting => {
            let approval = rec.approval.timeout.map_or(0, |t| t.as_secs() as i64);
            now - rec.requested_at < time::Duration::HOUR + time::Duration::seconds(approval)
        }
        Status::Granted => rec.ended_by.is_none() && rec.expires_at.is_some_and(|e| e > now),
        Status::Revoked | Status::Reported => false,
    }
}

/// The answer to a click while the button's request is live. The same click delivered
/// again gets the first delivery's answer.
pub(super) fn already(rec: &RequestRecord, same_click: bool) -> String {
    match (rec.status, rec.expires_at) {
        _ if rec.approval.state == Some(ApprovalState::Pending) => {
            format!("Your request `{}` is waiting for approval.", rec.id)
        }
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
