//! The safety net: compare what Identity Center says with what break glass holds.
//!
//! A run costs what break glass holds now, not what it ever held:
//!
//! 1. **What break glass holds.** The live leases and creation intents come from the
//!    table's sparse `live` index (a Query; history is never read). Each of their users is
//!    listed once across the organization (`ListAccountAssignmentsForPrincipal`), whatever
//!    the policy's `*` covers (where that call is refused, their held pairs one by one),
//!    and each leased or intended assignment is judged:
//!    - some lease is live → kept;
//!    - no lease is live (the execution was stopped, failed or timed out, or the lease is
//!      long over) → each request is marked revoked (a fenced write, so a late task of the
//!      stopped execution can never act on it again), the lease released and the assignment
//!      deleted, live sessions ended where the rule says so, Slack told. Finished holders
//!      are retired even when another holder is live (the assignment then stays for it);
//!    - an assignment with a creation intent and no lease (a grant that landed after its
//!      request had ended) → revoked, audited on that request, announced.
//!
//!    Creation intents with no assignment left are forgotten once no grant can be in flight.
//! 2. **Standing access.** The (account, permission set) pairs the policy names explicitly
//!    are listed pair by pair (`ListAccountAssignments`) in key order, from where the last
//!    run stopped until the run's budget (`RECONCILE_BUDGET_SECONDS`,
//!    `RECONCILE_PAIRS_PER_RUN`) is spent: assignments break glass never granted are kept
//!    and named (warn), or deleted where a policy rule says `standing_access = "remove"`.
//!    The position is kept in the table; a sweep of any size finishes over several runs.
//!
//! Identity Center calls go at `IDENTITY_CENTER_CALLS_PER_SECOND`, slower after a throttle
//! (see [`crate::aws::pace`]). Expired denies on old sessions are lifted too, and reviews
//! reminded. The summary names every assignment, what was done and why, and how far the
//! sweep got; it is returned, logged, and posted to the policy's reconcile channel when
//! something was revoked, removed or failed.
//!
//! This file judges and acts; `reconcile/sweep.rs` does the listings (the held users, the
//! sweep and its budget, the pace).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Left, Worker};
use crate::aws::sfn::Execution;
use crate::aws::sso::Principal;
use crate::domain::lease::{Intent, Lease};
use crate::domain::request::{Audit, Change, RequestRecord, Status};
use crate::domain::{AccountId, PermissionSetArn, RequestId};
use crate::error::Error;
use crate::policy::Standing;
use crate::slack::{escape, messages};
use crate::time_util::rfc3339;
use sweep::Budget;

const ACTOR: &str = "reconciler";

/// What the reconciler did with one assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Left as it is: a live lease needs it, or it is standing access (warn mode).
    Kept,
    /// Ours, with no live lease: revoked.
    Revoked,
    /// Standing access the policy says must not exist: deleted.
    Removed,
    /// A lease left over with no assignment behind it: released.
    Cleared,
    /// Could not be checked or fixed; the next run tries again.
    Failed,
}

/// One assignment (or left-over lease) the reconciler looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub account_id: String,
    pub permission_set_arn: String,
    pub permission_set: Option<String>,
    pub principal_type: &'static str,
    pub principal_id: String,
    /// The Identity Center user name, when known.
    pub user: Option<String>,
    /// Granted by break glass (it has a lease), as opposed to standing access.
    pub break_glass: bool,
    pub action: Action,
    pub why: String,
    /// The break-glass requests behind it.
    pub requests: Vec<String>,
}

/// Whether a request's lease still counts, and why (not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Live(String),
    Over(String),
    /// Something is inconsistent: neither keep nor revoke, but raise it.
    Doubt(String),
}

/// Whether a request still counts as holding access.
pub fn active(status: Status) -> bool {
    status.is_active()
}

