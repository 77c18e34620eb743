//! DynamoDB: break-glass requests and their audit trail, in one table keyed by `pk`/`sk`.
//!
//! - `pk = <request id>`, `sk = "request"`: the request's current state, with a `version`.
//! - `pk = <request id>`, `sk = "audit#<version, zero-padded>"`: one item per state change.
//! - `pk = lease#<principal>#<account>#<permission set>`: the live requests sharing one
//!   assignment ([`Lease`]).
//! - `pk = created#<principal>#<account>#<permission set>`: break glass may have created that
//!   assignment ([`Intent`]).
//! - `pk = button#<key>`: the request a person's Break Glass button last started ([`Button`]).
//! - `pk = sessions#<permission set>`: the deny statements on old sessions ([`Denies`]).
//!
//! Every state change is one transaction: a conditional update of the request (expected
//! status and version) plus the audit item. A stale timer or a duplicated task therefore
//! either finds the request already moved on, or loses the condition; it never acts twice,
//! and nothing is ever changed without its audit record.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use crate::domain::lease::{Intent, Lease};
use crate::domain::request::{Audit, Button, Change, RequestRecord, Status};
use crate::domain::{AccountId, Duration, PermissionSetArn, RequestId};
use crate::error::{Error, from_sdk};
use crate::time_util::{from_rfc3339, rfc3339};

/// A key part no other entry of this process (or, practically, any other) has: the process
/// id and a counter.
fn unique(salt: u32) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}{:x}{salt}", std::process::id(), n)
}

