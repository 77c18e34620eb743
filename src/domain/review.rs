//! The review of a break-glass use by a second person: what is kept of it on the request,
//! what the report leaves for the reviewer ([`Digest`]), who may review ([`may_review`]), and
//! when a pending review is reminded or escalated ([`due`]). Pure: the clock is passed in,
//! the callers write.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Duration;
use super::request::{RequestRecord, Status};

/// How a reviewer judged a use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// **Reviewed — fine**.
    Fine,
    /// **Needs follow-up**, with a note.
    FollowUp,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Fine => "fine",
            Outcome::FollowUp => "follow_up",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fine" => Some(Outcome::Fine),
            "follow_up" => Some(Outcome::FollowUp),
            _ => None,
        }
    }
    /// For people: "reviewed — fine", "needs follow-up".
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Fine => "reviewed — fine",
            Outcome::FollowUp => "needs follow-up",
        }
    }
}

/// The review as stored on the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    /// Waiting for a reviewer (the request is in the pending-review index).
    pub pending: bool,
    /// The review message: its channel and `ts` (for `chat.update`), and when it was posted.
    pub channel: Option<String>,
    pub ts: Option<String>,
    pub requested_at: Option<OffsetDateTime>,
    pub outcome: Option<Outcome>,
    /// The reviewer's Slack user id.
    pub by: Option<String>,
    pub at: Option<OffsetDateTime>,
    pub note: Option<String>,
    pub reminded_at: Option<OffsetDateTime>,
    pub escalated_at: Option<OffsetDateTime>,
}

/// What the report found, kept on the request for the review message and the audit export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub events: usize,
    /// Flagged events by severity: critical, high, medium, low.
    pub flags: [usize; 4],
    /// The most severe flags, one line each (at most [`Digest::TOP`]).
    pub top: Vec<String>,
    pub left_behind: usize,
    pub after_end: usize,
    /// Where the report was mailed.
    pub mailed_to: String,
}

impl Digest {
    pub const TOP: usize = 3;

