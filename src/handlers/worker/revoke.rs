//! Revoke: leave the lease set (the last lease out deletes the assignment, never standing
//! access, and ends live sessions where the rule says so), and the alarm when that fails for
//! good. Safe in every state: every failure after Grant ends up here. A request for several
//! accounts leaves each account's lease at once, and one that fails holds back none of the
//! others.

use time::OffsetDateTime;

use super::output::{Alarm, Revoked};
use super::{ACTOR, Left, Worker};
use crate::domain::lease::{Lease, LeaveStep, leave_step, release};
use crate::domain::request::{Audit, Change, RequestRecord, Status};
use crate::domain::{AccountId, PermissionSetArn, RequestId};
use crate::error::Error;
use crate::slack::messages;
use crate::time_util::rfc3339;

impl Worker {
    /// Leaves the lease set; the last lease out deletes the assignment unless it was standing
    /// access, and ends live sessions when its rule says so. `holder` is the leaving request
    /// and whether its rule ends sessions; `None` only finishes a release left half-way, and
    /// only one started at least `settle` ago (a Revoke may be finishing it right now).
    pub(crate) async fn leave(
        &self,
        account: &AccountId,
        ps: &PermissionSetArn,
        principal: &str,
        holder: Option<(&str, bool)>,
        settle: time::Duration,
    ) -> Result<Left, Error> {
        let key = Lease::key(principal, account, ps);
        for _ in 0..5 {
            let current = self.store.lease(&key).await?;
            let now = OffsetDateTime::now_utc();
            let lease = match leave_step(current.as_ref(), holder, now, settle) {
                LeaveStep::Nothing(why) => return Ok(Left::kept(why)),
                LeaveStep::Finish(lease) => lease,
                LeaveStep::Write { next, expected } => {
                    if !self.store.put_lease(&next, Some(expected)).await? {
                        continue;
                    }
                    if !next.holders.is_empty() {
                        return Ok(Left {
                            outcome: format!(
                                "assignment kept: {} other live lease(s) still need it ({})",
                                next.holders.len(),
                                next.holders.join(", ")
                            ),
                            deleted: false,
                            others: next.holders.clone(),
                        });
                    }
                    next
                }
            };
            let plan = release(&lease);
            let left = if !plan.delete_assignment {
                Left::kept("standing access kept: the assignment existed before break glass")
            } else {
                let deletion = self
                    .sso
                    .delete_assignment(&self.instance, account, ps, principal)
                    .await?;
                if let Some(req) = &deletion {
                    self.sso.wait_deleted(&self.instance, req).await?;
                }
                let mut outcome = if deletion.is_some() {
                    "assignment deleted".to_owned()
                } else {
                    "the assignment was already gone".to_owned()
                };
                if let Some(request) = &plan.end_sessions_for {
                    // The assignment is gone, so no session can be issued any more, and the
                    // releasing lease keeps a new grant out until the deny is in place: every
                    // session up to now (plus clock skew) is an old one.
                    let before = OffsetDateTime::now_utc() + crate::sessions::CLOCK_SKEW;
                    let deny = self
                        .deny_sessions(account, ps, principal, request, before)
                        .await?;
                    outcome.push_str(&format!(
                        "; sessions issued before {} denied until {}",
                        rfc3339(deny.before),
                        rfc3339(deny.until)
                    ));
                }
                Left {
                    outcome,
                    deleted: deletion.is_some(),
                    others: Vec::new(),
                }
            };
            self.store.delete_lease(&key, lease.version).await?;
            return Ok(left);
        }
        Err(Error::Transient(format!(
            "lease {key} kept changing under us"
        )))
    }

    /// Leaves the lease (the last one out deletes the assignment, never standing access) and
    /// waits until it is gone. Safe in every state: it is also where every failure after
    /// Grant ends up.
    pub async fn revoke(&self, id: &RequestId) -> Result<Revoked, Error> {
        let rec = self.load(id).await?;
        let rec = match rec.status {
            Status::Revoked | Status::Reported => rec,
            Status::Requested | Status::Granting | Status::Granted => {
                let left = match (&rec.principal_id, rec.status) {
                    (Some(p), Status::Granting | Status::Granted) => {
                        self.leave_all(&rec, p).await?
                    }
                    _ => Left::kept("nothing to delete: access was never granted"),
                };
                let now = OffsetDateTime::now_utc();
                let ended_early = rec.ended_by.is_some();
                let rec = self
                    .store
                    .advance(
                        &rec,
                        Status::Revoked,
                        vec![Change::RevokedAt(now)],
                        Audit {
                            event: "revoked",
                            actor: ACTOR,
                            detail: left.outcome.clone(),
                        },
                    )
                    .await?;
                tracing::info!(outcome = left.outcome, "revoked");
                let why = match (rec.granted_at, ended_early) {
                    (None, _) => "access could not be granted; anything partly granted was removed",
                    (Some(_), true) => "ended early",
                    (Some(_), false) => "expired",
                };
                match self.still_holding(&left.others).await {
                    Some((other, until)) => {
                        self.tell(rec, |a| messages::continues(a, why, &other, until))
                            .await
                    }
                    None => self.tell(rec, |a| messages::revoked(a, why)).await,
                }
            }
        };
        let rec = self.note_sessions_denied(rec).await?;
        self.refresh_home(&rec).await;
        Ok(Revoked {
            revoked_at: rec.revoked_at.map(rfc3339),
            sessions_denied_until: rec.sessions_denied_until.map(rfc3339),
        })
    }