/// Judges one lease holder from its record and its execution (`None`: never started). A
/// running execution is trusted until `grace` past the lease's end; a stopped one that was
/// still granting, until `grace` after it stopped (its grant task may still be running: the
/// Lambda outlives the execution).
pub fn judge(
    rec: Option<&RequestRecord>,
    execution: Option<&Execution>,
    now: OffsetDateTime,
    grace: time::Duration,
) -> Verdict {
    let Some(rec) = rec else {
        return Verdict::Over("its request is not in the table".into());
    };
    if !active(rec.status) {
        return Verdict::Over(format!("its request is already {}", rec.status.as_str()));
    }
    let Some(execution) = execution else {
        return match rec.status {
            Status::Requested if now - rec.requested_at > grace => {
                Verdict::Over("its execution never started".into())
            }
            Status::Requested => Verdict::Live("its execution is starting".into()),
            // Only an execution grants: is STATE_MACHINE_ARN the state machine that did?
            _ => Verdict::Doubt(format!(
                "its request is {} but its execution does not exist (check STATE_MACHINE_ARN)",
                rec.status.as_str()
            )),
        };
    };
    if execution.status != "RUNNING"
        && matches!(rec.status, Status::Requested | Status::Granting)
        && execution.stopped_at.is_some_and(|at| now - at < grace)
    {
        return Verdict::Live(format!(
            "its execution stopped while granting; waiting until {} for a grant task still running",
            rfc3339(execution.stopped_at.unwrap_or(now) + grace)
        ));
    }
    match execution.status.as_str() {
        "RUNNING" => match (rec.status, rec.expires_at) {
            (Status::Granted, Some(end)) if now - end > grace => Verdict::Over(format!(
                "its lease ended at {} and its execution has not revoked it {} min later",
                rfc3339(end),
                (now - end).whole_minutes()
            )),
            (Status::Granted, Some(end)) => {
                Verdict::Live(format!("live lease until {}", rfc3339(end)))
            }
            _ => Verdict::Live("being granted".into()),
        },
        "ABORTED" => Verdict::Over("its execution was stopped".into()),
        "TIMED_OUT" => Verdict::Over("its execution timed out".into()),
        "FAILED" => Verdict::Over("its execution failed".into()),
        other => Verdict::Over(format!("its execution is {other}, not running")),
    }
}

type Pair = (AccountId, PermissionSetArn);

impl Worker {
    pub async fn reconcile(&self) -> Result<Value, Error> {
        let now = OffsetDateTime::now_utc();
        let budget = Budget {
            started: std::time::Instant::now(),
            limits: self.reconcile_limits,
        };
        let keys = self.store.keys().await?;
        let mut errors = Vec::new();
        let mut findings = Vec::new();

        // What break glass holds: every user with a lease or a creation intent, listed once
        // across the organization (not pair by pair).
        let mut held: BTreeMap<String, BTreeSet<Pair>> = BTreeMap::new();
        let parsed = keys
            .leases
            .iter()
            .filter_map(|k| Lease::parse_key(k))
            .chain(keys.intents.iter().filter_map(|k| Intent::parse_key(k)));
        for (principal, account, ps) in parsed {
            held.entry(principal).or_default().insert((account, ps));
        }
        for (principal, pairs) in &held {
            let assigned = match self.assigned_to(principal, pairs).await {
                Ok(a) => a,
                Err(e) => {
                    errors.push(format!("listing the assignments of user {principal}: {e}"));
                    continue;
                }
            };
            for pair in pairs {
                let assigned = assigned.contains(pair);
                let (account, ps) = pair;
                findings.extend(
                    self.look_at(account, ps, Principal::User, principal, assigned, now)
                        .await,
                );
            }
        }

        let sweep = self
            .sweep(&held, &budget, now, &mut findings, &mut errors)
            .await;

        let mut lifted = Vec::new();
        let with_denies: BTreeSet<PermissionSetArn> = keys
            .sessions
            .iter()
            .filter_map(|p| PermissionSetArn::parse(p).ok())
            .collect();
        for ps in with_denies {
            match self.lift_expired(&ps, now).await {
                Ok(l) => lifted.extend(l.into_iter().map(|d| {
                    json!({"permission_set_arn": ps.as_str(), "request_id": d.request_id,
                           "user_id": d.user_id, "account_id": d.account_id, "until": rfc3339(d.until)})
                })),
                Err(e) => errors.push(format!("lifting expired session denies on {ps}: {e}")),
            }
        }

        let reviews = self.remind_reviews(now, &mut errors).await;
        self.announce(&findings, &errors).await;
        let count = |a: Action| findings.iter().filter(|f| f.action == a).count();
        let summary = json!({
            "checked_at": rfc3339(now),
            "users": held.len(),
            "pairs": sweep.pairs.iter().map(|(a, p)| json!({"account_id": a.as_str(), "permission_set_arn": p.as_str()})).collect::<Vec<_>>(),
            "sweep": sweep.summary,
            "assignments": findings,
            "lifted_session_denies": lifted,
            "reviews": reviews,
            "errors": errors,
            "counts": {
                "kept": count(Action::Kept),
                "revoked": count(Action::Revoked),
                "removed": count(Action::Removed),
                "cleared": count(Action::Cleared),
                "failed": count(Action::Failed),
            },
            "seconds": budget.started.elapsed().as_secs_f64(),
        });
        tracing::info!(summary = %summary, "reconciled");
        Ok(summary)
    }

