//! Requests and their audit trail: recording a request, every fenced transition (with the
//! writes that ride along in its transaction), and the audit entries. The item mapping is in
//! [`item`].

mod item;

pub(super) use item::{PENDING, REVIEW_PENDING, from_item};
use item::{attribute, to_item};

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::{Created, INTENT_SK, Lost, REQUEST_SK, Store, TxError, s, ts, unique};
use crate::domain::RequestId;
use crate::domain::lease::{Intent, Lease};
use crate::domain::request::{Audit, Button, Change, RequestRecord, Status};
use crate::error::{Error, from_sdk};

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
