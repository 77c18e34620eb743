//! **Reviewed — fine** and **Needs follow-up** (with its note's modal): only the policy's
//! reviewers, never the requester (the two-person rule), and once. The outcome is a fenced
//! change of the request with its audit entry; the review message is updated in place and the
//! request's thread hears it. [`may_review`] is the pure decision; every refusal is audited.

use std::collections::BTreeSet;

use http::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

use super::{Reply, Webhook};
use crate::domain::RequestId;
use crate::domain::request::{Audit, Change, RequestRecord};
use crate::domain::review::{MayReview, Outcome, may_review};
use crate::error::Error;
use crate::policy::ReviewPolicy;
use crate::slack::payload::{ReviewClick, ReviewNote};
use crate::slack::review::{self as message, MAX_NOTE_CHARS, about, facts};

/// Why a review was not recorded: the answer for the reviewer.
enum NotRecorded {
    /// Say this, change nothing.
    Answer(String),
}

impl Webhook {
    /// A click on a review button. **Needs follow-up** opens the note's modal (after the same
    /// checks, so that nobody who may not review even sees it).
    pub(super) async fn review(&self, r: ReviewClick, now: OffsetDateTime) -> Reply {
        let user = r.origin.user_id.clone();
        let rec = match self.review_target(&r.request_id, &user).await {
            Ok(rec) => rec,
            Err(NotRecorded::Answer(why)) => return Reply::ephemeral(&why),
        };
        if r.follow_up {
            let Some(trigger) = &r.trigger_id else {
                return Reply::ephemeral("Slack sent no trigger for the note; click again.");
            };
            return match self
                .directory
                .slack
                .open_view(trigger, &message::note_modal(rec.id.as_str()))
                .await
            {
                Ok(()) => Reply::bare(StatusCode::OK),
                Err(e) => {
                    tracing::error!(error = %e, "views.open failed");
                    Reply::ephemeral("Could not open the note; try again in a moment.")
                }
            };
        }
        match self
            .record_review(rec, &user, Outcome::Fine, None, now)
            .await
        {
            Ok(answer) | Err(NotRecorded::Answer(answer)) => Reply::ephemeral(&answer),
        }
    }

    /// The follow-up note's modal, submitted: checked again from scratch. A refusal shows on
    /// the note's field; success closes the modal.
    pub(super) async fn review_note(&self, n: ReviewNote, now: OffsetDateTime) -> Reply {
        let user = n.origin.user_id.clone();
        let field_error = |why: String| {
            Reply::json(json!({"response_action": "errors", "errors": {"note": why}}))
        };
        let note = n.note.as_deref().map(str::trim).unwrap_or_default();
        if note.is_empty() {
            return field_error("Say what needs following up.".into());
        }
        if note.chars().count() > MAX_NOTE_CHARS {
            return field_error(format!("At most {MAX_NOTE_CHARS} characters."));
        }
        let rec = match self.review_target(&n.request_id, &user).await {
            Ok(rec) => rec,
            Err(NotRecorded::Answer(why)) => return field_error(why),
        };
        match self
            .record_review(rec, &user, Outcome::FollowUp, Some(note), now)
            .await
        {
            Ok(_) => Reply::bare(StatusCode::OK),
            Err(NotRecorded::Answer(why)) => field_error(why),
        }
    }

    /// The request a review button names, if `user` may review it now; otherwise the answer
    /// (refusals of the two-person rule and of non-reviewers are audited).
    async fn review_target(
        &self,
        request_id: &str,
        user: &str,
    ) -> Result<RequestRecord, NotRecorded> {
        let answer = |s: &str| NotRecorded::Answer(s.to_owned());
        let Ok(id) = RequestId::parse(request_id) else {
            return Err(answer("This button does not name a break-glass request."));
        };
        tracing::Span::current().record("request", id.as_str());
        let Some(policy) = &self.policy.review else {
            return Err(answer(
                "Reviews are not set up: the break-glass policy has no [review] section.",
            ));
        };
        let rec = match self.store.get(&id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(answer("This break-glass request does not exist.")),
            Err(e) => {
                tracing::error!(error = %e, "could not read the request");
                return Err(answer("Could not read the request; try again in a moment."));
            }
        };
        let is_reviewer = self.is_reviewer(policy, user).await;
        self.judge(&rec, user, is_reviewer).await?;
        Ok(rec)
    }

