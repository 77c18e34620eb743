//! A break-glass request: its state machine of statuses, the record kept of it, and the
//! changes a transition makes. Storage is the store's business ([`crate::aws::store`]); this is
//! what the rest of the code reads and decides on.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::approval::{Approval, ApprovalState};
use super::review::{Digest, Outcome, Review};
use super::{AccountId, Duration, PermissionSetArn, RequestId};
use crate::error::Error;

/// How many applied lease clicks a request remembers.
const CLICKS_KEPT: usize = 20;

/// Where a request is in its life. Only forward: requested → granting → granted → revoked →
/// reported (revoked may come from any earlier status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Recorded by the webhook; the execution is starting.
    Requested,
    /// `CreateAccountAssignment` was called (or the assignment already existed).
    Granting,
    /// The assignment is provisioned; access lasts until `expires_at`.
    Granted,
    /// Access is gone (or was never given).
    Revoked,
    /// The report was sent.
    Reported,
}

impl Status {
    /// Whether a request in this status still holds (or is about to hold) its access.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Requested | Status::Granting | Status::Granted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Granting => "granting",
            Status::Granted => "granted",
            Status::Revoked => "revoked",
            Status::Reported => "reported",
        }
    }
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "requested" => Status::Requested,
            "granting" => Status::Granting,
            "granted" => Status::Granted,
            "revoked" => Status::Revoked,
            "reported" => Status::Reported,
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown status {other:?} in the table"
                )));
            }
        })
    }
}

/// One break-glass request as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub id: RequestId,
    pub status: Status,
    pub version: u64,
    pub team_id: String,
    pub slack_user_id: String,
    pub sso_user_name: String,
    /// The request's (first) account. A multi-account request lists the others in
    /// `more_accounts`; [`RequestRecord::accounts`] gives them all.
    pub account_id: AccountId,
    /// The other accounts of a multi-account request, and how far each one's grant got.
    pub more_accounts: Vec<Part>,
    pub permission_set_arn: PermissionSetArn,
    pub duration: Duration,
    pub rule: String,
    /// Why the requester needs access (the modal asks; a button click has none).
    pub reason: Option<String>,
    /// Longest the request may be extended to, in total (from the policy rule).
    pub max_duration: Duration,
    pub channel_id: Option<String>,
    pub response_url: Option<String>,
    /// The policy rule's channel, where the request's thread lives.
    pub notify_channel: Option<String>,
    /// The `ts` of the thread's first message in `notify_channel`, once posted.
    pub thread_ts: Option<String>,
    pub permission_set_name: Option<String>,
    pub requested_at: OffsetDateTime,
    /// Identity Store user id, resolved at grant.
    pub principal_id: Option<String>,
    /// The assignment existed before we granted (standing access): never delete it.
    pub preexisting: bool,
    /// Joined another live lease's assignment instead of creating one.
    pub shared: bool,
    /// Who pressed **End access now**, if anyone. Once set, the access is over for good:
    /// no Extend can bring it back.
    pub ended_by: Option<String>,
    /// When **End access now** was pressed.
    pub ended_at: Option<OffsetDateTime>,
    /// The Hold state's callback token while it waits for the lease to end; End access now
    /// completes it (`SendTaskSuccess`).
    pub hold_token: Option<String>,
    /// The lease button clicks already applied (`<user>:<action_ts>`, the latest few), so
    /// that a click delivered twice acts once.
    pub clicks: Vec<String>,
    pub creation_request_id: Option<String>,
    pub granted_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub reported_at: Option<OffsetDateTime>,
    /// The rule asks to end the user's live sessions when the lease ends.
    pub end_sessions: bool,
    /// When the deny on the user's old sessions may be lifted (they have all expired).
    pub sessions_denied_until: Option<OffsetDateTime>,
    pub sessions_lifted_at: Option<OffsetDateTime>,
    /// When Revoke gave up for good (the alarm was raised).
    pub revoke_failed_at: Option<OffsetDateTime>,
    /// When the session was last looked at for use after its access ended.
    pub after_end_checked_at: Option<OffsetDateTime>,
    /// When the reconciler took the access away (its execution had died).
    pub reconciled_at: Option<OffsetDateTime>,
    /// What the report found (for the review message and the audit export).
    pub digest: Option<Digest>,
    /// The review by a second person.
    pub review: Review,
    /// A second person's approval before the grant, when the rule asked for one.
    pub approval: Approval,
    /// The PagerDuty incident the request was made for (its id and link).
    pub incident_id: Option<String>,
    pub incident_url: Option<String>,
}

/// One account of a request, and how its grant holds the lease of (user, account, permission
/// set). The first account's part is kept in the record's own fields (`account_id`,
/// `preexisting`, `shared`, `creation_request_id`), as it was before requests had several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub account: AccountId,
    #[serde(default)]
    pub preexisting: bool,
    #[serde(default)]
    pub shared: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_request_id: Option<String>,
}

impl Part {
    pub fn new(account: AccountId) -> Self {
        Part {
            account,
            preexisting: false,
            shared: false,
            creation_request_id: None,
        }
    }
}

