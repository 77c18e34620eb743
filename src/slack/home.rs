//! The App Home tab's view (pure): the user's live access with **End access now** and
//! **Extend** (the same buttons as the thread's), their recent requests with outcome and
//! review; for responders and reviewers also everyone's live access, and for reviewers the
//! reviews waiting, oldest first, with the review buttons. All user-supplied text is escaped.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::escape;
use super::messages::slack_time;
use super::payload::{
    END_ACCESS_ACTION, EXTEND_ACCESS_ACTION, REVIEW_FOLLOW_UP_ACTION, REVIEW_OK_ACTION,
};
use crate::domain::approval::ApprovalState;
use crate::domain::request::{RequestRecord, Status};
use crate::policy::Policy;

/// At most this many entries in each list (a view holds at most 100 blocks: 4 headers, 2
/// sections, a context and at most 2 × 12 + 12 + 2 × 12 + 2 × 12 in the lists).
pub const MOST: usize = 12;

/// What one user's Home shows.
pub struct Home<'a> {
    pub user: &'a str,
    /// The user's live access.
    pub mine_live: Vec<&'a RequestRecord>,
    /// The user's recent requests, newest first.
    pub mine_recent: Vec<&'a RequestRecord>,
    /// Everyone's live access (for responders and reviewers).
    pub everyone_live: Option<Vec<&'a RequestRecord>>,
    /// The reviews waiting, oldest first (for reviewers).
    pub pending: Option<Vec<&'a RequestRecord>>,
    /// A responder: may end or extend anyone's access (others only see it).
    pub responder: bool,
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": text}})
}

fn target(r: &RequestRecord, policy: &Policy) -> String {
    let account = super::accounts_mrkdwn(&r.accounts(), policy);
    let ps = r
        .permission_set_name
        .as_deref()
        .unwrap_or(r.permission_set_arn.as_str());
    format!("{account} as *{}*", escape(ps))
}

fn lease_buttons(r: &RequestRecord, i: usize, prefix: &str) -> Value {
    json!({"type": "actions", "block_id": format!("{prefix}_{i}"), "elements": [
        {"type": "button", "action_id": END_ACCESS_ACTION, "value": r.id.as_str(), "style": "danger",
         "text": {"type": "plain_text", "text": "End access now"},
         "confirm": {"title": {"type": "plain_text", "text": "End access now?"},
                     "text": {"type": "plain_text", "text": "The assignment is removed at once, and the access cannot be extended any more."},
                     "confirm": {"type": "plain_text", "text": "End access"},
                     "deny": {"type": "plain_text", "text": "Keep it"}}},
        {"type": "button", "action_id": EXTEND_ACCESS_ACTION, "value": r.id.as_str(),
         "text": {"type": "plain_text", "text": "Extend"}}
    ]})
}

/// How a request went: its status, how it ended, and its review.
fn outcome(r: &RequestRecord) -> String {
    let approval = (r.approval.state, r.approval.by.as_deref());
    let how = match r.status {
        Status::Requested if approval.0 == Some(ApprovalState::Pending) => {
            "waiting for approval".to_owned()
        }
        Status::Revoked if approval.0 == Some(ApprovalState::Denied) => {
            format!("denied by <@{}>", escape(approval.1.unwrap_or_default()))
        }
        Status::Revoked if approval.0 == Some(ApprovalState::Expired) => {
            "expired unapproved".to_owned()
        }
        Status::Requested | Status::Granting => "starting".to_owned(),
        Status::Granted if r.ended_by.is_some() => "ending".to_owned(),
        Status::Granted => "live".to_owned(),
        Status::Revoked | Status::Reported => {
            if r.revoke_failed_at.is_some() {
                "revoke failed".to_owned()
            } else if let Some(by) = &r.ended_by {
                format!("ended early by <@{}>", escape(by))
            } else if r.granted_at.is_some() {
                "expired".to_owned()
            } else {
                "never granted".to_owned()
            }
        }
    };
    let review = match (&r.review.outcome, &r.review.by, r.review.pending) {
        (Some(o), Some(by), _) => format!("; {} by <@{}>", o.label(), escape(by)),
        (_, _, true) => "; review pending".to_owned(),
        _ => String::new(),
    };
    format!("{how}{review}")
}