    /// Looks at one principal's assignment (or lease) of a pair and acts; the finding, unless
    /// there is nothing to say (a lease that went away while we looked).
    async fn look_at(
        &self,
        account: &AccountId,
        ps: &PermissionSetArn,
        kind: Principal,
        principal: &str,
        is_assigned: bool,
        now: OffsetDateTime,
    ) -> Option<Finding> {
        let mut f = Finding {
            account_id: account.to_string(),
            permission_set_arn: ps.to_string(),
            permission_set: self.names.name_of(ps).await.ok(),
            principal_type: kind.as_str(),
            principal_id: principal.to_owned(),
            user: None,
            break_glass: false,
            action: Action::Kept,
            why: String::new(),
            requests: Vec::new(),
        };
        if let Err(e) = self
            .reconcile_one(&mut f, account, ps, kind, is_assigned, now)
            .await
        {
            f.action = Action::Failed;
            f.why = format!("{}{e}", if f.why.is_empty() { "" } else { "; " });
        }
        if f.why.is_empty() {
            return None;
        }
        if f.user.is_none() && kind == Principal::User {
            f.user = self.sso.user_name(&self.instance, principal).await.ok();
        }
        Some(f)
    }

    /// Looks at one principal's assignment (or lease) and acts; fills in `f`.
    async fn reconcile_one(
        &self,
        f: &mut Finding,
        account: &AccountId,
        ps: &PermissionSetArn,
        kind: Principal,
        assigned: bool,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let grace = time::Duration::seconds(self.reconcile_grace.as_secs() as i64);
        let (lease, intent) = match kind {
            Principal::User => (
                self.store
                    .lease(&Lease::key(&f.principal_id, account, ps))
                    .await?,
                self.store
                    .intent(&Intent::key(&f.principal_id, account, ps))
                    .await?,
            ),
            Principal::Group => (None, None),
        };
        let Some(lease) = lease else {
            return match (assigned, intent) {
                (true, Some(intent)) => self.late_grant(f, account, ps, &intent).await,
                (true, None) => self.standing(f, account, ps, kind).await,
                (false, Some(intent)) => {
                    // No grant can still be in flight once the grace (at least a Lambda's
                    // lifetime) has passed since the intent: forget it.
                    if now - intent.at > grace {
                        self.store.delete_intent(&intent).await?;
                    }
                    Ok(())
                }
                (false, None) => Ok(()),
            };
        };
        f.break_glass = !lease.standing;
        f.requests = lease.holders.clone();
        let mut live = None;
        let mut over = Vec::new();
        for h in &lease.holders {
            let rec = match RequestId::parse(h) {
                Ok(id) => self.store.get(&id).await?,
                Err(_) => None,
            };
            let execution = match &rec {
                Some(r) if active(r.status) => self.executions.status(&r.id).await?,
                _ => None,
            };
            if let Some(r) = &rec {
                f.user = Some(r.sso_user_name.clone());
            }
            match judge(rec.as_ref(), execution.as_ref(), now, grace) {
                Verdict::Live(why) => {
                    live.get_or_insert(format!("{h}: {why}"));
                }
                Verdict::Doubt(why) => {
                    return Err(Error::StateConflict(format!("{h}: {why}")));
                }
                Verdict::Over(why) => over.push((h.clone(), rec, why)),
            }
        }
        // Every finished holder is retired, whether or not another one is live.
        let mut why = Vec::new();
        let mut deleted = false;
        for (h, rec, reason) in over {
            why.push(format!("{h}: {reason}"));
            f.why = why.join("; ");
            deleted |= match rec {
                Some(rec) => self.retire(rec, &f.principal_id, &reason).await?,
                None => {
                    self.leave(account, ps, &f.principal_id, Some((&h, false)), grace)
                        .await?
                        .deleted
                }
            };
        }
        if let Some(live) = live {
            why.push(live);
            f.why = why.join("; ");
            f.action = Action::Kept;
            return Ok(());
        }
        if lease.holders.is_empty() {
            let left = self
                .leave(account, ps, &f.principal_id, None, grace)
                .await?;
            why.push(format!("a release left half-way: {}", left.outcome));
            deleted |= left.deleted;
        }
        f.why = why.join("; ");
        if lease.standing && assigned {
            // The lease is gone; what remains is the standing access it recorded.
            let before = std::mem::take(&mut f.why);
            self.standing(f, account, ps, kind).await?;
            f.why = format!("{before}; {}", f.why);
        } else if deleted {
            f.action = Action::Revoked;
            tracing::warn!(account = %account, permission_set = %ps, principal = %f.principal_id, why = %f.why, "reconciler revoked");
        } else {
            f.action = Action::Cleared;
            f.why = format!("{}; no assignment was left to delete", f.why);
        }
        Ok(())
    }

