//! A second person's approval before access is granted (rules gated on who is on call, or
//! on approvers alone): the approval's state on the request, and who may decide it.
//!
//! The first valid decision wins: deciding is a fenced write of the request, and a request
//! whose approval is no longer pending answers every later click with what was decided.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Duration;
use super::request::RequestRecord;

/// Most approvers asked directly, by Slack id and through their groups together: the rule's
/// channel is where everyone else sees the request.
pub const MAX_DIRECT_ASKS: usize = 25;

/// Where a Slack message was posted: its channel (for a direct message, the conversation
/// Slack opened, never the user id) and `ts`, which is what `chat.update` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// Whom to ask directly: the approvers named by Slack id, then the members of the approver
/// groups (`(Slack id, Identity Center user name)`), each once, never the requester (by Slack
/// id, or a member who is the requester's Identity Center user), at most `cap`.
pub fn direct_asks(
    named: &BTreeSet<String>,
    members: &[(String, String)],
    requester: (&str, &str),
    cap: usize,
) -> Vec<String> {
    let (slack_id, user_name) = requester;
    let mut seen = BTreeSet::new();
    named
        .iter()
        .map(String::as_str)
        .chain(
            members
                .iter()
                .filter(|(_, name)| name != user_name)
                .map(|(id, _)| id.as_str()),
        )
        .filter(|id| *id != slack_id && seen.insert(*id))
        .take(cap)
        .map(str::to_owned)
        .collect()
}

/// Where an approval is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    /// Waiting for an approver (the state machine waits on a task token).
    Pending,
    Approved,
    Denied,
    /// Nobody decided within the rule's `approval_timeout`: nothing was granted.
    Expired,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// A request's approval, when its rule asked for one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Approval {
    /// `None`: the request needed no approval.
    pub state: Option<ApprovalState>,
    /// Why approval was needed (not on call, the service unreachable, …).
    pub why: Option<String>,
    /// How long the approval may wait (fixed when the request is made).
    pub timeout: Option<Duration>,
    /// The AwaitApproval state's callback token.
    pub token: Option<String>,
    /// The approval message (`chat.update`d once decided).
    pub channel: Option<String>,
    pub ts: Option<String>,
    /// Its copies sent to approvers directly (each `chat.update`d once decided too).
    pub copies: Vec<Posted>,
    pub by: Option<String>,
    pub at: Option<OffsetDateTime>,
}

impl Approval {
    /// A new request's approval: pending, for `why`, waiting at most `timeout`.
    pub fn pending(why: String, timeout: Duration) -> Self {
        Self {
            state: Some(ApprovalState::Pending),
            why: Some(why),
            timeout: Some(timeout),
            ..Self::default()
        }
    }

    /// When an unanswered approval expires: the request's time plus its timeout (the state
    /// machine's wait starts a moment later, so nothing is decided after it ends).
    pub fn deadline(&self, rec: &RequestRecord) -> Option<OffsetDateTime> {
        self.timeout
            .map(|t| rec.requested_at + time::Duration::seconds(t.as_secs() as i64))
    }

    /// Whether the grant may go ahead: no approval was needed, or it was given.
    pub fn clears_grant(&self) -> bool {
        matches!(self.state, None | Some(ApprovalState::Approved))
    }
}

/// Whether a user may decide a request's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MayApprove {
    Yes,
    /// The requester: a second person must decide.
    OwnRequest,
    NotApprover,
    /// Already decided (or expired), by whom if anyone.
    Decided {
        state: ApprovalState,
        by: Option<String>,
    },
    /// The request needs no approval.
    NotGated,
}

/// Who clicked, as far as deciding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clicker {
    /// The requester: the same Slack user, or another Slack user who is the same Identity
    /// Center user.
    pub is_requester: bool,
    /// One of the rule's approvers (by Slack id or group).
    pub is_approver: bool,
}

