//! AWS Organizations: the organization's active accounts and their names, for the modal's
//! type-ahead. Optional: without `organizations:ListAccounts` (or outside an organization)
//! the modal offers the accounts the policy names, and that is said once in the log.
//!
//! The list is read whole (every page) and kept for `ACCOUNTS_CACHE_SECONDS`, so a
//! keystroke costs no AWS call: 1,000 accounts are 50 pages (ListAccounts gives 20 a page)
//! once every five minutes. A keystroke waits for a reading at most its deadline; a longer
//! one (a cold start in a large organization) goes on in the background while the keystroke
//! is answered with the policy's accounts, and a later keystroke finds it done.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_organizations::types::{AccountState, AccountStatus};

use crate::cache::TtlCache;
use crate::domain::AccountId;
use crate::error::{Error, code_of, from_sdk};

/// One account of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: AccountId,
    pub name: String,
}

/// What is known of the organization's accounts when a caller must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    Accounts(Arc<Vec<OrgAccount>>),
    /// No permission, or no organization: the policy's accounts are offered.
    Unavailable,
    /// Still being read (a cold start of a large organization): not within the deadline.
    Loading,
}

/// A listing, as the task reading it hands it over.
type Listing = Result<Option<Arc<Vec<OrgAccount>>>, Error>;

#[derive(Clone)]
pub struct Organizations {
    client: aws_sdk_organizations::Client,
    cache: Arc<TtlCache<(), Option<Arc<Vec<OrgAccount>>>>>,
    /// The listing under way, if one is: a keystroke that could not wait for it leaves it
    /// running for the next one.
    reading: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<Listing>>>>,
}

impl Organizations {
    pub fn new(client: aws_sdk_organizations::Client, ttl: std::time::Duration) -> Self {
        Self {
            client,
            cache: Arc::new(TtlCache::new(ttl)),
            reading: Default::default(),
        }
    }

    /// The organization's active accounts, by id, as far as they are known within
    /// `deadline` (Slack waits 3 s for an answer): a listing that takes longer (ListAccounts
    /// gives 20 accounts a page) goes on in the background, and a later call finds it.
    pub async fn accounts_within(&self, deadline: std::time::Duration) -> Result<Known, Error> {
        let known = |listed: Option<Arc<Vec<OrgAccount>>>| {
            listed.map_or(Known::Unavailable, Known::Accounts)
        };
        if let Some(listed) = self.cache.get(&(), Instant::now()) {
            return Ok(known(listed));
        }
        let mut reading = {
            let mut slot = self.reading.lock().unwrap_or_else(|e| e.into_inner());
            slot.take().unwrap_or_else(|| {
                let me = self.clone();
                tokio::spawn(async move { me.read().await })
            })
        };
        match tokio::time::timeout(deadline, &mut reading).await {
            Ok(joined) => {
                let listed = joined
                    .map_err(|e| Error::Transient(format!("listing the accounts: {e}")))??;
                Ok(known(listed))
            }
            Err(_) => {
                *self.reading.lock().unwrap_or_else(|e| e.into_inner()) = Some(reading);
                Ok(Known::Loading)
            }
        }
    }

    /// Reads the whole list and keeps it; `None` when this function may not list the
    /// accounts (no permission, or no organization).
    async fn read(&self) -> Listing {
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
                // `State` replaces `Status` (retired by AWS on 2026-09-09); either says active.
                let active = match a.state() {
                    Some(state) => *state == AccountState::Active,
                    None => a.status() == Some(&AccountStatus::Active),
                };
                if !active {
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
