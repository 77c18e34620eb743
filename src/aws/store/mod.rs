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
//! - `pk = reconcile`, `sk = sweep`: where the reconciler's sweep stopped ([`Sweep`]).
//!
//! Leases, creation intents and session denies in force carry `live` (their kind), the key
//! of the sparse `live` index: the reconciler finds what break glass holds now with a Query
//! of it, whatever the history. No code scans the table.
//!
//! One file a kind of item: `requests.rs` (requests and their audit trail; the request item's
//! fields in `requests/item.rs`), `indexes.rs`
//! (the pending reviews and the requests of a day, through the two sparse indexes),
//! `leases.rs` (leases, creation intents, buttons), `denies.rs` (session denies), `sweep.rs`
//! (the reconciler's position); `mod.rs` has the table, the transaction helper and the
//! reconciler's view of the live items.
//!
//! Every state change is one transaction: a conditional update of the request (expected
//! status and version) plus the audit item. A stale timer or a duplicated task therefore
//! either finds the request already moved on, or loses the condition; it never acts twice,
//! and nothing is ever changed without its audit record.

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use crate::domain::RequestId;
use crate::domain::request::RequestRecord;
use crate::error::{Error, from_sdk};
use crate::time_util::rfc3339;

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

/// A conditional write's outcome: `Ok(false)` when its condition failed (someone else wrote
/// first, or the item is not there).
fn written<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    what: &str,
) -> Result<bool, Error>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if crate::error::code_of(&e) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(from_sdk(what, e)),
    }
}

/// Puts an item that must still be at version `seen` (0: not there yet) as version
/// `seen + 1`; `Ok(false)` when someone else wrote first.
async fn put_versioned(
    put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    seen: u64,
) -> Result<bool, Error> {
    let put = put.item("version", AttributeValue::N((seen + 1).to_string()));
    let put = if seen == 0 {
        put.condition_expression("attribute_not_exists(pk)")
    } else {
        put.condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(seen.to_string()))
    };
    written(put.send().await, "DynamoDB PutItem")
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

mod denies;
mod indexes;
mod leases;
mod requests;
mod sweep;

pub use denies::Denies;
pub use sweep::Sweep;

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// The live items: what break glass holds right now. Each carries its kind in `live`, and
/// only these items have that attribute, so the sparse `live` index holds nothing else:
/// history (requests, audit rows) never enters the reconciler's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// `lease#…`: the live requests sharing one assignment.
    Lease,
    /// `created#…`: an assignment break glass may have created.
    Intent,
    /// `sessions#…`: denies on old sessions still in force.
    Sessions,
}

impl Live {
    pub fn as_str(self) -> &'static str {
        match self {
            Live::Lease => "lease",
            Live::Intent => "intent",
            Live::Sessions => "sessions",
        }
    }
}

/// The sparse index of live items: `live` (their kind) → `pk`, keys only.
pub(super) const LIVE_INDEX: &str = "live";

/// What the reconciler finds in the table besides requests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Keys {
    /// `lease#…` keys.
    pub leases: Vec<String>,
    /// Permission sets with denies on old sessions in force.
    pub sessions: Vec<String>,
    /// Keys (`<principal>#<account>#<permission set>`) with a creation intent.
    pub intents: Vec<String>,
}

impl Store {
    /// Every live lease, creation intent and permission set with session denies: one Query
    /// of the sparse `live` index per kind, keys only, every page. What it costs grows with
    /// what break glass holds now, never with the history.
    pub async fn keys(&self) -> Result<Keys, Error> {
        let (leases, intents, sessions) = tokio::try_join!(
            self.live(Live::Lease),
            self.live(Live::Intent),
            self.live(Live::Sessions)
        )?;
        let strip = |keys: Vec<String>, prefix: &str| -> Vec<String> {
            keys.into_iter()
                .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
                .collect()
        };
        Ok(Keys {
            leases: leases
                .into_iter()
                .filter(|k| k.starts_with("lease#"))
                .collect(),
            intents: strip(intents, "created#"),
            sessions: strip(sessions, "sessions#"),
        })
    }

    /// Puts an existing item of this kind into the live index; `Ok(false)` when there is no
    /// such item. For items written before the index existed (`break-glass leases index`).
    pub async fn mark_live(&self, kind: Live, pk: &str) -> Result<bool, Error> {
        let sk = match kind {
            Live::Lease => leases::LEASE_SK,
            Live::Intent => INTENT_SK,
            Live::Sessions => denies::DENIES_SK,
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("SET live = :kind")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":kind", s(kind.as_str()))
            .send()
            .await;
        written(result, "DynamoDB UpdateItem")
    }

    /// The `pk` of every live item of one kind, in key order.
    async fn live(&self, kind: Live) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(LIVE_INDEX)
                .key_condition_expression("live = :kind")
                .expression_attribute_values(":kind", s(kind.as_str()))
                .projection_expression("pk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| from_sdk("DynamoDB Query", e))?;
            out.extend(
                page.items()
                    .iter()
                    .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned()),
            );
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::request::Status;
    use crate::domain::{AccountId, Duration, PermissionSetArn};
    use crate::time_util::from_rfc3339;

    pub fn sample() -> RequestRecord {
        RequestRecord {
            id: RequestId::derive(&["x"]),
            status: Status::Requested,
            version: 1,
            team_id: "T1".into(),
            slack_user_id: "U1".into(),
            sso_user_name: "alice@example.com".into(),
            account_id: AccountId::parse("123456789012").unwrap(),
            more_accounts: Vec::new(),
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
            after_end_checked_at: None,
            reconciled_at: None,
            digest: None,
            review: Default::default(),
            approval: Default::default(),
            incident_id: None,
            incident_url: None,
        }
    }
}
