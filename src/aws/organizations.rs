//! AWS Organizations: the organization's active accounts and their names, for the modal's
//! type-ahead. Optional: without `organizations:ListAccounts` (or outside an organization)
//! the modal offers the accounts the policy names, and that is said once in the log.
//!
//! The list is read whole (every page) and kept for `ACCOUNTS_CACHE_SECONDS`, so a
//! keystroke costs no AWS call: 1,000 accounts are 50 pages once every five minutes.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_organizations::types::AccountStatus;

use crate::cache::TtlCache;
use crate::domain::AccountId;
use crate::error::{Error, code_of, from_sdk};

/// One account of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: AccountId,
    pub name: String,
}

#[derive(Clone)]
pub struct Organizations {
    client: aws_sdk_organizations::Client,
    cache: Arc<TtlCache<(), Option<Arc<Vec<OrgAccount>>>>>,
}

impl Organizations {
    pub fn new(client: aws_sdk_organizations::Client, ttl: std::time::Duration) -> Self {
        Self {
            client,
            cache: Arc::new(TtlCache::new(ttl)),
        }
    }

    /// The organization's active accounts, by id; `None` when this function may not list
    /// them (no permission, or no organization): the caller falls back to the policy's.
    pub async fn accounts(&self) -> Result<Option<Arc<Vec<OrgAccount>>>, Error> {
        if let Some(known) = self.cache.get(&(), Instant::now()) {
            return Ok(known);
        }
        let listed = match self.list().await {
            Ok(accounts) => Some(Arc::new(accounts)),
            Err(Unlisted::NotAllowed(why)) => {
                tracing::warn!(
                    why,
                    "cannot list the organization's accounts: the modal offers the policy's"
                );
                None
            }
            Err(Unlisted::Failed(e)) => return Err(e),
        };
        self.cache.insert((), listed.clone(), Instant::now());
        Ok(listed)
    }

    async fn list(&self) -> Result<Vec<OrgAccount>, Unlisted> {
        let mut pages = self.client.list_accounts().into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| match code_of(&e) {
                Some(
                    code @ ("AccessDeniedException"
                    | "AWSOrganizationsNotInUseException"
                    | "AccessDenied"),
                ) => Unlisted::NotAllowed(code.to_owned()),
                _ => Unlisted::Failed(from_sdk("Organizations ListAccounts", e)),
            })?;
            for a in page.accounts() {
                if a.status() != Some(&AccountStatus::Active) {
                    continue;
                }
                let Some(id) = a.id().and_then(|id| AccountId::parse(id).ok()) else {
                    continue;
                };
                out.push(OrgAccount {
                    id,
                    name: a.name().unwrap_or_default().to_owned(),
                });
            }
        }
        // An organization always lists at least its management account: no account at all
        // means no organization to speak of (moto answers so outside one).
        if out.is_empty() {
            return Err(Unlisted::NotAllowed("no active account listed".into()));
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

enum Unlisted {
    NotAllowed(String),
    Failed(Error),
}