    /// "1 critical, 2 high" (or "none").
    pub fn severities(&self) -> String {
        let names = ["critical", "high", "medium", "low"];
        let parts: Vec<String> = self
            .flags
            .iter()
            .zip(names)
            .filter(|(n, _)| **n > 0)
            .map(|(n, s)| format!("{n} {s}"))
            .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Whether `user` may record a review of `rec` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MayReview {
    Yes,
    /// Recorded already: a second click or a second reviewer changes nothing.
    Already {
        by: String,
        outcome: &'static str,
    },
    /// The requester reviewing their own use (the two-person rule).
    OwnUse,
    /// Not one of the policy's reviewers.
    NotReviewer,
    /// There is nothing to review yet (no report).
    NotReported,
}

/// The pure decision behind the review buttons. `is_reviewer` is the policy's answer for
/// `user` (by Slack id or Identity Center group).
pub fn may_review(rec: &RequestRecord, user: &str, is_reviewer: bool) -> MayReview {
    if let (Some(by), Some(outcome)) = (&rec.review.by, rec.review.outcome) {
        return MayReview::Already {
            by: by.clone(),
            outcome: outcome.label(),
        };
    }
    if rec.slack_user_id == user {
        return MayReview::OwnUse;
    }
    if !is_reviewer {
        return MayReview::NotReviewer;
    }
    if rec.status != Status::Reported {
        return MayReview::NotReported;
    }
    MayReview::Yes
}

/// What a pending review needs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet.
    Wait,
    /// The review message was never posted (the report's task stopped before it): post it.
    Post,
    /// Pending for longer than `within`: remind the review channel.
    Remind,
    /// Pending for longer than twice `within`: escalate.
    Escalate,
}

/// How long the report's own task has to post the review message before the reconcile run
/// posts it instead (so that the two do not both post it).
pub const POST_GRACE: time::Duration = time::Duration::minutes(5);

/// What a pending review needs at `now`, counted from the report (`reported_at`). A review
/// is reminded once and escalated once (never reminded after it was escalated); a reviewed
/// request needs nothing. A review message that could not be posted does not stop the clock:
/// it is posted again, and escalated all the same after twice `within`.
pub fn due(rec: &RequestRecord, within: Duration, now: OffsetDateTime) -> Due {
    let r = &rec.review;
    if !r.pending || r.outcome.is_some() {
        return Due::Wait;
    }
    let Some(since) = rec.reported_at.or(r.requested_at) else {
        return Due::Wait;
    };
    let within = time::Duration::seconds(within.as_secs() as i64);
    let waited = now - since;
    let escalate = waited >= within * 2 && r.escalated_at.is_none();
    if r.ts.is_none() {
        return if escalate {
            Due::Escalate
        } else if waited >= POST_GRACE {
            Due::Post
        } else {
            Due::Wait
        };
    }
    if escalate {
        Due::Escalate
    } else if waited >= within && r.reminded_at.is_none() && r.escalated_at.is_none() {
        Due::Remind
    } else {
        Due::Wait
    }
}

/// The UTC day a request was made, `YYYY-MM-DD`: the audit export's index key.
pub fn day_of(t: OffsetDateTime) -> String {
    let d = t.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_util::from_rfc3339;

    fn reported() -> RequestRecord {
        let mut r = crate::aws::store::tests::sample();
        r.status = Status::Reported;
        r.reported_at = from_rfc3339("2026-11-24T10:00:00Z");
        r.review = Review {
            pending: true,
            channel: Some("C0REVIEW".into()),
            ts: Some("1.000001".into()),
            ..Review::default()
        };
        r
    }

    fn at(s: &str) -> OffsetDateTime {
        from_rfc3339(s).unwrap()
    }

    #[test]
    fn the_requester_never_reviews_their_own_use() {
        let r = reported();
        assert_eq!(may_review(&r, &r.slack_user_id, true), MayReview::OwnUse);
        assert_eq!(may_review(&r, "U0OTHER", false), MayReview::NotReviewer);
        assert_eq!(may_review(&r, "U0OTHER", true), MayReview::Yes);
        let mut granted = r.clone();
        granted.status = Status::Granted;
        assert_eq!(
            may_review(&granted, "U0OTHER", true),
            MayReview::NotReported
        );
    }

    #[test]
    fn a_recorded_review_stays() {
        let mut r = reported();
        r.review.by = Some("U0REVIEWER".into());
        r.review.outcome = Some(Outcome::Fine);
        let already = MayReview::Already {
            by: "U0REVIEWER".into(),
            outcome: "reviewed — fine",
        };
        for user in ["U0REVIEWER", "U0SECOND", r.slack_user_id.as_str()] {
            assert_eq!(may_review(&r, user, true), already);
        }
    }

    #[test]
    fn reminded_after_within_and_escalated_after_twice() {
        let within = Duration::from_secs(3600);
        let mut r = reported();
        assert_eq!(due(&r, within, at("2026-11-24T10:59:59Z")), Due::Wait);
        assert_eq!(due(&r, within, at("2026-11-24T11:00:00Z")), Due::Remind);
        r.review.reminded_at = Some(at("2026-11-24T11:00:00Z"));
        assert_eq!(due(&r, within, at("2026-11-24T11:30:00Z")), Due::Wait);
        assert_eq!(due(&r, within, at("2026-11-24T12:00:00Z")), Due::Escalate);
        r.review.escalated_at = Some(at("2026-11-24T12:00:00Z"));
        assert_eq!(due(&r, within, at("2026-11-25T12:00:00Z")), Due::Wait);
        // Escalation due without a reminder first (the reconciler was down): escalate.
        let fresh = reported();
        assert_eq!(
            due(&fresh, within, at("2026-11-24T13:00:00Z")),
            Due::Escalate
        );
        // A review recorded meanwhile needs nothing.
        let mut done = reported();
        done.review.outcome = Some(Outcome::Fine);
        assert_eq!(due(&done, within, at("2026-11-25T13:00:00Z")), Due::Wait);
        // A review message never posted is posted by the reconcile once the report's own
        // task had its chance, and escalated all the same when nobody could see it.
        let mut lost = reported();
        lost.review.ts = None;
        assert_eq!(due(&lost, within, at("2026-11-24T10:00:01Z")), Due::Wait);
        assert_eq!(due(&lost, within, at("2026-11-24T10:05:00Z")), Due::Post);
        assert_eq!(
            due(&lost, within, at("2026-11-24T12:00:00Z")),
            Due::Escalate
        );
        // Escalated first (a short `within`, an hourly run): never reminded afterwards.
        let mut escalated = reported();
        escalated.review.escalated_at = Some(at("2026-11-24T12:00:00Z"));
        assert_eq!(
            due(&escalated, within, at("2026-11-24T13:00:00Z")),
            Due::Wait
        );
    }

    #[test]
    fn digest_severities() {
        let d = Digest {
            flags: [1, 0, 2, 0],
            ..Digest::default()
        };
        assert_eq!(d.severities(), "1 critical, 2 medium");
        assert_eq!(Digest::default().severities(), "none");
    }

    #[test]
    fn days_are_utc() {
        assert_eq!(day_of(at("2026-11-24T23:59:59Z")), "2026-11-24");
        assert_eq!(day_of(at("2026-11-25T00:30:00+01:00")), "2026-11-24");
    }
}
