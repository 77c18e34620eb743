//! The request item: where each field of a request is stored ([`attribute`], the one place
//! that names them for writes) and how an item is read back ([`from_item`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::super::{REQUEST_SK, flag, list, s, ts};
use crate::domain::approval::{Approval, ApprovalState};
use crate::domain::request::{Change, RequestRecord, Status};
use crate::domain::review::{Outcome, Review, day_of};
use crate::domain::{AccountId, Duration, PermissionSetArn, RequestId};
use crate::error::Error;
use crate::time_util::from_rfc3339;

/// The attribute (and its one value) that puts a request in the pending-review index.
pub(in crate::aws::store) const REVIEW_PENDING: &str = "review_pending";
pub(in crate::aws::store) const PENDING: &str = "pending";

/// Where a change is stored: the attribute's name and value (`None`: the attribute is
/// removed). Every field name of a request item is written here and read in [`from_item`],
/// nowhere else.
pub(super) fn attribute(change: &Change) -> (&'static str, Option<AttributeValue>) {
    let (name, value) = match change {
        Change::PrincipalId(v) => ("principal_id", s(v)),
        Change::PermissionSetName(v) => ("permission_set_name", s(v)),
        Change::Preexisting(v) => ("preexisting", flag(*v)),
        Change::Shared(v) => ("shared", flag(*v)),
        Change::CreationRequestId(v) => ("creation_request_id", s(v)),
        Change::MoreAccounts(v) if v.is_empty() => return ("more_accounts", None),
        Change::MoreAccounts(v) => (
            "more_accounts",
            s(serde_json::to_string(v).unwrap_or_default()),
        ),
        Change::GrantedAt(t) => ("granted_at", ts(*t)),
        Change::ExpiresAt(t) => ("expires_at", ts(*t)),
        Change::EndedBy(v) => ("ended_by", s(v)),
        Change::EndedAt(t) => ("ended_at", ts(*t)),
        Change::HoldToken(v) => ("hold_token", s(v)),
        Change::Clicks(v) => ("clicks", list(v)),
        Change::ThreadTs(v) => ("thread_ts", s(v)),
        Change::RevokedAt(t) => ("revoked_at", ts(*t)),
        Change::RevokeFailedAt(t) => ("revoke_failed_at", ts(*t)),
        Change::ReportedAt(t) => ("reported_at", ts(*t)),
        Change::SessionsDeniedUntil(t) => ("sessions_denied_until", ts(*t)),
        Change::SessionsLiftedAt(t) => ("sessions_lifted_at", ts(*t)),
        Change::AfterEndCheckedAt(t) => ("after_end_checked_at", ts(*t)),
        Change::ReconciledAt(t) => ("reconciled_at", ts(*t)),
        Change::Digest(d) => ("digest", s(serde_json::to_string(d).unwrap_or_default())),
        // The pending-review index holds only items with this attribute.
        Change::ReviewPending(true) => (REVIEW_PENDING, s(PENDING)),
        Change::ReviewPending(false) => return (REVIEW_PENDING, None),
        Change::ReviewChannel(v) => ("review_channel", s(v)),
        Change::ReviewTs(v) => ("review_ts", s(v)),
        Change::ReviewRequestedAt(t) => ("review_requested_at", ts(*t)),
        Change::ReviewOutcome(o) => ("review_outcome", s(o.as_str())),
        Change::ReviewedBy(v) => ("reviewed_by", s(v)),
        Change::ReviewedAt(t) => ("reviewed_at", ts(*t)),
        Change::ReviewNote(v) => ("review_note", s(v)),
        Change::ReviewRemindedAt(t) => ("review_reminded_at", ts(*t)),
        Change::ReviewEscalatedAt(t) => ("review_escalated_at", ts(*t)),
        Change::ApprovalState(v) => ("approval", s(v.as_str())),
        Change::ApprovalToken(v) => ("approval_token", s(v)),
        Change::ApprovalChannel(v) => ("approval_channel", s(v)),
        Change::ApprovalTs(v) => ("approval_ts", s(v)),
        Change::ApprovalCopies(v) if v.is_empty() => return ("approval_copies", None),
        Change::ApprovalCopies(v) => (
            "approval_copies",
            s(serde_json::to_string(v).unwrap_or_default()),
        ),
        Change::ApprovedBy(v) => ("approved_by", s(v)),
        Change::ApprovalAt(t) => ("approval_at", ts(*t)),
    };
    (name, Some(value))
}

