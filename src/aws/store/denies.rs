//! The deny statements on old sessions, per permission set, versioned.

use super::{Store, s};
use crate::domain::PermissionSetArn;
use crate::error::{Error, from_sdk};

/// The deny statements break glass keeps on one permission set (see [`crate::sessions`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Denies {
    pub denies: Vec<crate::sessions::Deny>,
    /// 0 when there is no item yet.
    pub version: u64,
}

pub(super) const DENIES_SK: &str = "denies";

impl Store {
    pub fn denies_key(ps: &PermissionSetArn) -> String {
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
            .item("denies", s(json));
        // Only denies still in force are live: an empty list leaves the reconciler's index.
        let put = if denies.is_empty() {
            put
        } else {
            put.item("live", s(super::Live::Sessions.as_str()))
        };
        super::put_versioned(put, seen.version).await
    }
}