/// The Home view.
pub fn view(h: &Home<'_>, policy: &Policy, now: OffsetDateTime) -> Value {
    let mut blocks = vec![header("Break Glass")];
    blocks.push(section(
        "Emergency access to AWS: time-boxed, reported, and reviewed by a second person. Break glass from a Break Glass button or `/break-glass`."
            .into(),
    ));
    blocks.push(header("Your access now"));
    if h.mine_live.is_empty() {
        blocks.push(section("_You hold no break-glass access._".into()));
    }
    for (i, r) in h.mine_live.iter().take(MOST).enumerate() {
        let until = r.expires_at.map(slack_time).unwrap_or_default();
        blocks.push(section(format!(
            ":unlock: {} until {until}",
            target(r, policy)
        )));
        blocks.push(lease_buttons(r, i, "mine"));
    }
    blocks.push(header("Your recent requests"));
    if h.mine_recent.is_empty() {
        blocks.push(section("_None in the last week._".into()));
    }
    // One section a request: a section's text is capped at 3 000 characters.
    for r in h.mine_recent.iter().take(MOST) {
        blocks.push(section(format!(
            "• {} {}: {} (`{}`)",
            slack_time(r.requested_at),
            target(r, policy),
            outcome(r),
            r.id.as_str()
        )));
    }
    if let Some(live) = &h.everyone_live {
        blocks.push(header("Everyone's live access"));
        if live.is_empty() {
            blocks.push(section("_Nobody holds break-glass access._".into()));
        }
        for (i, r) in live.iter().take(MOST).enumerate() {
            let until = r.expires_at.map(slack_time).unwrap_or_default();
            blocks.push(section(format!(
                "<@{}> ({}): {} until {until}",
                escape(&r.slack_user_id),
                escape(&r.sso_user_name),
                target(r, policy)
            )));
            if h.responder {
                blocks.push(lease_buttons(r, i, "live"));
            }
        }
    }
    if let Some(pending) = &h.pending {
        blocks.push(header("Waiting for your review"));
        if pending.is_empty() {
            blocks.push(section("_No review is waiting._".into()));
        }
        for (i, r) in pending.iter().take(MOST).enumerate() {
            let flags = r
                .digest
                .as_ref()
                .map(|d| d.severities())
                .unwrap_or_else(|| "none".into());
            let since = r.reported_at.map(slack_time).unwrap_or_default();
            blocks.push(section(format!(
                "<@{}>: {}, reported {since}; flags: {} (`{}`)",
                escape(&r.slack_user_id),
                target(r, policy),
                escape(&flags),
                r.id.as_str()
            )));
            if r.slack_user_id == h.user {
                blocks.push(json!({"type": "context", "elements": [
                    {"type": "mrkdwn", "text": "_Your own use: another reviewer reviews it._"}]}));
                continue;
            }
            blocks.push(json!({"type": "actions", "block_id": format!("review_{i}"), "elements": [
                {"type": "button", "action_id": REVIEW_OK_ACTION, "value": r.id.as_str(), "style": "primary",
                 "text": {"type": "plain_text", "text": "Reviewed — fine"}},
                {"type": "button", "action_id": REVIEW_FOLLOW_UP_ACTION, "value": r.id.as_str(),
                 "text": {"type": "plain_text", "text": "Needs follow-up"}}
            ]}));
        }
    }
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("Updated {}", slack_time(now))}]}));
    json!({"type": "home", "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request::Status;

    #[test]
    fn only_responders_get_buttons_on_other_peoples_access() {
        let policy = Policy::parse(
            "version = 1\n[[rule]]\nname = \"a\"\neffect = \"allow\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\ndefault_duration = \"1h\"\nmax_duration = \"1h\"\n",
        )
        .unwrap();
        let mut other = crate::aws::store::tests::sample();
        other.status = Status::Granted;
        other.slack_user_id = "U0SOMEONE".into();
        let now = other.requested_at;
        let view_for = |responder: bool| {
            let home = Home {
                user: "U0LOOKER",
                mine_live: vec![],
                mine_recent: vec![],
                everyone_live: Some(vec![&other]),
                pending: None,
                responder,
            };
            view(&home, &policy, now).to_string()
        };
        assert!(view_for(true).contains("end_access"));
        let reviewer_only = view_for(false);
        assert!(!reviewer_only.contains("end_access"), "{reviewer_only}");
        assert!(reviewer_only.contains("U0SOMEONE"), "still listed");
    }

    #[test]
    fn a_request_that_waited_for_approval_says_how_it_went() {
        let mut r = crate::aws::store::tests::sample();
        r.approval = crate::domain::approval::Approval::pending(
            "not on call".into(),
            crate::domain::Duration::from_secs(1800),
        );
        assert_eq!(outcome(&r), "waiting for approval");
        r.status = Status::Revoked;
        r.approval.state = Some(ApprovalState::Denied);
        r.approval.by = Some("U0LEAD".into());
        assert_eq!(outcome(&r), "denied by <@U0LEAD>");
        r.approval.state = Some(ApprovalState::Expired);
        assert_eq!(outcome(&r), "expired unapproved");
    }
}
