//! Where the reconciler's sweep of the policy's pairs stopped: one item (`pk = reconcile`,
//! `sk = sweep`), read with a Get and written on its version, so that a run continues where
//! the last one stopped and two runs at once do not both move it.

use super::{Store, s};
use crate::error::{Error, from_sdk};

const PK: &str = "reconcile";
const SK: &str = "sweep";

/// The sweep's position: the last pair done (`<account>#<permission set>`), none at the
/// start of a sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    pub after: Option<String>,
    pub version: u64,
}

impl Store {
    pub async fn sweep(&self) -> Result<Sweep, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("DynamoDB GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(Sweep::default());
        };
        Ok(Sweep {
            after: item
                .get("after")
                .and_then(|v| v.as_s().ok())
                .filter(|a| !a.is_empty())
                .cloned(),
            version: item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        })
    }

    /// Moves the sweep on from `seen` (none: a new sweep starts next run). `Ok(false)` when
    /// another run moved it first.
    pub async fn put_sweep(&self, seen: &Sweep, after: Option<&str>) -> Result<bool, Error> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(PK))
            .item("sk", s(SK))
            .item("after", s(after.unwrap_or_default()));
        super::put_versioned(put, seen.version).await
    }
}
