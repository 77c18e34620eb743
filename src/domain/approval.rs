//! A second person's approval before access is granted (rules gated on who is on call, or
//! on approvers alone): the approval's state on the request, and who may decide it.
//!
//! The first valid decision wins: deciding is a fenced write of the request, and a request
//! whose approval is no longer pending answers every later click with what was decided.

use time::OffsetDateTime;

use super::Duration;
use super::request::RequestRecord;

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

/// Decides whether `user` (an approver of the request's rule or not) may decide now. An
/// approval already decided answers the same to everyone, the requester included.
pub fn may_approve(rec: &RequestRecord, user: &str, is_approver: bool) -> MayApprove {
    match rec.approval.state {
        None => MayApprove::NotGated,
        Some(ApprovalState::Pending) if user == rec.slack_user_id => MayApprove::OwnRequest,
        Some(ApprovalState::Pending) if !is_approver => MayApprove::NotApprover,
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
    fn a_second_person_decides_once() {
        let mut rec = sample();
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
        for s in ["pending", "approved", "denied", "expired"] {
            assert_eq!(ApprovalState::parse(s).map(ApprovalState::as_str), Some(s));
        }
        assert_eq!(ApprovalState::parse("maybe"), None);
    }
}