pub(super) fn to_item(r: &RequestRecord) -> HashMap<String, AttributeValue> {
    let mut m = HashMap::from([
        ("pk".to_owned(), s(r.id.as_str())),
        ("sk".to_owned(), s(REQUEST_SK)),
        ("status".to_owned(), s(r.status.as_str())),
        (
            "version".to_owned(),
            AttributeValue::N(r.version.to_string()),
        ),
        ("team_id".to_owned(), s(&r.team_id)),
        ("slack_user_id".to_owned(), s(&r.slack_user_id)),
        ("sso_user_name".to_owned(), s(&r.sso_user_name)),
        ("account_id".to_owned(), s(r.account_id.as_str())),
        (
            "permission_set_arn".to_owned(),
            s(r.permission_set_arn.as_str()),
        ),
        (
            "duration_secs".to_owned(),
            AttributeValue::N(r.duration.as_secs().to_string()),
        ),
        ("rule".to_owned(), s(&r.rule)),
        (
            "max_duration_secs".to_owned(),
            AttributeValue::N(r.max_duration.as_secs().to_string()),
        ),
        ("requested_at".to_owned(), ts(r.requested_at)),
        // The audit export's index key.
        ("day".to_owned(), s(day_of(r.requested_at))),
        ("end_sessions".to_owned(), flag(r.end_sessions)),
    ]);
    if let Some(t) = r.approval.timeout {
        m.insert(
            "approval_timeout_secs".to_owned(),
            AttributeValue::N(t.as_secs().to_string()),
        );
    }
    let created = [
        ("reason", &r.reason),
        ("approval_why", &r.approval.why),
        ("incident_id", &r.incident_id),
        ("incident_url", &r.incident_url),
        ("notify_channel", &r.notify_channel),
        ("channel_id", &r.channel_id),
        ("response_url", &r.response_url),
    ];
    for (k, v) in created {
        if let Some(v) = v {
            m.insert(k.to_owned(), s(v));
        }
    }
    // What transitions change is written exactly as they write it.
    let changed = [
        Some(Change::Preexisting(r.preexisting)),
        Some(Change::Shared(r.shared)),
        (!r.clicks.is_empty()).then(|| Change::Clicks(r.clicks.clone())),
        r.ended_by.clone().map(Change::EndedBy),
        r.thread_ts.clone().map(Change::ThreadTs),
        r.permission_set_name.clone().map(Change::PermissionSetName),
        r.principal_id.clone().map(Change::PrincipalId),
        r.creation_request_id.clone().map(Change::CreationRequestId),
        Some(Change::MoreAccounts(r.more_accounts.clone())),
        r.hold_token.clone().map(Change::HoldToken),
        r.granted_at.map(Change::GrantedAt),
        r.expires_at.map(Change::ExpiresAt),
        r.revoked_at.map(Change::RevokedAt),
        r.revoke_failed_at.map(Change::RevokeFailedAt),
        r.reported_at.map(Change::ReportedAt),
        r.sessions_denied_until.map(Change::SessionsDeniedUntil),
        r.sessions_lifted_at.map(Change::SessionsLiftedAt),
        r.ended_at.map(Change::EndedAt),
        r.after_end_checked_at.map(Change::AfterEndCheckedAt),
        r.reconciled_at.map(Change::ReconciledAt),
        r.digest.clone().map(Change::Digest),
        Some(Change::ReviewPending(r.review.pending)),
        r.review.channel.clone().map(Change::ReviewChannel),
        r.review.ts.clone().map(Change::ReviewTs),
        r.review.requested_at.map(Change::ReviewRequestedAt),
        r.review.outcome.map(Change::ReviewOutcome),
        r.review.by.clone().map(Change::ReviewedBy),
        r.review.at.map(Change::ReviewedAt),
        r.review.note.clone().map(Change::ReviewNote),
        r.review.reminded_at.map(Change::ReviewRemindedAt),
        r.review.escalated_at.map(Change::ReviewEscalatedAt),
        r.approval.state.map(Change::ApprovalState),
        r.approval.token.clone().map(Change::ApprovalToken),
        r.approval.channel.clone().map(Change::ApprovalChannel),
        r.approval.ts.clone().map(Change::ApprovalTs),
        Some(Change::ApprovalCopies(r.approval.copies.clone())),
        r.approval.by.clone().map(Change::ApprovedBy),
        r.approval.at.map(Change::ApprovalAt),
    ];
    for change in changed.iter().flatten() {
        if let (k, Some(v)) = attribute(change) {
            m.insert(k.to_owned(), v);
        }
    }
    m
}