/// A transaction that did not go through.
enum TxError {
    /// Conditions lost, item by item (true: that item's condition failed).
    Lost(Vec<bool>),
    Failed(Error),
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn ts(t: OffsetDateTime) -> AttributeValue {
    AttributeValue::S(rfc3339(t))
}
fn flag(b: bool) -> AttributeValue {
    AttributeValue::Bool(b)
}
fn list(ids: &[String]) -> AttributeValue {
    AttributeValue::L(ids.iter().map(s).collect())
}

/// Where a change is stored: the attribute's name and value. Every field name of a request
/// item is written here and read in [`from_item`], nowhere else.
fn attribute(change: &Change) -> (&'static str, AttributeValue) {
    match change {
        Change::PrincipalId(v) => ("principal_id", s(v)),
        Change::PermissionSetName(v) => ("permission_set_name", s(v)),
        Change::Preexisting(v) => ("preexisting", flag(*v)),
        Change::Shared(v) => ("shared", flag(*v)),
        Change::CreationRequestId(v) => ("creation_request_id", s(v)),
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
    }
}

/// The outcome of recording a new request.
#[derive(Debug)]
pub enum Created {
    New(RequestRecord),
    /// The same request was recorded before (a repeated delivery of the same click).
    Existing(RequestRecord),
    /// The button already points at another request (a concurrent click on it won).
    ButtonTaken(RequestId),
}

/// Which condition of a transaction failed.
#[derive(Debug, PartialEq, Eq)]
enum Lost {
    /// The request moved on (status or version).
    Request,
    /// One of the writes that rode along (its index among them).
    Also(usize),
}

#[derive(Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

const REQUEST_SK: &str = "request";
const BUTTON_SK: &str = "button";
const INTENT_SK: &str = "intent";

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

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
    /// is written only while the request is still what the caller read, so a request that
    /// was revoked meanwhile can never hold a lease. `Ok(None)` when the lease changed first
    /// (read it again); `StateConflict` when the request did.
    pub async fn join_lease(
        &self,
        rec: &RequestRecord,
        lease: &Lease,
        expected: Option<u64>,
        changes: Vec<Change>,
        audit: Audit<'_>,
    ) -> Result<Option<RequestRecord>, Error> {
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

    /// The fence right before `CreateAccountAssignment`: the request must still be what the
    /// caller read (a grant whose request moved on creates nothing), and the creation intent
    /// is recorded in the same transaction.
    pub async fn intend_creation(
        &self,
        rec: &RequestRecord,
        intent: &Intent,
        audit: Audit<'_>,
    ) -> Result<RequestRecord, Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("created#{}", intent.key)))
            .item("sk", s(INTENT_SK))
            .item("request_id", s(&intent.request_id))
            .item("at", ts(intent.at))
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
        match self
            .advance_with(
                rec,
                rec.status,
                vec![Change::HoldToken(token.to_owned())],
                None,
                vec![],
            )
            .await?
        {
            Ok(r) => Ok(r),
            Err(lost) => Err(self.conflict(rec, lost)),
        }
    }

    /// The conditional update of a request (and its audit item, and any writes that ride
    /// along), as one transaction. The inner `Err` says which condition lost.
    async fn advance_with(
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
        for (i, (field, value)) in changes.iter().map(attribute).enumerate() {
            set.push(format!("#f{i} = :v{i}"));
            names.insert(format!("#f{i}"), field.to_owned());
            values.insert(format!(":v{i}"), value);
        }
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(rec.id.as_str()))
            .key("sk", s(REQUEST_SK))
            .update_expression(format!("SET {}", set.join(", ")))
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

    /// The button's pointer.
    pub async fn button(&self, key: &str) -> Result<Button, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("button#{key}")))
            .key("sk", s(BUTTON_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("DynamoDB GetItem", e))?;
        let request_id = out
            .item
            .as_ref()
            .and_then(|i| i.get("request_id"))
            .and_then(|v| v.as_s().ok())
            .and_then(|id| RequestId::parse(id).ok());
        Ok(Button {
            key: key.to_owned(),
            request_id,
        })
    }

    fn button_put(
        &self,
        key: &str,
        to: &RequestId,
        seen: Option<&RequestId>,
    ) -> Result<TransactWriteItem, Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("button#{key}")))
            .item("sk", s(BUTTON_SK))
            .item("request_id", s(to.as_str()));
        let put = match seen {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(prev) => put
                .condition_expression("request_id = :prev")
                .expression_attribute_values(":prev", s(prev.as_str())),
        };
        Ok(TransactWriteItem::builder()
            .put(
                put.build()
                    .map_err(|e| Error::InvalidInput(e.to_string()))?,
            )
            .build())
    }

    /// The creation intent of a key, if one is recorded.
    pub async fn intent(&self, key: &str) -> Result<Option<Intent>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("created#{key}")))
            .key("sk", s(INTENT_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("DynamoDB GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let bad = || Error::InvalidInput(format!("the creation intent of {key} is malformed"));
        Ok(Some(Intent {
            key: key.to_owned(),
            request_id: item
                .get("request_id")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .ok_or_else(bad)?,
            at: item
                .get("at")
                .and_then(|v| v.as_s().ok())
                .and_then(|t| from_rfc3339(t))
                .ok_or_else(bad)?,
        }))
    }

    /// Deletes a creation intent, only if it is still the one read (no grant recorded a new
    /// one since).
    pub async fn delete_intent(&self, intent: &Intent) -> Result<bool, Error> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("created#{}", intent.key)))
            .key("sk", s(INTENT_SK))
            .condition_expression("#at = :at")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":at", ts(intent.at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if crate::error::code_of(&e) == Some("ConditionalCheckFailedException") => {
                Ok(false)
            }
            Err(e) => Err(from_sdk("DynamoDB DeleteItem", e)),
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

    fn audit_item(
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

const LEASE_SK: &str = "lease";

impl Store {
    pub async fn lease(&self, key: &str) -> Result<Option<Lease>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .key("sk", s(LEASE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("DynamoDB GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let bad = || Error::InvalidInput(format!("lease {key} is malformed"));
        Ok(Some(Lease {
            key: key.to_owned(),
            holders: item
                .get("holders")
                .and_then(|v| v.as_l().ok())
                .ok_or_else(bad)?
                .iter()
                .filter_map(|v| v.as_s().ok().cloned())
                .collect(),
            standing: item
                .get("standing")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            releasing: item
                .get("releasing")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            released_at: match item.get("released_at").and_then(|v| v.as_s().ok()) {
                Some(t) => Some(from_rfc3339(t).ok_or_else(bad)?),
                None => None,
            },
            end_sessions_for: item
                .get("end_sessions_for")
                .and_then(|v| v.as_s().ok())
                .cloned(),
            provisioned: item
                .get("provisioned")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            version: item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?,
        }))
    }

    /// Writes a lease: a new one (`expected` = None) only if none exists, otherwise only if it
    /// is still at `expected`. `Ok(false)` when someone else changed it first.
    pub async fn put_lease(&self, lease: &Lease, expected: Option<u64>) -> Result<bool, Error> {
        let put = self.lease_put(lease, expected)?;
        let result = self
            .client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if crate::error::code_of(&e) == Some("ConditionalCheckFailedException") => {
                Ok(false)
            }
            Err(e) => Err(from_sdk("DynamoDB PutItem", e)),
        }
    }

    fn lease_put(&self, lease: &Lease, expected: Option<u64>) -> Result<Put, Error> {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(&lease.key)),
            ("sk".to_owned(), s(LEASE_SK)),
            (
                "holders".to_owned(),
                AttributeValue::L(lease.holders.iter().map(s).collect()),
            ),
            ("standing".to_owned(), flag(lease.standing)),
            ("releasing".to_owned(), flag(lease.releasing)),
            ("provisioned".to_owned(), flag(lease.provisioned)),
            (
                "version".to_owned(),
                AttributeValue::N(lease.version.to_string()),
            ),
        ]);
        if let Some(at) = lease.released_at {
            item.insert("released_at".to_owned(), ts(at));
        }
        if let Some(id) = &lease.end_sessions_for {
            item.insert("end_sessions_for".to_owned(), s(id));
        }
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        put.build().map_err(|e| Error::InvalidInput(e.to_string()))
    }

    /// Deletes a lease only if it is still at `version`.
    pub async fn delete_lease(&self, key: &str, version: u64) -> Result<bool, Error> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .key("sk", s(LEASE_SK))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if crate::error::code_of(&e) == Some("ConditionalCheckFailedException") => {
                Ok(false)
            }
            Err(e) => Err(from_sdk("DynamoDB DeleteItem", e)),
        }
    }
}

