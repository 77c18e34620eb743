//! A break-glass request: its state machine of statuses, the record kept of it, and the
//! changes a transition makes. Storage is the store's business ([`crate::aws::store`]); this is
//! what the rest of the code reads and decides on.

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
    pub account_id: AccountId,
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

impl RequestRecord {
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