    /// An assignment with no lease that break glass created (its intent is recorded): a
    /// grant that landed after its request had ended. Revoked, audited on that request, and
    /// announced; never kept as standing access.
    async fn late_grant(
        &self,
        f: &mut Finding,
        account: &AccountId,
        ps: &PermissionSetArn,
        intent: &Intent,
    ) -> Result<(), Error> {
        f.break_glass = true;
        f.requests = vec![intent.request_id.clone()];
        f.why = format!(
            "{}: break glass created this assignment after its request had ended (a late grant)",
            intent.request_id
        );
        self.delete_unleased(f, account, ps, Principal::User)
            .await?;
        f.action = Action::Revoked;
        tracing::warn!(account = %account, permission_set = %ps, principal = %f.principal_id, why = %f.why, "reconciler revoked");
        let rec = match RequestId::parse(&intent.request_id) {
            Ok(id) => self.store.get(&id).await?,
            Err(_) => None,
        };
        if let Some(rec) = rec {
            f.user = Some(rec.sso_user_name.clone());
            let rec = self
                .store
                .note(
                    &rec,
                    vec![Change::ReconciledAt(OffsetDateTime::now_utc())],
                    Audit {
                        event: "late_grant_revoked",
                        actor: ACTOR,
                        detail: format!(
                            "an assignment created after the request had ended (creation intent of {}) was deleted",
                            rfc3339(intent.at)
                        ),
                    },
                )
                .await?;
            self.tell(rec, |a| {
                messages::revoked(
                    a,
                    "a grant that landed after the access had ended was removed by the reconciler",
                )
            })
            .await;
        }
        Ok(())
    }

    /// Revokes one request whose lease is over: marks it revoked first (so that nothing of
    /// its execution can act on it again), then leaves its lease (the last one out deletes
    /// the assignment) and ends live sessions where its rule says so. Returns whether the
    /// assignment was deleted.
    async fn retire(&self, rec: RequestRecord, principal: &str, why: &str) -> Result<bool, Error> {
        let rec = if active(rec.status) {
            let rec = self
                .store
                .advance(
                    &rec,
                    Status::Revoked,
                    vec![
                        Change::RevokedAt(OffsetDateTime::now_utc()),
                        Change::ReconciledAt(OffsetDateTime::now_utc()),
                    ],
                    Audit {
                        event: "reconciled",
                        actor: ACTOR,
                        detail: format!("revoking: {why}"),
                    },
                )
                .await?;
            let message = format!("revoked by the reconciler: {why}");
            self.tell(rec, |a| messages::revoked(a, &message)).await
        } else {
            rec
        };
        let grace = time::Duration::seconds(self.reconcile_grace.as_secs() as i64);
        // Every account of the request: its lease on each is over alike, and one that fails
        // keeps none of the others (the next run tries it again).
        let mut left = Left::kept("");
        let mut outcomes = Vec::new();
        let mut failures = Vec::new();
        for account in rec.accounts() {
            let one = self
                .leave(
                    &account,
                    &rec.permission_set_arn,
                    principal,
                    Some((rec.id.as_str(), rec.end_sessions)),
                    grace,
                )
                .await;
            match one {
                Ok(one) => {
                    left.deleted |= one.deleted;
                    outcomes.push(if rec.more_accounts.is_empty() {
                        one.outcome
                    } else {
                        format!("account {account}: {}", one.outcome)
                    });
                }
                Err(e) => failures.push((format!("account {account}"), e)),
            }
        }
        if rec.more_accounts.is_empty()
            && let Some((_, e)) = failures.pop()
        {
            return Err(e);
        }
        if let Some(e) = Error::of_parts(failures) {
            if !outcomes.is_empty() {
                let audit = Audit {
                    event: "revoke_partial",
                    actor: ACTOR,
                    detail: format!("{}; still to revoke: {e}", outcomes.join("; ")),
                };
                if let Err(w) = self.store.note(&rec, Vec::new(), audit).await {
                    tracing::warn!(error = %w, "could not record the accounts revoked so far");
                }
            }
            return Err(e);
        }
        left.outcome = outcomes.join("; ");
        // Another reconcile retiring the same request at the same moment (two worker instances)
        // moves its version on: what we did is still recorded, on the request as it is now.
        let mut rec = rec;
        let mut attempts = 0;
        let rec = loop {
            let audit = Audit {
                event: "released",
                actor: ACTOR,
                detail: left.outcome.clone(),
            };
            match self.store.note(&rec, vec![], audit).await {
                Ok(r) => break r,
                Err(Error::StateConflict(_)) if attempts < 3 => {
                    attempts += 1;
                    rec = self.load(&rec.id).await?;
                }
                Err(e) => return Err(e),
            }
        };
        self.note_sessions_denied(rec).await?;
        Ok(left.deleted)
    }