impl RequestRecord {
    /// Every account of the request, the first one first.
    pub fn accounts(&self) -> Vec<AccountId> {
        std::iter::once(self.account_id.clone())
            .chain(self.more_accounts.iter().map(|p| p.account.clone()))
            .collect()
    }

    /// The accounts as people read them: `111111111111, 222222222222`.
    pub fn accounts_text(&self) -> String {
        super::accounts_text(&self.accounts())
    }

    /// The part of `account` (one of [`RequestRecord::accounts`]).
    pub fn part(&self, account: &AccountId) -> Option<Part> {
        if *account == self.account_id {
            return Some(Part {
                account: account.clone(),
                preexisting: self.preexisting,
                shared: self.shared,
                creation_request_id: self.creation_request_id.clone(),
            });
        }
        self.more_accounts
            .iter()
            .find(|p| p.account == *account)
            .cloned()
    }

    /// The changes that store `part` (of one of the request's accounts).
    pub fn part_changes(&self, part: Part) -> Vec<Change> {
        if part.account == self.account_id {
            let mut changes = vec![
                Change::Preexisting(part.preexisting),
                Change::Shared(part.shared),
            ];
            changes.extend(part.creation_request_id.map(Change::CreationRequestId));
            return changes;
        }
        let mut more = self.more_accounts.clone();
        for p in more.iter_mut().filter(|p| p.account == part.account) {
            *p = part.clone();
        }
        vec![Change::MoreAccounts(more)]
    }

    /// The applied lease clicks with `click` added (the latest [`CLICKS_KEPT`]).
    pub fn clicks_with(&self, click: &str) -> Vec<String> {
        let mut applied = self.clicks.clone();
        applied.push(click.to_owned());
        let drop = applied.len().saturating_sub(CLICKS_KEPT);
        applied.drain(..drop);
        applied
    }
}

/// A field a transition sets, besides the status and the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PrincipalId(String),
    PermissionSetName(String),
    Preexisting(bool),
    Shared(bool),
    CreationRequestId(String),
    /// The parts of the request's other accounts.
    MoreAccounts(Vec<Part>),
    GrantedAt(OffsetDateTime),
    ExpiresAt(OffsetDateTime),
    EndedBy(String),
    EndedAt(OffsetDateTime),
    HoldToken(String),
    /// The applied lease clicks (see [`RequestRecord::clicks_with`]).
    Clicks(Vec<String>),
    ThreadTs(String),
    RevokedAt(OffsetDateTime),
    RevokeFailedAt(OffsetDateTime),
    ReportedAt(OffsetDateTime),
    SessionsDeniedUntil(OffsetDateTime),
    SessionsLiftedAt(OffsetDateTime),
    AfterEndCheckedAt(OffsetDateTime),
    ReconciledAt(OffsetDateTime),
    Digest(Digest),
    /// In the pending-review index (true) or out of it (false).
    ReviewPending(bool),
    ReviewChannel(String),
    ReviewTs(String),
    ReviewRequestedAt(OffsetDateTime),
    ReviewOutcome(Outcome),
    ReviewedBy(String),
    ReviewedAt(OffsetDateTime),
    ReviewNote(String),
    ReviewRemindedAt(OffsetDateTime),
    ReviewEscalatedAt(OffsetDateTime),
    ApprovalState(ApprovalState),
    ApprovalToken(String),
    ApprovalChannel(String),
    ApprovalTs(String),
    ApprovalCopies(Vec<super::approval::Posted>),
    ApprovedBy(String),
    ApprovalAt(OffsetDateTime),
}

/// An entry of the audit trail: who did what, when, and anything worth keeping.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub event: &'a str,
    pub actor: &'a str,
    pub detail: String,
}

/// A Break Glass button as one person sees it: which of their requests it last started.
/// Clicking it again while that request is live changes nothing; after it ended, a click
/// starts a new request and moves the pointer (`pk = button#<key>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub key: String,
    /// The request the button last started.
    pub request_id: Option<RequestId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_keeps_its_own_part() {
        let mut rec = crate::aws::store::tests::sample();
        let first = rec.account_id.clone();
        let second = AccountId::parse("210987654321").unwrap();
        assert_eq!(rec.accounts(), std::slice::from_ref(&first));
        assert!(rec.part(&second).is_none(), "not one of its accounts");
        rec.more_accounts = vec![Part::new(second.clone())];
        assert_eq!(rec.accounts(), [first.clone(), second.clone()]);
        assert_eq!(rec.accounts_text(), "123456789012, 210987654321");

        // The first account's part lives in the record's own fields, as before.
        let changes = rec.part_changes(Part {
            shared: true,
            creation_request_id: Some("c-1".into()),
            ..rec.part(&first).unwrap()
        });
        assert_eq!(
            changes,
            [
                Change::Preexisting(false),
                Change::Shared(true),
                Change::CreationRequestId("c-1".into())
            ]
        );
        // Another account's part changes only that account's entry.
        let changes = rec.part_changes(Part {
            preexisting: true,
            ..rec.part(&second).unwrap()
        });
        let [Change::MoreAccounts(more)] = changes.as_slice() else {
            panic!("{changes:?}")
        };
        assert_eq!(more.len(), 1);
        assert!(more[0].preexisting && more[0].account == second);
        assert!(!rec.preexisting, "the first account's part is untouched");
    }
}
