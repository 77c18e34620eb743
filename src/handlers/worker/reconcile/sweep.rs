//! The reconciler's listings: each held user across the organization (or, where that is
//! refused, their pairs one by one), and the sweep of the policy's explicit pairs, a budget a
//! run from where the last one stopped; every Identity Center listing at the pace.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Finding, Pair};
use crate::aws::sso::Principal;
use crate::domain::PermissionSetArn;
use crate::error::Error;
use crate::handlers::worker::Worker;

/// The sweep's position of a pair: pairs are swept in this order.
fn pair_key((account, ps): &Pair) -> String {
    format!("{account}#{ps}")
}

/// What one reconcile run may still do, and when it started.
pub(super) struct Budget {
    pub(super) started: std::time::Instant,
    pub(super) limits: crate::config::ReconcileLimits,
}

impl Budget {
    pub(super) fn spent(&self, pairs_done: usize) -> bool {
        pairs_done >= self.limits.pairs_per_run || self.started.elapsed() >= self.limits.budget
    }
}

/// The sweep of one run: the pairs it listed, and where it stands.
pub(super) struct Swept {
    pub(super) pairs: Vec<Pair>,
    pub(super) summary: Value,
}

impl Worker {
    /// The pairs the policy names explicitly, for standing access: listed pair by pair in
    /// key order from where the last run stopped, until the run's budget is spent; the next
    /// run continues from there. Users that break glass holds something for were looked at
    /// already and are skipped.
    pub(super) async fn sweep(
        &self,
        held: &BTreeMap<String, BTreeSet<Pair>>,
        budget: &Budget,
        now: OffsetDateTime,
        findings: &mut Vec<Finding>,
        errors: &mut Vec<String>,
    ) -> Swept {
        let mut pairs: BTreeSet<Pair> = BTreeSet::new();
        for (account, ps) in self.policy.break_glass_pairs() {
            let arn = match PermissionSetArn::parse(&ps) {
                Ok(arn) => Ok(arn),
                Err(_) => self.names.arn_of(&ps).await,
            };
            match arn {
                Ok(arn) => {
                    pairs.insert((account, arn));
                }
                Err(e) => errors.push(format!("permission set {ps:?} of the policy: {e}")),
            }
        }
        let seen = match self.store.sweep().await {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("reading where the last sweep stopped: {e}"));
                Default::default()
            }
        };
        let after = seen.after.clone();
        let todo = pairs
            .iter()
            .filter(|p| after.as_ref().is_none_or(|a| pair_key(p) > *a));
        let mut done: Vec<Pair> = Vec::new();
        let mut complete = true;
        for pair in todo {
            // At least one pair a run, so that a sweep always moves on, however long the held
            // users took.
            if !done.is_empty() && budget.spent(done.len()) {
                complete = false;
                break;
            }
            let (account, ps) = pair;
            match self
                .paced(|| self.sso.assignments(&self.instance, account, ps))
                .await
            {
                Ok(assigned) => {
                    for a in assigned {
                        let ours = a.kind == Principal::User
                            && held.get(&a.principal_id).is_some_and(|p| p.contains(pair));
                        if !ours {
                            findings.extend(
                                self.look_at(account, ps, a.kind, &a.principal_id, true, now)
                                    .await,
                            );
                        }
                    }
                }
                Err(e) => errors.push(format!("listing the assignments of {ps} on {account}: {e}")),
            }
            done.push(pair.clone());
        }
        let next = if complete {
            None
        } else {
            done.last().map(pair_key).or(after.clone())
        };
        match self.store.put_sweep(&seen, next.as_deref()).await {
            Ok(true) => {}
            Ok(false) => {
                errors.push("another reconcile moved the sweep on at the same time".into())
            }
            Err(e) => errors.push(format!("recording where the sweep stopped: {e}")),
        }
        Swept {
            summary: json!({
                "pairs_total": pairs.len(),
                "pairs_checked": done.len(),
                "after": after,
                "next": next,
                "complete": complete,
            }),
            pairs: done,
        }
    }

    /// Which of `pairs` the user is assigned: one listing of the user across the
    /// organization. Where Identity Center refuses that (it answers it in the organization's
    /// management account; a delegated administrator may be refused), the held pairs are
    /// listed one by one instead: the safety net never depends on it.
    pub(super) async fn assigned_to(
        &self,
        principal: &str,
        pairs: &BTreeSet<Pair>,
    ) -> Result<BTreeSet<Pair>, Error> {
        match self
            .paced(|| self.sso.assignments_of_user(&self.instance, principal))
            .await
        {
            Ok(all) => return Ok(all.into_iter().filter(|p| pairs.contains(p)).collect()),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, principal, "listing a user's assignments was refused: listing their pairs one by one");
            }
        }
        let mut out = BTreeSet::new();
        for pair in pairs {
            let (account, ps) = pair;
            let assigned = self
                .paced(|| self.sso.assignments(&self.instance, account, ps))
                .await?;
            if assigned
                .iter()
                .any(|a| a.kind == Principal::User && a.principal_id == principal)
            {
                out.insert(pair.clone());
            }
        }
        Ok(out)
    }

    /// One Identity Center call at the reconciler's pace; a throttle slows the pace and the
    /// call is tried again (five attempts in all).
    async fn paced<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut attempt = 1;
        loop {
            self.pace.wait().await;
            match call().await {
                Ok(v) => {
                    self.pace.succeeded();
                    return Ok(v);
                }
                Err(Error::Throttled(why)) if attempt < 5 => {
                    tracing::warn!(why, attempt, "Identity Center throttled the reconciler");
                    self.pace.throttled();
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