    /// Leaves the lease of every account of the request at once. Each account is left on its
    /// own: one that fails keeps none of the others from being revoked; the error (for the
    /// state machine's retry, then the alarm) names the accounts that failed, and the audit
    /// trail keeps what was done in the others (a retry finds them released already).
    async fn leave_all(&self, rec: &RequestRecord, principal: &str) -> Result<Left, Error> {
        let holder = Some((rec.id.as_str(), rec.end_sessions));
        if rec.more_accounts.is_empty() {
            return self
                .leave(
                    &rec.account_id,
                    &rec.permission_set_arn,
                    principal,
                    holder,
                    time::Duration::ZERO,
                )
                .await;
        }
        let accounts = rec.accounts();
        let leave = |account| {
            self.leave(
                account,
                &rec.permission_set_arn,
                principal,
                holder,
                time::Duration::ZERO,
            )
        };
        let results = if rec.end_sessions {
            // Each release writes the permission set's one list of session denies and
            // provisions it: one after the other, they never contend for it.
            let mut results = Vec::new();
            for account in &accounts {
                results.push(leave(account).await);
            }
            results
        } else {
            futures_util::future::join_all(accounts.iter().map(leave)).await
        };
        let mut all = Left::kept("");
        let mut done = Vec::new();
        let mut failures = Vec::new();
        for (account, result) in accounts.iter().zip(results) {
            match result {
                Ok(left) => {
                    done.push(format!("account {account}: {}", left.outcome));
                    all.deleted |= left.deleted;
                    all.others.extend(left.others);
                }
                Err(e) => {
                    tracing::error!(account = %account, error = %e, "revoke of one account failed");
                    failures.push((format!("account {account}"), e));
                }
            }
        }
        all.outcome = done.join("; ");
        all.others.sort();
        all.others.dedup();
        if let Some(e) = Error::of_parts(failures) {
            if !done.is_empty() {
                let audit = Audit {
                    event: "revoke_partial",
                    actor: ACTOR,
                    detail: format!("{}; still to revoke: {e}", all.outcome),
                };
                if let Err(w) = self.store.note(rec, Vec::new(), audit).await {
                    tracing::warn!(error = %w, "could not record the accounts revoked so far");
                }
            }
            return Err(e);
        }
        Ok(all)
    }

    /// Whether the request's release of `account` is unfinished: its lease still lists the
    /// request, or is being released (true when that cannot be told).
    async fn release_left(&self, rec: &RequestRecord, account: &AccountId) -> bool {
        let Some(principal) = &rec.principal_id else {
            return true;
        };
        let key = Lease::key(principal, account, &rec.permission_set_arn);
        match self.store.lease(&key).await {
            Ok(Some(l)) => l.releasing || l.holders.iter().any(|h| h == rec.id.as_str()),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The state machine gave up on Revoke: mark the request, raise the alarm (the
    /// `revoke failed` log line feeds a metric), and tell the requester and the thread.
    pub async fn revoke_failed(&self, id: &RequestId) -> Result<Alarm, Error> {
        let rec = self.load(id).await?;
        // The accounts whose assignment may still be there (all of them when that cannot be
        // told); with every assignment gone, what failed is ending the live sessions. Of a
        // request for several, only the accounts whose release is still this request's are
        // looked at: another's live lease or standing access is not for anyone to remove.
        let mut still = Vec::new();
        for account in rec.accounts() {
            if !rec.more_accounts.is_empty() && !self.release_left(&rec, &account).await {
                continue;
            }
            let gone = match &rec.principal_id {
                Some(p) => self
                    .sso
                    .has_assignment(&self.instance, &account, &rec.permission_set_arn, p)
                    .await
                    .is_ok_and(|held| !held),
                None => false,
            };
            if !gone {
                still.push(account);
            }
        }
        tracing::error!(
            user = %rec.sso_user_name,
            accounts = %rec.accounts_text(),
            assigned = %crate::domain::accounts_text(&still),
            "revoke failed"
        );
        let sessions_only = still.is_empty() && rec.end_sessions;
        let rec = self
            .store
            .note(
                &rec,
                vec![Change::RevokeFailedAt(OffsetDateTime::now_utc())],
                Audit {
                    event: "revoke_failed",
                    actor: ACTOR,
                    detail: if sessions_only {
                        "the assignment was deleted, but ending the user's live sessions failed after every retry".into()
                    } else if rec.more_accounts.is_empty() || still.is_empty() {
                        "Revoke failed after every retry: remove the assignment by hand".into()
                    } else {
                        format!(
                            "Revoke failed after every retry: remove the assignment by hand in account(s) {}",
                            crate::domain::accounts_text(&still)
                        )
                    },
                },
            )
            .await?;
        if sessions_only {
            self.tell(rec, messages::sessions_not_ended).await;
        } else {
            let still = (!rec.more_accounts.is_empty() && !still.is_empty())
                .then(|| crate::slack::accounts_mrkdwn(&still, &self.policy));
            self.tell(rec, |a| messages::revoke_failed(a, still.as_deref()))
                .await;
        }
        Ok(Alarm { alarm: true })
    }
}