    /// Standing access: kept and named, or deleted where the policy says so explicitly.
    async fn standing(
        &self,
        f: &mut Finding,
        account: &AccountId,
        ps: &PermissionSetArn,
        kind: Principal,
    ) -> Result<(), Error> {
        let (mode, rule) = self
            .policy
            .standing_access(account, ps, f.permission_set.as_deref());
        f.break_glass = false;
        f.why = "standing access: break glass never granted it".into();
        if mode == Standing::Warn {
            f.action = Action::Kept;
            f.why
                .push_str(" (kept: the policy does not say to remove it)");
            return Ok(());
        }
        let rule = rule.unwrap_or_default();
        f.why.push_str(&format!(
            "; rule {rule:?} says standing_access = \"remove\""
        ));
        self.delete_unleased(f, account, ps, kind).await?;
        f.action = Action::Removed;
        self.store
            .audit_standing(
                &format!("{}#{}#{account}#{ps}", kind.as_str(), f.principal_id),
                ACTOR,
                "standing_removed",
                f.why.clone(),
            )
            .await?;
        tracing::warn!(account = %account, permission_set = %ps, principal = %f.principal_id, rule, "standing access removed");
        Ok(())
    }

    /// Deletes an assignment no lease holds. A user's is deleted under a lease fence: a
    /// break-glass grant arriving meanwhile waits instead of taking this assignment for its
    /// own standing access; the fence goes when the assignment does (or the delete fails).
    async fn delete_unleased(
        &self,
        f: &Finding,
        account: &AccountId,
        ps: &PermissionSetArn,
        kind: Principal,
    ) -> Result<(), Error> {
        match kind {
            Principal::User => {
                let fence = Lease {
                    key: Lease::key(&f.principal_id, account, ps),
                    holders: Vec::new(),
                    standing: false,
                    releasing: true,
                    released_at: Some(OffsetDateTime::now_utc()),
                    end_sessions_for: None,
                    provisioned: true,
                    version: 1,
                };
                if !self.store.put_lease(&fence, None).await? {
                    return Err(Error::StateConflict(
                        "a break-glass lease appeared while we looked; left for the next run"
                            .into(),
                    ));
                }
                let removed = self
                    .leave(account, ps, &f.principal_id, None, time::Duration::ZERO)
                    .await;
                if let Err(e) = removed {
                    // Take the fence down again, or it would keep break glass out of this pair.
                    if let Err(e2) = self.store.delete_lease(&fence.key, fence.version).await {
                        tracing::warn!(error = %e2, "could not take down the fence of a failed removal");
                    }
                    return Err(e);
                }
            }
            Principal::Group => {
                if let Some(req) = self
                    .sso
                    .delete_assignment_of(&self.instance, account, ps, kind, &f.principal_id)
                    .await?
                {
                    self.sso.wait_deleted(&self.instance, &req).await?;
                }
            }
        }
        Ok(())
    }

    /// Logs what needs a human, and tells the reconcile channel.
    async fn announce(&self, findings: &[Finding], errors: &[String]) {
        let mut lines = Vec::new();
        for f in findings.iter().filter(|f| f.action != Action::Kept) {
            if f.action == Action::Failed {
                tracing::error!(account = %f.account_id, permission_set = %f.permission_set_arn, principal = %f.principal_id, why = %f.why, "reconcile failed");
            }
            lines.push(format!(
                "• *{:?}* {} {} on `{}` as *{}*: {}",
                f.action,
                f.principal_type.to_lowercase(),
                escape(f.user.as_deref().unwrap_or(&f.principal_id)),
                f.account_id,
                escape(f.permission_set.as_deref().unwrap_or(&f.permission_set_arn)),
                escape(&f.why)
            ));
        }
        for e in errors {
            tracing::error!(error = %e, "reconcile failed");
            lines.push(format!("• *Failed*: {}", escape(e)));
        }
        let Some(channel) = &self.policy.reconcile_channel else {
            return;
        };
        if lines.is_empty() {
            return;
        }
        if let Err(e) = self
            .slack
            .post_message(channel, &messages::reconciled(&lines), None)
            .await
        {
            tracing::warn!(error = %e, "could not post the reconcile summary");
        }
    }
}

mod sweep;

#[cfg(test)]
mod tests;
