//! Worker side of ending live sessions (see [`crate::sessions`]): deny the user's old
//! sessions when the last lease of a rule with `end_sessions` is released, lift the deny once
//! they have expired.
//!
//! The deny is part of the release: the lease item records, when the last holder leaves, the
//! moment access ended and which request's rule ends sessions; whoever finishes the release
//! (Revoke, its retry, or the reconciler) deletes the assignment, puts the deny in place and
//! only then deletes the lease. A failure anywhere leaves the lease "releasing", so the deny
//! is never skipped; and while the lease is releasing no new grant of the same access can
//! start, so the deny (of sessions issued until it is put in place) never reaches a new
//! grant's sessions.

use super::output::Lifted;
use time::OffsetDateTime;

use super::Worker;
use crate::domain::request::{Audit, Change, RequestRecord};
use crate::domain::{AccountId, PermissionSetArn, RequestId};
use crate::error::Error;
use crate::sessions::{Deny, render, same_policy};
use crate::time_util::rfc3339;

const ACTOR: &str = "break-glass";
/// Attempts at a versioned read-modify-write before handing back to the caller's retry.
const ATTEMPTS: usize = 8;

impl Worker {
    /// Denies `user_id`'s sessions of `ps` in `account` issued before `before`, named after
    /// `request_id`, and provisions the permission set. Idempotent: a retry finds the deny
    /// recorded and keeps its times. Returns the deny in force.
    pub(crate) async fn deny_sessions(
        &self,
        account: &AccountId,
        ps: &PermissionSetArn,
        user_id: &str,
        request_id: &str,
        before: OffsetDateTime,
    ) -> Result<Deny, Error> {
        let sid = Deny::sid_for(request_id, account.as_str());
        let session = self.sso.session_duration(&self.instance, ps).await?;
        let fresh = Deny::new(
            request_id,
            user_id,
            account.as_str(),
            before,
            session,
            std::time::Duration::from_secs(self.end_sessions_margin.as_secs()),
        );
        let mut deny = fresh.clone();
        self.change_denies(ps, |denies| match denies.iter().find(|d| d.sid == sid) {
            Some(existing) => {
                deny = existing.clone();
                false
            }
            None => {
                denies.push(fresh.clone());
                true
            }
        })
        .await?;
        self.apply_denies(ps, &[], true).await?;
        tracing::info!(request = request_id, user = user_id, account = %account, until = %rfc3339(deny.until), "sessions ended");
        Ok(deny)
    }