pub(in crate::aws::store) fn from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<RequestRecord, Error> {
    let bad = |k: &str| Error::InvalidInput(format!("stored request lacks a valid {k}"));
    let opt_s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let req_s = |k: &str| opt_s(k).ok_or_else(|| bad(k));
    let num = |k: &str| -> Result<u64, Error> {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad(k))
    };
    let opt_b = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false)
    };
    let opt_t = |k: &str| -> Result<Option<OffsetDateTime>, Error> {
        opt_s(k)
            .map(|v| from_rfc3339(&v).ok_or_else(|| bad(k)))
            .transpose()
    };
    Ok(RequestRecord {
        id: RequestId::parse(&req_s("pk")?).map_err(|_| bad("pk"))?,
        status: Status::parse(&req_s("status")?)?,
        version: num("version")?,
        team_id: req_s("team_id")?,
        slack_user_id: req_s("slack_user_id")?,
        sso_user_name: req_s("sso_user_name")?,
        account_id: AccountId::parse(&req_s("account_id")?).map_err(|_| bad("account_id"))?,
        more_accounts: opt_s("more_accounts")
            .map(|m| serde_json::from_str(&m).map_err(|_| bad("more_accounts")))
            .transpose()?
            .unwrap_or_default(),
        permission_set_arn: PermissionSetArn::parse(&req_s("permission_set_arn")?)
            .map_err(|_| bad("permission_set_arn"))?,
        duration: Duration::from_secs(num("duration_secs")?),
        rule: req_s("rule")?,
        reason: opt_s("reason"),
        max_duration: Duration::from_secs(num("max_duration_secs")?),
        notify_channel: opt_s("notify_channel"),
        thread_ts: opt_s("thread_ts"),
        permission_set_name: opt_s("permission_set_name"),
        channel_id: opt_s("channel_id"),
        response_url: opt_s("response_url"),
        requested_at: opt_t("requested_at")?.ok_or_else(|| bad("requested_at"))?,
        principal_id: opt_s("principal_id"),
        preexisting: opt_b("preexisting"),
        creation_request_id: opt_s("creation_request_id"),
        shared: opt_b("shared"),
        ended_by: opt_s("ended_by"),
        ended_at: opt_t("ended_at")?,
        hold_token: opt_s("hold_token"),
        clicks: item
            .get("clicks")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        granted_at: opt_t("granted_at")?,
        expires_at: opt_t("expires_at")?,
        revoked_at: opt_t("revoked_at")?,
        reported_at: opt_t("reported_at")?,
        end_sessions: opt_b("end_sessions"),
        sessions_denied_until: opt_t("sessions_denied_until")?,
        sessions_lifted_at: opt_t("sessions_lifted_at")?,
        revoke_failed_at: opt_t("revoke_failed_at")?,
        after_end_checked_at: opt_t("after_end_checked_at")?,
        reconciled_at: opt_t("reconciled_at")?,
        digest: opt_s("digest")
            .map(|d| serde_json::from_str(&d).map_err(|_| bad("digest")))
            .transpose()?,
        review: Review {
            pending: opt_s(REVIEW_PENDING).as_deref() == Some(PENDING),
            channel: opt_s("review_channel"),
            ts: opt_s("review_ts"),
            requested_at: opt_t("review_requested_at")?,
            outcome: opt_s("review_outcome")
                .map(|o| Outcome::parse(&o).ok_or_else(|| bad("review_outcome")))
                .transpose()?,
            by: opt_s("reviewed_by"),
            at: opt_t("reviewed_at")?,
            note: opt_s("review_note"),
            reminded_at: opt_t("review_reminded_at")?,
            escalated_at: opt_t("review_escalated_at")?,
        },
        approval: Approval {
            state: opt_s("approval")
                .map(|a| ApprovalState::parse(&a).ok_or_else(|| bad("approval")))
                .transpose()?,
            why: opt_s("approval_why"),
            timeout: item
                .get("approval_timeout_secs")
                .map(|_| num("approval_timeout_secs").map(Duration::from_secs))
                .transpose()?,
            token: opt_s("approval_token"),
            channel: opt_s("approval_channel"),
            ts: opt_s("approval_ts"),
            copies: opt_s("approval_copies")
                .map(|m| serde_json::from_str(&m).map_err(|_| bad("approval_copies")))
                .transpose()?
                .unwrap_or_default(),
            by: opt_s("approved_by"),
            at: opt_t("approval_at")?,
        },
        incident_id: opt_s("incident_id"),
        incident_url: opt_s("incident_url"),
    })
}

#[cfg(test)]
mod tests;
