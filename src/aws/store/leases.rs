//! Leases, creation intents and Break Glass buttons: the items that say who holds an
//! assignment, which assignments break glass may have created, and which request a person's
//! button last started.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{BUTTON_SK, INTENT_SK, Live, Store, flag, s, ts, written};
use crate::domain::RequestId;
use crate::domain::lease::{Intent, Lease};
use crate::domain::request::Button;
use crate::error::{Error, from_sdk};
use crate::time_util::from_rfc3339;

pub(super) const LEASE_SK: &str = "lease";

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
        written(result, "DynamoDB PutItem")
    }

    pub(super) fn lease_put(&self, lease: &Lease, expected: Option<u64>) -> Result<Put, Error> {
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
            ("live".to_owned(), s(Live::Lease.as_str())),
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
        written(result, "DynamoDB DeleteItem")
    }
}

impl Store {
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

    pub(super) fn button_put(
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
        written(result, "DynamoDB DeleteItem")
    }
}

#[cfg(test)]
mod tests {
    use crate::aws::store::tests::sample;
    use crate::domain::lease::Lease;

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
}
