//! The review step, worker side: the review request posted once the report is ready, and
//! the reminders and escalations of the reviews still pending (run with the reconcile, from
//! the pending-review index: no Scan). Who may review and how it is recorded is the
//! webhook's ([`crate::handlers::webhook::review`]).

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{ACTOR, Worker};
use crate::domain::request::{Audit, Change, RequestRecord};
use crate::domain::review::{Digest, Due, due};
use crate::error::Error;
use crate::policy::{Escalation, ReviewPolicy};
use crate::report::render::View;
use crate::slack::review::{self as message, about, channel_link, facts};

/// What the report leaves on the request for its reviewer and the audit export.
pub fn digest_of(view: &View<'_>, mailed_to: &str) -> Digest {
    let mut flags = [0; 4];
    for (severity, n) in &view.severities {
        flags[*severity as usize] += n;
    }
    Digest {
        events: view.total,
        flags,
        top: view
            .flags
            .iter()
            .take(Digest::TOP)
            .map(|f| {
                format!(
                    "[{}] {} ({}:{}) ×{}{}",
                    f.severity.as_str(),
                    f.title,
                    f.service,
                    f.action,
                    f.count,
                    if f.failed { ", failed" } else { "" }
                )
            })
            .collect(),
        left_behind: view.left_behind.len(),
        after_end: view.after_end.len(),
        mailed_to: mailed_to.to_owned(),
    }
}

/// `<@U1>, <@U2> and members of SRE`: who is asked to review.
fn reviewers(review: &ReviewPolicy) -> String {
    let mut who: Vec<String> = review.reviewers.iter().map(|u| format!("<@{u}>")).collect();
    who.extend(
        review
            .reviewer_groups
            .iter()
            .map(|g| format!("members of {}", crate::slack::escape(g))),
    );
    who.join(", ")
}

impl Worker {
    /// Posts the review request, once: only for a request waiting for review whose message
    /// was not posted yet. Best effort (a failure is logged; the reconcile posts it later).
    /// Returns the record as it is afterwards.
    pub(crate) async fn request_review(&self, rec: RequestRecord) -> RequestRecord {
        let Some(review) = &self.policy.review else {
            return rec;
        };
        if !rec.review.pending || rec.review.ts.is_some() {
            return rec;
        }
        let digest = rec.digest.clone().unwrap_or_default();
        let body = message::request(&about(&rec, &self.policy), &facts(&rec, &digest));
        let ts = match self.slack.post_message(&review.channel, &body, None).await {
            Ok(ts) => ts,
            Err(e) => {
                tracing::warn!(request = %rec.id, error = %e, "could not post the review request");
                return rec;
            }
        };
        let mut current = rec;
        for _ in 0..3 {
            let changes = vec![
                Change::ReviewChannel(review.channel.clone()),
                Change::ReviewTs(ts.clone()),
                Change::ReviewRequestedAt(OffsetDateTime::now_utc()),
            ];
            let audit = Audit {
                event: "review_requested",
                actor: ACTOR,
                detail: format!("in {} ({ts})", review.channel),
            };
            match self.store.note(&current, changes, audit).await {
                Ok(updated) => return updated,
                Err(Error::StateConflict(_)) => match self.store.get(&current.id).await {
                    Ok(Some(again)) if again.review.ts.is_none() => current = again,
                    Ok(Some(again)) => return again,
                    _ => return current,
                },
                Err(e) => {
                    tracing::warn!(request = %current.id, error = %e, "could not record the review request");
                    return current;
                }
            }
        }
        current
    }

    /// Replaces a pending review's message with what is known now (the look after the end
    /// found use of the session). Best effort; a reviewed request's message is left as it is.
    pub(crate) async fn update_review_request(&self, rec: &RequestRecord) {
        let (Some(channel), Some(ts)) = (&rec.review.channel, &rec.review.ts) else {
            return;
        };
        if rec.review.outcome.is_some() {
            return;
        }
        let digest = rec.digest.clone().unwrap_or_default();
        let body = message::request(&about(rec, &self.policy), &facts(rec, &digest));
        if let Err(e) = self.slack.update_message(channel, ts, &body).await {
            tracing::warn!(request = %rec.id, error = %e, "could not update the review request");
        }
    }

