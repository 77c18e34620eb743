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
//! One file a kind of item: `requests.rs` (requests and their audit trail), `indexes.rs`
//! (the pending reviews and the requests of a day, through the two sparse indexes), `leases.rs`
//! (leases, creation intents, buttons), `denies.rs` (session denies); `mod.rs` has the table,
//! the transaction helper and the reconciler's scan of keys.
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

pub use denies::Denies;

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

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
