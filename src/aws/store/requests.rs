//! Requests and their audit trail: recording a request, every fenced transition (with the
//! writes that ride along in its transaction), the audit entries, and the item mapping.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::{Created, INTENT_SK, Lost, REQUEST_SK, Store, TxError, flag, list, s, ts, unique};
use crate::domain::approval::{Approval, ApprovalState};
use crate::domain::lease::{Intent, Lease};
use crate::domain::request::{Audit, Button, Change, RequestRecord, Status};
use crate::domain::review::{Outcome, Review, day_of};
use crate::domain::{AccountId, Duration, PermissionSetArn, RequestId};
use crate::error::{Error, from_sdk};
use crate::time_util::from_rfc3339;

/// Where a change is stored: the attribute's name and value (`None`: the attribute is
/// removed). Every field name of a request item is written here and read in [`from_item`],
/// nowhere else.
fn attribute(change: &Change) -> (&'static str, Option<AttributeValue>) {
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

/// Only a `granting` request may take access: the writes that do are fenced on the status the
/// caller read, so that status must be `granting` itself.
fn granting(rec: &RequestRecord, what: &str) -> Result<(), Error> {
    if rec.status == Status::Granting {
        return Ok(());
    }
    Err(Error::StateConflict(format!(
        "request {} is {}, not granting: it {what}",
        rec.id,
        rec.status.as_str()
    )))
}

/// The attribute (and its one value) that puts a request in the pending-review index.
pub(super) const REVIEW_PENDING: &str = "review_pending";
pub(super) const PENDING: &str = "pending";
/// The index of requests waiting for review (sparse: `review_pending`, by `reported_at`).
pub(super) const REVIEWS_PENDING_INDEX: &str = "reviews_pending";
/// The index of requests by the UTC day they were made (`day`, by `requested_at`).
pub(super) const BY_DAY_INDEX: &str = "by_day";

impl Store {
    /// Records a new request unless one with the same id exists; returns whichever is stored.
    /// With `button`, the button's pointer moves to the new request in the same transaction,
    /// but only if it still points where the caller saw it (`Created::ButtonTaken` if not).
    pub async fn create(
        &self,
        rec: &RequestRecord,
        audit: Audit<'_>,
        button: Option<&Button>,
    ) -> Result<Created, Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(rec)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.audit_item(&rec.id, rec.version, rec.requested_at, &audit)?,
        ];
        if let Some(b) = button {
            items.push(self.button_put(&b.key, &rec.id, b.request_id.as_ref())?);
        }
        match self.transact(items, "DynamoDB TransactWriteItems").await {
            Ok(()) => Ok(Created::New(rec.clone())),
            Err(TxError::Lost(reasons)) if reasons.first() == Some(&true) => {
                match self.get(&rec.id).await? {
                    Some(existing) => Ok(Created::Existing(existing)),
                    None => Err(Error::Transient(
                        "request vanished after a conflicting write".into(),
                    )),
                }
            }
            Err(TxError::Lost(_)) => {
                let key = button.map(|b| b.key.as_str()).unwrap_or_default();
                match self.button(key).await?.request_id {
                    Some(other) => Ok(Created::ButtonTaken(other)),
                    None => Err(Error::Transient(
                        "the button changed under us; try again".into(),
                    )),
                }
            }
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    pub async fn get(&self, id: &RequestId) -> Result<Option<RequestRecord>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(id.as_str()))
            .key("sk", s(REQUEST_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("DynamoDB GetItem", e))?;
        out.item.map(|item| from_item(&item)).transpose()
    }

    /// Moves `rec` to `to`, only if it is still in the status and version we read. Returns the
    /// record as it is now.
    pub async fn advance(
        &self,
        rec: &RequestRecord,
        to: Status,
        changes: Vec<Change>,
        audit: Audit<'_>,
    ) -> Result<RequestRecord, Error> {
        match self
            .advance_with(rec, to, changes, Some(audit), vec![])
            .await?
        {
            Ok(r) => Ok(r),
            Err(lost) => Err(self.conflict(rec, lost)),
        }
    }

    fn conflict(&self, rec: &RequestRecord, lost: Lost) -> Error {
        Error::StateConflict(match lost {
            Lost::Request => format!(
                "request {} is no longer {} at version {}",
                rec.id,
                rec.status.as_str(),
                rec.version
            ),
            Lost::Also(i) => format!("request {}: write {i} lost its condition", rec.id),
        })
    }

    /// Joins (or creates) a lease in the same transaction as the request's change: the lease
    /// is written only while the request is still `granting` as the caller read it, so a
    /// request that was revoked, even one read afresh after its revoke, can never hold a
    /// lease. `Ok(None)` when the lease changed first (read it again); `StateConflict` when
    /// the request did, or is not granting.
    pub async fn join_lease(
        &self,
        rec: &RequestRecord,
        lease: &Lease,
        expected: Option<u64>,
        changes: Vec<Change>,
        audit: Audit<'_>,
    ) -> Result<Option<RequestRecord>, Error> {
        granting(rec, "joins no lease")?;
        let lease_put = TransactWriteItem::builder()
            .put(self.lease_put(lease, expected)?)
            .build();
        match self
            .advance_with(rec, rec.status, changes, Some(audit), vec![lease_put])
            .await?
        {
            Ok(r) => Ok(Some(r)),
            Err(Lost::Also(_)) => Ok(None),
            Err(lost) => Err(self.conflict(rec, lost)),
        }
    }

    /// The fence right before `CreateAccountAssignment`: the request must still be `granting`
    /// as the caller read it (a grant whose request moved on creates nothing), and the
    /// creation intent is recorded in the same transaction.
    pub async fn intend_creation(
        &self,
        rec: &RequestRecord,
        intent: &Intent,
        audit: Audit<'_>,
    ) -> Result<RequestRecord, Error> {
        granting(rec, "intends no creation")?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("created#{}", intent.key)))
            .item("sk", s(INTENT_SK))
            .item("request_id", s(&intent.request_id))
            .item("at", ts(intent.at))
            .item("live", s(super::Live::Intent.as_str()))
            .build()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let also = vec![TransactWriteItem::builder().put(put).build()];
        match self
            .advance_with(rec, rec.status, vec![], Some(audit), also)
            .await?
        {
            Ok(r) => Ok(r),
            Err(lost) => Err(self.conflict(rec, lost)),
        }
    }

    /// Stores the Hold state's callback token (fenced like every change; not an event of the
    /// audit trail).
    pub async fn arm_hold(&self, rec: &RequestRecord, token: &str) -> Result<RequestRecord, Error> {
        self.note_quietly(rec, vec![Change::HoldToken(token.to_owned())])
            .await
    }

    /// A fenced change that is not an event of the audit trail (a callback token, where a
    /// message was posted).
    pub async fn note_quietly(
        &self,
        rec: &RequestRecord,
        changes: Vec<Change>,
    ) -> Result<RequestRecord, Error> {
        match self
            .advance_with(rec, rec.status, changes, None, vec![])
            .await?
        {
            Ok(r) => Ok(r),
            Err(lost) => Err(self.conflict(rec, lost)),
        }
    }

    /// The conditional update of a request (and its audit item, and any writes that ride
    /// along), as one transaction. The inner `Err` says which condition lost.
    pub(super) async fn advance_with(
        &self,
        rec: &RequestRecord,
        to: Status,
        changes: Vec<Change>,
        audit: Option<Audit<'_>>,
        also: Vec<TransactWriteItem>,
    ) -> Result<Result<RequestRecord, Lost>, Error> {
        let now = OffsetDateTime::now_utc();
        let next = rec.version + 1;
        let mut set = vec!["#status = :to".to_owned(), "#version = :next".to_owned()];
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":to".into(), s(to.as_str())),
            (":next".into(), AttributeValue::N(next.to_string())),
            (":from".into(), s(rec.status.as_str())),
            (":seen".into(), AttributeValue::N(rec.version.to_string())),
        ]);
        let mut names = HashMap::from([
            ("#status".to_owned(), "status".to_owned()),
            ("#version".to_owned(), "version".to_owned()),
        ]);
        let mut remove = Vec::new();
        for (i, (field, value)) in changes.iter().map(attribute).enumerate() {
            names.insert(format!("#f{i}"), field.to_owned());
            match value {
                Some(value) => {
                    set.push(format!("#f{i} = :v{i}"));
                    values.insert(format!(":v{i}"), value);
                }
                None => remove.push(format!("#f{i}")),
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression += &format!(" REMOVE {}", remove.join(", "));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(rec.id.as_str()))
            .key("sk", s(REQUEST_SK))
            .update_expression(expression)
            .condition_expression("#status = :from AND #version = :seen")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        let first_also = match &audit {
            Some(a) => {
                items.push(self.audit_item(&rec.id, next, now, a)?);
                2
            }
            None => 1,
        };
        items.extend(also);
        match self.transact(items, "DynamoDB TransactWriteItems").await {
            Ok(()) => Ok(Ok(self
                .get(&rec.id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("request {}", rec.id)))?)),
            Err(TxError::Lost(reasons)) => {
                if reasons.first() == Some(&true) {
                    Ok(Err(Lost::Request))
                } else {
                    let i = reasons.iter().skip(first_also).position(|r| *r);
                    Ok(Err(i.map_or(Lost::Request, Lost::Also)))
                }
            }
            Err(TxError::Failed(e)) => Err(e),
        }
    }

    /// Runs a transaction. A lost condition comes back as which items lost theirs.
    async fn transact(&self, items: Vec<TransactWriteItem>, what: &str) -> Result<(), TxError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                    e.as_service_error()
                {
                    let reasons: Vec<bool> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code() == Some("ConditionalCheckFailed"))
                        .collect();
                    if reasons.iter().any(|r| *r) {
                        return Err(TxError::Lost(reasons));
                    }
                }
                Err(TxError::Failed(from_sdk(what, e)))
            }
        }
    }

    /// Records fields and an audit entry without changing the status (fenced all the same).
    pub async fn note(
        &self,
        rec: &RequestRecord,
        changes: Vec<Change>,
        audit: Audit<'_>,
    ) -> Result<RequestRecord, Error> {
        self.advance(rec, rec.status, changes, audit).await
    }

    /// Records a refused request in the audit trail (no request item is created). Every
    /// refusal is an entry of its own (who, why, when), append-only, and expires through the
    /// table's TTL after `keep`, so that a flood of refusals cannot grow the table for ever.
    pub async fn audit_denied(
        &self,
        id: &RequestId,
        actor: &str,
        detail: String,
        keep: time::Duration,
    ) -> Result<(), Error> {
        let now = OffsetDateTime::now_utc();
        let expires = (now + keep).unix_timestamp();
        for attempt in 0..3u32 {
            let sk = format!(
                "audit#denied#{}#{}",
                now.unix_timestamp_nanos(),
                unique(attempt)
            );
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(id.as_str()))
                .item("sk", s(sk))
                .item("event", s("denied"))
                .item("actor", s(actor))
                .item("detail", s(detail.clone()))
                .item("at", ts(now))
                .item("expires_ttl", AttributeValue::N(expires.to_string()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                // The same key twice (never in practice): take another; never overwrite.
                Err(e) if crate::error::code_of(&e) == Some("ConditionalCheckFailedException") => {}
                Err(e) => return Err(from_sdk("DynamoDB PutItem", e)),
            }
        }
        Err(Error::Transient("no free audit key for a refusal".into()))
    }

    /// Records what the reconciler did to an assignment break glass never granted (standing
    /// access has no request to hang its audit trail on): `pk = standing#<key>`.
    pub async fn audit_standing(
        &self,
        key: &str,
        actor: &str,
        event: &str,
        detail: String,
    ) -> Result<(), Error> {
        let now = OffsetDateTime::now_utc();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("standing#{key}")))
            .item(
                "sk",
                s(format!(
                    "audit#{}#{}",
                    now.unix_timestamp_nanos(),
                    unique(0)
                )),
            )
            .item("event", s(event))
            .item("actor", s(actor))
            .item("detail", s(detail))
            .item("at", ts(now))
            // Append-only: an audit entry is never overwritten.
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| from_sdk("DynamoDB PutItem", e))?;
        Ok(())
    }

    /// The audit trail of a request, oldest first.
    pub async fn audit_trail(
        &self,
        id: &RequestId,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, Error> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :audit)")
                .expression_attribute_values(":pk", s(id.as_str()))
                .expression_attribute_values(":audit", s("audit#"))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| from_sdk("DynamoDB Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    pub(super) fn audit_item(
        &self,
        id: &RequestId,
        version: u64,
        at: OffsetDateTime,
        audit: &Audit<'_>,
    ) -> Result<TransactWriteItem, Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(id.as_str()))
            .item("sk", s(format!("audit#{version:06}")))
            .item("event", s(audit.event))
            .item("actor", s(audit.actor))
            .item("detail", s(audit.detail.clone()))
            .item("at", ts(at))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn to_item(r: &RequestRecord) -> HashMap<String, AttributeValue> {
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

pub(super) fn from_item(item: &HashMap<String, AttributeValue>) -> Result<RequestRecord, Error> {
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
