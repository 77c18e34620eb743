//! Worker side of ending live sessions (see [`crate::sessions`]): put a deny on the user's
//! old sessions when Revoke deleted their assignment, lift it once they have expired.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::worker::Worker;
use crate::aws::store::{Audit, RequestRecord, ts};
use crate::domain::{AccountId, PermissionSetArn, RequestId};
use crate::error::Error;
use crate::sessions::{Deny, render, same_policy};
use crate::time_util::rfc3339;

const ACTOR: &str = "break-glass";
/// Attempts at a versioned read-modify-write before handing back to the caller's retry.
const ATTEMPTS: usize = 8;

impl Worker {
    /// Denies the user's sessions issued before now, if Revoke deleted the assignment of a
    /// request whose rule ends live sessions. Idempotent: a retry finds the deny recorded.
    pub(crate) async fn end_sessions(&self, rec: RequestRecord) -> Result<RequestRecord, Error> {
        if !rec.sessions_to_end || rec.sessions_denied_until.is_some() {
            return Ok(rec);
        }
        let Some(user_id) = rec.principal_id.clone() else {
            return Ok(rec);
        };
        let ps = &rec.permission_set_arn;
        let sid = Deny::sid_for(rec.id.as_str());
        let session = self.sso.session_duration(&self.instance, ps).await?;
        let now = OffsetDateTime::now_utc();
        let fresh = Deny {
            sid: sid.clone(),
            request_id: rec.id.to_string(),
            user_id: user_id.clone(),
            account_id: rec.account_id.to_string(),
            before: now,
            until: now
                + session
                + std::time::Duration::from_secs(self.end_sessions_margin.as_secs()),
        };
        // A retry keeps the deny an earlier attempt recorded (and its times).
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
        self.apply_denies(ps).await?;
        self.sso
            .provision(&self.instance, ps, &rec.account_id)
            .await?;
        let status = rec.status;
        let rec = self
            .store
            .advance(
                &rec,
                status,
                vec![("sessions_denied_until", ts(deny.until))],
                Audit {
                    event: "sessions_ended",
                    actor: ACTOR,
                    detail: format!(
                        "denied the sessions of user {user_id} in {} issued before {} (inline policy statement {}), until {}",
                        rec.account_id,
                        rfc3339(deny.before),
                        deny.sid,
                        rfc3339(deny.until)
                    ),
                },
            )
            .await?;
        tracing::info!(request = %rec.id, until = %rfc3339(deny.until), "sessions ended");
        Ok(rec)
    }

    /// The state machine's last step: lifts this request's deny once its sessions have all
    /// expired (and any other expired deny on the permission set). Early, it fails as
    /// `Transient` so that the state machine retries.
    pub async fn lift_sessions(&self, id: &RequestId) -> Result<Value, Error> {
        let rec = self.load(id).await?;
        let Some(until) = rec.sessions_denied_until else {
            return Ok(json!({"lifted": [], "sessions_denied": false}));
        };
        let now = OffsetDateTime::now_utc();
        if now < until {
            return Err(Error::Transient(format!(
                "the deny on old sessions lasts until {}",
                rfc3339(until)
            )));
        }
        let lifted = self.lift_expired(&rec.permission_set_arn, now).await?;
        if rec.sessions_lifted_at.is_none() {
            let status = rec.status;
            self.store
                .advance(
                    &rec,
                    status,
                    vec![("sessions_lifted_at", ts(now))],
                    Audit {
                        event: "sessions_deny_lifted",
                        actor: ACTOR,
                        detail: format!(
                            "removed statement {} from the permission set: every session it denied has expired",
                            Deny::sid_for(id.as_str())
                        ),
                    },
                )
                .await?;
        }
        Ok(json!({"lifted": lifted.iter().map(|d| &d.sid).collect::<Vec<_>>()}))
    }

    /// Removes every deny on `ps` whose sessions have all expired, and provisions the
    /// accounts concerned. Returns what was removed.
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
        // the removal and failed before the inline policy caught up.
        let changed = self.apply_denies(ps).await?;
        let mut accounts: Vec<&str> = lifted.iter().map(|d| d.account_id.as_str()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        for account in accounts {
            let account = AccountId::parse(account)
                .map_err(|e| Error::InvalidInput(format!("stored deny: {e}")))?;
            self.sso.provision(&self.instance, ps, &account).await?;
        }
        if changed || !lifted.is_empty() {
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
    /// operator's own statements). Re-renders until the version it rendered is still the
    /// latest after its write, so a concurrent writer's statement is never lost. Returns
    /// whether it wrote anything.
    async fn apply_denies(&self, ps: &PermissionSetArn) -> Result<bool, Error> {
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
            if self.store.denies(ps).await?.version == seen.version {
                return Ok(wrote);
            }
        }
        Err(Error::Transient(format!(
            "the session denies of {ps} kept changing under us"
        )))
    }
}