/// The deny statements break glass keeps on one permission set (see [`crate::sessions`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Denies {
    pub denies: Vec<crate::sessions::Deny>,
    /// 0 when there is no item yet.
    pub version: u64,
}

const DENIES_SK: &str = "denies";

/// What the reconciler finds in the table besides requests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Keys {
    /// `lease#…` keys.
    pub leases: Vec<String>,
    /// Permission sets with a `sessions#…` item.
    pub sessions: Vec<String>,
    /// Keys (`<principal>#<account>#<permission set>`) with a creation intent.
    pub intents: Vec<String>,
}

impl Store {
    fn denies_key(ps: &PermissionSetArn) -> String {
        format!("sessions#{ps}")
    }

    pub async fn denies(&self, ps: &PermissionSetArn) -> Result<Denies, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::denies_key(ps)))
            .key("sk", s(DENIES_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("DynamoDB GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(Denies::default());
        };
        let bad = || Error::InvalidInput(format!("the session denies of {ps} are malformed"));
        let denies = item
            .get("denies")
            .and_then(|v| v.as_s().ok())
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(bad)?;
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        Ok(Denies { denies, version })
    }

    /// Writes the denies of `ps` only if they are still at `seen.version`. `Ok(false)` when
    /// someone else changed them first.
    pub async fn put_denies(
        &self,
        ps: &PermissionSetArn,
        seen: &Denies,
        denies: &[crate::sessions::Deny],
    ) -> Result<bool, Error> {
        let json = serde_json::to_string(denies)
            .map_err(|e| Error::InvalidInput(format!("session denies: {e}")))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(Self::denies_key(ps)))
            .item("sk", s(DENIES_SK))
            .item("denies", s(json))
            .item("version", AttributeValue::N((seen.version + 1).to_string()));
        let put = if seen.version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(seen.version.to_string()))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if crate::error::code_of(&e) == Some("ConditionalCheckFailedException") => {
                Ok(false)
            }
            Err(e) => Err(from_sdk("DynamoDB PutItem", e)),
        }
    }

    /// Every lease and every permission set with session denies (a Scan of keys only: the
    /// reconciler's view of what break glass holds).
    pub async fn keys(&self) -> Result<Keys, Error> {
        let mut keys = Keys::default();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .projection_expression("pk, sk")
                .filter_expression(
                    "begins_with(pk, :lease) OR begins_with(pk, :sessions) OR begins_with(pk, :created)",
                )
                .expression_attribute_values(":lease", s("lease#"))
                .expression_attribute_values(":sessions", s("sessions#"))
                .expression_attribute_values(":created", s("created#"))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| from_sdk("DynamoDB Scan", e))?;
            for item in out.items() {
                match item.get("pk").and_then(|v| v.as_s().ok()) {
                    Some(pk) if pk.starts_with("lease#") => keys.leases.push(pk.clone()),
                    Some(pk) if pk.starts_with("created#") => {
                        keys.intents.push(pk["created#".len()..].to_owned())
                    }
                    Some(pk) => {
                        if let Some(ps) = pk.strip_prefix("sessions#") {
                            keys.sessions.push(ps.to_owned());
                        }
                    }
                    None => {}
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                keys.leases.sort();
                keys.sessions.sort();
                keys.intents.sort();
                return Ok(keys);
            }
        }
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
        ("end_sessions".to_owned(), flag(r.end_sessions)),
    ]);
    let created = [
        ("reason", &r.reason),
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
        r.hold_token.clone().map(Change::HoldToken),
        r.granted_at.map(Change::GrantedAt),
        r.expires_at.map(Change::ExpiresAt),
        r.revoked_at.map(Change::RevokedAt),
        r.revoke_failed_at.map(Change::RevokeFailedAt),
        r.reported_at.map(Change::ReportedAt),
        r.sessions_denied_until.map(Change::SessionsDeniedUntil),
        r.sessions_lifted_at.map(Change::SessionsLiftedAt),
        r.ended_at.map(Change::EndedAt),
    ];
    for change in changed.iter().flatten() {
        let (k, v) = attribute(change);
        m.insert(k.to_owned(), v);
    }
    m
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<RequestRecord, Error> {
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
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> RequestRecord {
        RequestRecord {
            id: RequestId::derive(&["x"]),
            status: Status::Requested,
            version: 1,
            team_id: "T1".into(),
            slack_user_id: "U1".into(),
            sso_user_name: "alice@example.com".into(),
            account_id: AccountId::parse("123456789012").unwrap(),
            permission_set_arn: PermissionSetArn::parse(
                "arn:aws:sso:::permissionSet/ssoins-1/ps-2",
            )
            .unwrap(),
            duration: Duration::from_secs(3600),
            rule: "oncall".into(),
            reason: Some("pager: db down".into()),
            max_duration: Duration::from_secs(7200),
            notify_channel: Some("C0SEC".into()),
            thread_ts: None,
            permission_set_name: Some("BreakGlassAdmin".into()),
            channel_id: Some("C1".into()),
            response_url: None,
            requested_at: from_rfc3339("2026-11-24T08:00:00Z").unwrap(),
            principal_id: None,
            preexisting: false,
            shared: false,
            ended_by: None,
            ended_at: None,
            hold_token: None,
            clicks: Vec::new(),
            creation_request_id: None,
            granted_at: None,
            expires_at: from_rfc3339("2026-11-24T09:00:00Z"),
            revoked_at: None,
            reported_at: None,
            end_sessions: true,
            sessions_denied_until: from_rfc3339("2026-11-24T10:05:00Z"),
            sessions_lifted_at: None,
            revoke_failed_at: None,
        }
    }

    #[test]
    fn lease_keys_round_trip() {
        let r = sample();
        let key = Lease::key("u-1", &r.account_id, &r.permission_set_arn);
        assert_eq!(
            Lease::parse_key(&key),
            Some(("u-1".to_owned(), r.account_id, r.permission_set_arn))
        );
        for bad in [
            "lease#",
            "lease##123456789012#x",
            "request",
            "lease#u#1#arn",
        ] {
            assert_eq!(Lease::parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn item_round_trip() {
        let r = sample();
        assert_eq!(from_item(&to_item(&r)).unwrap(), r);
        let mut item = to_item(&r);
        item.insert("status".into(), s("exploded"));
        assert!(from_item(&item).is_err());
        item = to_item(&r);
        item.remove("account_id");
        assert!(from_item(&item).is_err());
    }
}