/// Decides whether `who` may decide the request's approval at `now`. An approval already
/// decided answers the same to everyone, the requester included; one whose time is up is
/// expired whether or not the state machine has said so yet.
pub fn may_approve(rec: &RequestRecord, who: Clicker, now: OffsetDateTime) -> MayApprove {
    match rec.approval.state {
        None => MayApprove::NotGated,
        Some(ApprovalState::Pending) if rec.approval.deadline(rec).is_some_and(|d| now >= d) => {
            MayApprove::Decided {
                state: ApprovalState::Expired,
                by: None,
            }
        }
        Some(ApprovalState::Pending) if who.is_requester => MayApprove::OwnRequest,
        Some(ApprovalState::Pending) if !who.is_approver => MayApprove::NotApprover,
        Some(ApprovalState::Pending) => MayApprove::Yes,
        Some(state) => MayApprove::Decided {
            state,
            by: rec.approval.by.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::store::tests::sample;

    #[test]
    fn approvers_are_asked_once_never_the_requester_and_not_too_many() {
        let named = BTreeSet::from(["U0LEAD".to_owned(), "U0REQ".to_owned()]);
        let members = [
            ("U0DAVE".to_owned(), "dave".to_owned()),
            ("U0LEAD".to_owned(), "lead".to_owned()),
            // The requester under another Slack id is still the requester.
            ("U0REQ2".to_owned(), "req".to_owned()),
            ("U0ERIN".to_owned(), "erin".to_owned()),
        ];
        assert_eq!(
            direct_asks(&named, &members, ("U0REQ", "req"), 10),
            ["U0LEAD", "U0DAVE", "U0ERIN"]
        );
        assert_eq!(
            direct_asks(&named, &members, ("U0REQ", "req"), 2),
            ["U0LEAD", "U0DAVE"]
        );
        assert!(direct_asks(&BTreeSet::new(), &[], ("U0REQ", "req"), 10).is_empty());
    }

    #[test]
    fn a_second_person_decides_once() {
        let mut rec = sample();
        let now = rec.requested_at + time::Duration::minutes(5);
        let may_approve = |rec: &RequestRecord, user: &str, is_approver: bool| {
            let who = Clicker {
                is_requester: user == rec.slack_user_id,
                is_approver,
            };
            super::may_approve(rec, who, now)
        };
        assert_eq!(may_approve(&rec, "U0LEAD", true), MayApprove::NotGated);
        rec.approval = Approval::pending("not on call".into(), Duration::from_secs(1800));
        assert!(!rec.approval.clears_grant());
        let requester = rec.slack_user_id.clone();
        assert_eq!(
            may_approve(&rec, &requester, true),
            MayApprove::OwnRequest,
            "even an approver cannot approve their own request"
        );
        assert_eq!(may_approve(&rec, "U0OTHER", false), MayApprove::NotApprover);
        assert_eq!(may_approve(&rec, "U0LEAD", true), MayApprove::Yes);
        rec.approval.state = Some(ApprovalState::Approved);
        rec.approval.by = Some("U0LEAD".into());
        assert!(rec.approval.clears_grant());
        for user in ["U0LEAD", "U0SECOND", requester.as_str()] {
            assert_eq!(
                may_approve(&rec, user, true),
                MayApprove::Decided {
                    state: ApprovalState::Approved,
                    by: Some("U0LEAD".into())
                }
            );
        }
        for state in [ApprovalState::Denied, ApprovalState::Expired] {
            rec.approval.state = Some(state);
            assert!(!rec.approval.clears_grant());
            assert!(matches!(
                may_approve(&rec, "U0LEAD", true),
                MayApprove::Decided { .. }
            ));
        }
        // Once its time is up, nobody approves it any more, even before the state machine
        // has marked it expired.
        rec.approval.state = Some(ApprovalState::Pending);
        let late = rec.requested_at + time::Duration::minutes(30);
        let approver = Clicker {
            is_requester: false,
            is_approver: true,
        };
        // Another Slack user who is the requester in Identity Center is the requester.
        assert_eq!(
            super::may_approve(
                &rec,
                Clicker {
                    is_requester: true,
                    is_approver: true
                },
                now
            ),
            MayApprove::OwnRequest
        );
        assert_eq!(
            super::may_approve(&rec, approver, late),
            MayApprove::Decided {
                state: ApprovalState::Expired,
                by: None
            }
        );
        assert_eq!(
            super::may_approve(&rec, approver, late - time::Duration::SECOND),
            MayApprove::Yes
        );
        for s in ["pending", "approved", "denied", "expired"] {
            assert_eq!(ApprovalState::parse(s).map(ApprovalState::as_str), Some(s));
        }
        assert_eq!(ApprovalState::parse("maybe"), None);
    }
}