    /// The pending reviews at `now`: post what was never posted, remind after the policy's
    /// `within`, escalate after twice that. Each reminder and escalation is claimed (a fenced
    /// write) before it is sent, so a second run never sends it again. Returns a summary for
    /// the reconcile's output; failures go in `errors`.
    pub(crate) async fn remind_reviews(
        &self,
        now: OffsetDateTime,
        errors: &mut Vec<String>,
    ) -> Value {
        let Some(review) = &self.policy.review else {
            return Value::Null;
        };
        let pending = match self.store.pending_reviews().await {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("reading the pending reviews: {e}"));
                return Value::Null;
            }
        };
        let (mut posted, mut reminded, mut escalated) = (Vec::new(), Vec::new(), Vec::new());
        for rec in &pending {
            let id = rec.id.as_str().to_owned();
            match due(rec, review.within, now) {
                Due::Wait => {}
                Due::Post => {
                    if self.request_review(rec.clone()).await.review.ts.is_some() {
                        posted.push(id);
                    } else {
                        errors.push(format!("posting the review request of {id} failed"));
                    }
                }
                Due::Remind => match self.remind(review, rec, now).await {
                    Ok(()) => reminded.push(id),
                    Err(e) => errors.push(format!("reminding the review of {id}: {e}")),
                },
                Due::Escalate => match self.escalate(review, rec, now).await {
                    Ok(()) => escalated.push(id),
                    Err(e) => errors.push(format!("escalating the review of {id}: {e}")),
                },
            }
        }
        json!({
            "pending": pending.len(),
            "posted": posted,
            "reminded": reminded,
            "escalated": escalated,
        })
    }

    async fn remind(
        &self,
        review: &ReviewPolicy,
        rec: &RequestRecord,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let audit = Audit {
            event: "review_reminded",
            actor: ACTOR,
            detail: format!("pending since the report, longer than {}", review.within),
        };
        let rec = self
            .store
            .note(rec, vec![Change::ReviewRemindedAt(now)], audit)
            .await?;
        let channel = rec.review.channel.as_deref().unwrap_or(&review.channel);
        let since = rec.reported_at.unwrap_or(now);
        self.slack
            .post_message(
                channel,
                &message::reminder(&reviewers(review), since),
                rec.review.ts.as_deref(),
            )
            .await
            .map_err(|e| Error::Transient(format!("the reminder was not posted: {e}")))?;
        Ok(())
    }

    async fn escalate(
        &self,
        review: &ReviewPolicy,
        rec: &RequestRecord,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let audit = Audit {
            event: "review_escalated",
            actor: ACTOR,
            detail: format!(
                "pending longer than twice {}; escalated to {}",
                review.within,
                match &review.escalate_to {
                    Some(Escalation::Channel(c)) => c.as_str(),
                    Some(Escalation::Mention(m)) => m.as_str(),
                    None => review.channel.as_str(),
                }
            ),
        };
        let rec = self
            .store
            .note(rec, vec![Change::ReviewEscalatedAt(now)], audit)
            .await?;
        // The alarm's metric counts this line.
        tracing::warn!(request = %rec.id, "review escalated");
        let review_channel = rec.review.channel.as_deref().unwrap_or(&review.channel);
        let (channel, mention) = match &review.escalate_to {
            Some(Escalation::Channel(c)) => (c.as_str(), None),
            Some(Escalation::Mention(m)) => (review_channel, Some(m.as_str())),
            None => (review_channel, None),
        };
        let link = channel_link(&rec.team_id, review_channel);
        let body = message::escalation(
            &about(&rec, &self.policy),
            mention,
            rec.reported_at.unwrap_or(now),
            Some(&link),
        );
        self.slack
            .post_message(channel, &body, None)
            .await
            .map_err(|e| Error::Transient(format!("the escalation was not posted: {e}")))?;
        Ok(())
    }
}