    /// [`may_review`], with its refusals audited and answered.
    async fn judge(
        &self,
        rec: &RequestRecord,
        user: &str,
        is_reviewer: bool,
    ) -> Result<(), NotRecorded> {
        let why = match may_review(rec, user, is_reviewer) {
            MayReview::Yes => return Ok(()),
            MayReview::Already { by, outcome } => {
                return Err(NotRecorded::Answer(format!(
                    "Already {outcome} by <@{}>; a review is recorded once.",
                    crate::slack::escape(&by)
                )));
            }
            MayReview::NotReported => {
                return Err(NotRecorded::Answer(
                    "There is nothing to review yet: the report is not ready.".into(),
                ));
            }
            MayReview::OwnUse => (
                "review of their own use refused (two-person rule)",
                "You cannot review your own use of break glass: a second person must.",
            ),
            MayReview::NotReviewer => (
                "review refused: not one of the policy's reviewers",
                "Only the policy's reviewers can review uses of break glass.",
            ),
        };
        tracing::warn!(user, reason = why.0, "review refused");
        self.audit_denied(&rec.id, user, why.0).await;
        Err(NotRecorded::Answer(why.1.to_owned()))
    }

    /// Whether `user` is one of the policy's reviewers: by Slack id, or (only when the policy
    /// names groups) by their Identity Center groups. An identity that cannot be resolved is
    /// not a reviewer.
    async fn is_reviewer(&self, policy: &ReviewPolicy, user: &str) -> bool {
        if policy.reviewers.contains(user) {
            return true;
        }
        if policy.reviewer_groups.is_empty() {
            return false;
        }
        match self.directory.resolve(&self.policy, user).await {
            Ok(person) => policy.is_reviewer(user, &person.groups),
            Err(e) => {
                tracing::warn!(error = ?e, "no identity for a would-be reviewer");
                policy.is_reviewer(user, &BTreeSet::new())
            }
        }
    }

    /// Records the review (fenced; re-read and re-judged if the request moved meanwhile),
    /// then updates the review message and tells the request's thread. The answer for the
    /// reviewer.
    async fn record_review(
        &self,
        mut rec: RequestRecord,
        user: &str,
        outcome: Outcome,
        note: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<String, NotRecorded> {
        for _ in 0..4 {
            let mut changes = vec![
                Change::ReviewOutcome(outcome),
                Change::ReviewedBy(user.to_owned()),
                Change::ReviewedAt(now),
                Change::ReviewPending(false),
            ];
            if let Some(n) = note {
                changes.push(Change::ReviewNote(n.to_owned()));
            }
            let audit = Audit {
                event: "reviewed",
                actor: user,
                detail: match note {
                    Some(n) => format!("{}: {n}", outcome.label()),
                    None => outcome.label().to_owned(),
                },
            };
            match self.store.note(&rec, changes, audit).await {
                Ok(updated) => {
                    tracing::info!(user, outcome = outcome.as_str(), "reviewed");
                    self.show_review(&updated, outcome, user, now, note).await;
                    tokio::join!(
                        self.refresh_home(user),
                        self.refresh_home(&updated.slack_user_id)
                    );
                    return Ok(format!("Recorded: {}.", outcome.label()));
                }
                Err(Error::StateConflict(_)) => {
                    rec = match self.store.get(&rec.id).await {
                        Ok(Some(r)) => r,
                        _ => break,
                    };
                    // Someone else may have reviewed it meanwhile: judge again (a reviewer
                    // stays a reviewer within one click).
                    self.judge(&rec, user, true).await?;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not record the review");
                    break;
                }
            }
        }
        Err(NotRecorded::Answer(
            "Could not record the review; try again in a moment.".into(),
        ))
    }

    /// The review message updated in place (buttons gone), and a line in the request's
    /// thread. Best effort: the review is recorded whatever Slack says.
    async fn show_review(
        &self,
        rec: &RequestRecord,
        outcome: Outcome,
        user: &str,
        at: OffsetDateTime,
        note: Option<&str>,
    ) {
        let slack = &self.directory.slack;
        let line = message::outcome_line(outcome, user, at, note);
        if let (Some(channel), Some(ts)) = (&rec.review.channel, &rec.review.ts) {
            let digest = rec.digest.clone().unwrap_or_default();
            let body = message::reviewed(&about(rec, &self.policy), &facts(rec, &digest), &line);
            if let Err(e) = slack.update_message(channel, ts, &body).await {
                tracing::warn!(error = %e, "could not update the review message");
            }
        }
        if let (Some(channel), Some(thread)) = (&rec.notify_channel, &rec.thread_ts) {
            let body = message::outcome_message(&line);
            if let Err(e) = slack.post_message(channel, &body, Some(thread)).await {
                tracing::warn!(error = %e, "could not tell the request's thread");
            }
        }
    }
}