    /// Records on the request the denies its releases put in place (one per account, found by
    /// the request they name), for the state machine's lift (after the last of them) and the
    /// audit trail. A no-op when there is none.
    pub(crate) async fn note_sessions_denied(
        &self,
        rec: RequestRecord,
    ) -> Result<RequestRecord, Error> {
        if !rec.end_sessions || rec.sessions_denied_until.is_some() {
            return Ok(rec);
        }
        let denies = self.denies_of(&rec).await?;
        let Some(until) = denies.iter().map(|d| d.until).max() else {
            return Ok(rec);
        };
        let detail = denies
            .iter()
            .map(|deny| {
                format!(
                    "denied the sessions of user {} in {} issued before {} (inline policy statement {}), until {}",
                    deny.user_id,
                    deny.account_id,
                    rfc3339(deny.before),
                    deny.sid,
                    rfc3339(deny.until)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.store
            .note(
                &rec,
                vec![Change::SessionsDeniedUntil(until)],
                Audit {
                    event: "sessions_ended",
                    actor: ACTOR,
                    detail,
                },
            )
            .await
    }

    /// The state machine's last step: lifts this request's deny once its sessions have all
    /// expired (and any other expired deny on the permission set). Early, it fails as
    /// `Transient` so that the state machine retries.
    pub async fn lift_sessions(&self, id: &RequestId) -> Result<Lifted, Error> {
        let rec = self.load(id).await?;
        let Some(until) = rec.sessions_denied_until else {
            return Ok(Lifted::default());
        };
        let now = OffsetDateTime::now_utc();
        if now < until {
            return Err(Error::Transient(format!(
                "the deny on old sessions lasts until {}",
                rfc3339(until)
            )));
        }
        let lifted = self.lift_expired(&rec.permission_set_arn, now).await?;
        // A deny recorded with a fraction of a second (before the times were whole seconds)
        // can outlast the record's `until` by that fraction: look again, never leave it.
        if let Some(d) = self
            .denies_of(&rec)
            .await?
            .into_iter()
            .max_by_key(|d| d.until)
        {
            return Err(Error::Transient(format!(
                "the deny on old sessions lasts until {}",
                rfc3339(crate::time_util::ceil_second(d.until))
            )));
        }
        Ok(Lifted {
            lifted: lifted.into_iter().map(|d| d.sid).collect(),
            sessions_denied: true,
        })
    }

    /// The denies in force that name the request (one for each of its accounts released).
    async fn denies_of(&self, rec: &RequestRecord) -> Result<Vec<Deny>, Error> {
        let denies = self.store.denies(&rec.permission_set_arn).await?.denies;
        Ok(denies
            .into_iter()
            .filter(|d| d.request_id == rec.id.as_str())
            .collect())
    }

    /// Removes every deny on `ps` whose sessions have all expired, provisions the accounts
    /// concerned, and records the lift on each request. Returns what was removed.
    pub(crate) async fn lift_expired(
        &self,
        ps: &PermissionSetArn,
        now: OffsetDateTime,
    ) -> Result<Vec<Deny>, Error> {
        let mut lifted = Vec::new();
        self.change_denies(ps, |denies| {
            lifted = denies.iter().filter(|d| d.until <= now).cloned().collect();
            denies.retain(|d| d.until > now);
            !lifted.is_empty()
        })
        .await?;
        // Render even when nothing was removed now: an earlier attempt may have recorded
        // the removal and failed before the inline policy caught up. (If it failed after
        // writing but before provisioning, the account keeps the lifted statement until its
        // next provisioning: harmless, it only matches sessions that have expired.)
        self.apply_denies(ps, &lifted, false).await?;
        for d in &lifted {
            let Ok(id) = RequestId::parse(&d.request_id) else {
                continue;
            };
            let noted = match self.store.get(&id).await {
                Ok(Some(rec)) if rec.sessions_lifted_at.is_none() => self
                    .store
                    .note(
                        &rec,
                        vec![Change::SessionsLiftedAt(now)],
                        Audit {
                            event: "sessions_deny_lifted",
                            actor: ACTOR,
                            detail: format!(
                                "removed statement {} from the permission set: every session it denied has expired",
                                d.sid
                            ),
                        },
                    )
                    .await
                    .map(drop),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = noted {
                tracing::warn!(request = %id, error = %e, "could not record the lift of a session deny");
            }
        }
        if !lifted.is_empty() {
            tracing::info!(permission_set = %ps, lifted = lifted.len(), "session denies lifted");
        }
        Ok(lifted)
    }

    /// A versioned read-modify-write of the denies of `ps`; `change` says whether it changed
    /// anything (nothing is written otherwise).
    async fn change_denies(
        &self,
        ps: &PermissionSetArn,
        mut change: impl FnMut(&mut Vec<Deny>) -> bool,
    ) -> Result<(), Error> {
        for _ in 0..ATTEMPTS {
            let seen = self.store.denies(ps).await?;
            let mut next = seen.denies.clone();
            if !change(&mut next) || self.store.put_denies(ps, &seen, &next).await? {
                return Ok(());
            }
        }
        Err(Error::Transient(format!(
            "the session denies of {ps} kept changing under us"
        )))
    }

    /// Makes the permission set's inline policy say what the recorded denies say (keeping the
    /// operator's own statements), then provisions it to every account a deny is for, and to
    /// the accounts of `removed`. It renders again until the version it rendered is still the
    /// latest after its write, so a concurrent writer's statement is never lost; and since
    /// every writer provisions all those accounts after its last write, the last provisioning
    /// of each account carries the final policy. Without `force`, a call that neither wrote
    /// nor removed anything provisions nothing (the hourly reconcile stays quiet).
    async fn apply_denies(
        &self,
        ps: &PermissionSetArn,
        removed: &[Deny],
        force: bool,
    ) -> Result<(), Error> {
        let mut wrote = false;
        for _ in 0..ATTEMPTS {
            let seen = self.store.denies(ps).await?;
            let current = self.sso.inline_policy(&self.instance, ps).await?;
            let wanted = render(current.as_deref(), &seen.denies)?;
            if !same_policy(current.as_deref(), wanted.as_deref()) {
                self.sso
                    .set_inline_policy(&self.instance, ps, wanted.as_deref())
                    .await?;
                wrote = true;
            }
            if self.store.denies(ps).await?.version != seen.version {
                continue;
            }
            if !(wrote || force || !removed.is_empty()) {
                return Ok(());
            }
            let mut accounts: Vec<&str> = seen
                .denies
                .iter()
                .chain(removed)
                .map(|d| d.account_id.as_str())
                .collect();
            accounts.sort_unstable();
            accounts.dedup();
            for account in accounts {
                let account = AccountId::parse(account)
                    .map_err(|e| Error::InvalidInput(format!("stored deny: {e}")))?;
                self.sso.provision(&self.instance, ps, &account).await?;
            }
            return Ok(());
        }
        Err(Error::Transient(format!(
            "the session denies of {ps} kept changing under us"
        )))
    }
}
