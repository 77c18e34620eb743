//! Grant: join the lease of (user, account, permission set) and make sure the assignment is
//! in place before the request counts as granted.
//!
//! Every step is fenced by the request's status and version, so a grant attempt that
//! outlives its Step Functions timeout cannot act on a request that has moved on:
//!
//! 1. `requested → granting`, with the Identity Center user resolved;
//! 2. the lease is joined **in the same transaction** as a change of the request, so a
//!    request revoked meanwhile never holds a lease. The first holder finds out whether the
//!    assignment is standing access: it exists and break glass has no creation intent for it;
//! 3. the first holder records its creation intent in the same transaction as one more fence
//!    right before `CreateAccountAssignment`, creates, waits for provisioning and marks the
//!    lease provisioned. A joiner waits for that mark (the state machine retries), so it is
//!    never granted before the assignment exists;
//! 4. `granting → granted`, with `expires_at`.
//!
//! A request for several accounts does steps 2 and 3 for each account in turn, on that
//! account's own lease and intent, and goes on past one that fails; step 4 waits for all of
//! them, and the task's error names the accounts that failed.
//!
//! The intent outlives the lease: an assignment created after its request was revoked (a
//! slow `CreateAccountAssignment`) is still known as ours, so the next grant on that key takes
//! it over and the reconciler revokes it; it is never taken for standing access.

use time::OffsetDateTime;

use super::hold::LeaseState;
use super::{ACTOR, Worker};
use crate::domain::lease::{Held, Intent, JoinStep, Lease, first_lease, join_step};
use crate::domain::request::{Audit, Change, Part, RequestRecord, Status};
use crate::domain::{AccountId, RequestId};
use crate::error::Error;
use crate::slack::messages;
use crate::time_util::rfc3339;

/// Attempts at a versioned read-modify-write of a lease before handing back to the state
/// machine's retry.
const ATTEMPTS: usize = 5;

/// How long one Grant attempt starts new accounts of a request for several: well inside the
/// state machine's 300 s task timeout, less one account's provisioning wait.
const GRANT_BUDGET: std::time::Duration = std::time::Duration::from_secs(150);

impl Worker {
    /// Grants the request (idempotent: a repeated or retried task resumes where the last one
    /// stopped) and returns the lease's state for the Hold state.
    pub async fn grant(&self, id: &RequestId, cap: u64) -> Result<LeaseState, Error> {
        let mut rec = self.load(id).await?;
        if !rec.approval.clears_grant() {
            // Only an approval (or no need for one) grants: never on a pending, denied or
            // expired one, whatever invoked this task.
            return Err(Error::InvalidInput(format!(
                "request {id} is not approved (approval {})",
                rec.approval.state.map_or("?", |s| s.as_str())
            )));
        }
        if rec.status == Status::Requested {
            let principal = match &rec.principal_id {
                Some(p) => p.clone(),
                None => self.sso.user_id(&self.instance, &rec.sso_user_name).await?,
            };
            let ps_name = match &rec.permission_set_name {
                Some(n) => n.clone(),
                None => self.names.name_of(&rec.permission_set_arn).await?,
            };
            rec = self
                .store
                .advance(
                    &rec,
                    Status::Granting,
                    vec![
                        Change::PrincipalId(principal.clone()),
                        Change::PermissionSetName(ps_name.clone()),
                    ],
                    Audit {
                        event: "granting",
                        actor: ACTOR,
                        detail: format!("assigning to principal {principal}"),
                    },
                )
                .await?;
        }
        if rec.status == Status::Granting {
            let principal = rec.principal_id.clone().ok_or_else(|| {
                Error::InvalidInput(format!("request {id} is granting without a principal"))
            })?;
            if rec.more_accounts.is_empty() {
                let account = rec.account_id.clone();
                rec = self.grant_account(rec, &account, &principal).await?;
            } else {
                rec = self.grant_accounts(rec, &principal).await?;
            }
            let now = OffsetDateTime::now_utc();
            let expires = now + time::Duration::seconds(rec.duration.as_secs() as i64);
            rec = self
                .store
                .advance(
                    &rec,
                    Status::Granted,
                    vec![Change::GrantedAt(now), Change::ExpiresAt(expires)],
                    Audit {
                        event: "granted",
                        actor: ACTOR,
                        detail: format!(
                            "{} on {} until {}",
                            rec.permission_set_arn,
                            rec.accounts_text(),
                            rfc3339(expires)
                        ),
                    },
                )
                .await?;
            tracing::info!(expires = %rfc3339(expires), "granted");
            rec = self.tell(rec, |a| messages::granted(a, expires)).await;
            self.refresh_home(&rec).await;
        }
        if rec.granted_at.is_none() {
            return Err(Error::StateConflict(format!(
                "request {id} is {} and was never granted",
                rec.status.as_str()
            )));
        }
        Ok(LeaseState::of(&rec, OffsetDateTime::now_utc(), cap))
    }

    /// Grants every account of a request for several, one after the other, each on its own:
    /// one that fails for the moment keeps none of the others from their grant, and the
    /// state machine's retry finds each where it was left. No account of a request that is
    /// no longer granting is granted (a Revoke moved it on: [`Worker::grant_account`]). It
    /// stops once an account failed in a way retrying cannot help (the request ends, so no
    /// access is made for it), and once [`GRANT_BUDGET`] has passed (the retry goes on), so
    /// that no grant outlives its task.
    async fn grant_accounts(
        &self,
        mut rec: RequestRecord,
        principal: &str,
    ) -> Result<RequestRecord, Error> {
        let id = rec.id.clone();
        let started = std::time::Instant::now();
        let mut failures = Vec::new();
        for account in rec.accounts() {
            if failures
                .iter()
                .any(|(_, e): &(String, Error)| !e.is_retryable())
            {
                break;
            }
            if started.elapsed() > GRANT_BUDGET {
                failures.push((
                    format!("account {account}"),
                    Error::Transient("not tried yet: this attempt ran out of time".into()),
                ));
                continue;
            }
            match self.grant_account(rec.clone(), &account, principal).await {
                Ok(granted) => rec = granted,
                Err(e) => {
                    tracing::warn!(account = %account, error = %e, "grant of one account failed");
                    failures.push((format!("account {account}"), e));
                    rec = self.load(&id).await?;
                }
            }
        }
        let Some(e) = Error::of_parts(failures) else {
            return Ok(rec);
        };
        // Which accounts failed, for the trail: the state machine retries them
        // (`grant_retrying`) or revokes every account (`grant_failed`).
        let audit = Audit {
            event: if e.is_retryable() {
                "grant_retrying"
            } else {
                "grant_failed"
            },
            actor: ACTOR,
            detail: e.to_string(),
        };
        if let Err(w) = self.store.note(&rec, Vec::new(), audit).await {
            tracing::warn!(error = %w, "could not record the failed grant");
        }
        Err(e)
    }

    /// Grants one account of the request: joins its lease and, as its first holder, creates
    /// the assignment, so the request's access to this account is in place.
    async fn grant_account(
        &self,
        rec: RequestRecord,
        account: &AccountId,
        principal: &str,
    ) -> Result<RequestRecord, Error> {
        let id = rec.id.clone();
        // Every write below is fenced on the version of this record: it must be granting.
        if rec.status != Status::Granting {
            return Err(Error::StateConflict(format!(
                "request {id} is {}: no account of it is granted any more",
                rec.status.as_str()
            )));
        }
        let key = Lease::key(principal, account, &rec.permission_set_arn);
        let (rec, lease) = self.join_lease(rec, account, &key, principal).await?;
        if lease.provisioned {
            return Ok(rec);
        }
        if part_of(&rec, account)?.shared {
            // Another request is creating the assignment: wait for it (the state machine
            // retries), never grant before it exists.
            return Err(Error::Transient(format!(
                "the assignment request {id} shares{} is still being created by {}",
                in_account(&rec, account),
                lease
                    .holders
                    .first()
                    .map_or("another request", String::as_str)
            )));
        }
        let rec = self.create(rec, account, principal).await?;
        self.mark_provisioned(&key).await?;
        Ok(rec)
    }

    /// Joins the lease set (or finds the request joined already). Returns the request as it
    /// is now (its part of `account` says how it holds the lease) and the lease.
    async fn join_lease(
        &self,
        mut rec: RequestRecord,
        account: &AccountId,
        key: &str,
        principal: &str,
    ) -> Result<(RequestRecord, Lease), Error> {
        let id = rec.id.to_string();
        for _ in 0..ATTEMPTS {
            let current = self.store.lease(key).await?;
            let (next, expected, held) = match join_step(current.as_ref(), &id) {
                JoinStep::Joined(lease) => return Ok((rec, lease)),
                JoinStep::Wait => {
                    return Err(Error::Transient(
                        "the assignment is being released by an earlier lease; retrying".into(),
                    ));
                }
                JoinStep::Add {
                    next,
                    expected,
                    held,
                } => (next, Some(expected), held),
                JoinStep::Look => {
                    let assigned = self
                        .sso
                        .has_assignment(&self.instance, account, &rec.permission_set_arn, principal)
                        .await?;
                    let intent = self
                        .store
                        .intent(&Intent::key(principal, account, &rec.permission_set_arn))
                        .await?;
                    let (lease, held) = first_lease(key, &id, assigned, intent.as_ref());
                    (lease, None, held)
                }
            };
            let detail = match &held {
                Held::Standing => format!(
                    "principal {principal} already holds this assignment (standing access): it will be kept"
                ),
                Held::TakenOver(late) => format!(
                    "principal {principal} holds an assignment break glass created for {late} after it ended (a late grant): this lease takes it over and deletes it when it ends"
                ),
                Held::Shared => format!(
                    "joined the live lease of principal {principal} ({}): the assignment is shared",
                    current.map(|l| l.holders.join(", ")).unwrap_or_default()
                ),
                Held::First => format!("first lease of principal {principal}"),
            } + &in_account(&rec, account);
            let changes = rec.part_changes(Part {
                preexisting: held.preexisting(),
                shared: held.shared(),
                ..part_of(&rec, account)?
            });
            let audit = Audit {
                event: "lease_joined",
                actor: ACTOR,
                detail,
            };
            if let Some(joined) = self
                .store
                .join_lease(&rec, &next, expected, changes, audit)
                .await?
            {
                rec = joined;
                return Ok((rec, next));
            }
        }
        Err(Error::Transient(format!(
            "lease {key} kept changing under us"
        )))
    }

    /// Creates the assignment (the first holder), fenced and with its intent recorded first,
    /// and waits until it is provisioned. A retried task polls the request it started.
    async fn create(
        &self,
        mut rec: RequestRecord,
        account: &AccountId,
        principal: &str,
    ) -> Result<RequestRecord, Error> {
        let creation = match part_of(&rec, account)?.creation_request_id {
            Some(c) => c,
            None => {
                let intent = Intent {
                    key: Intent::key(principal, account, &rec.permission_set_arn),
                    request_id: rec.id.to_string(),
                    at: OffsetDateTime::now_utc(),
                };
                rec = self
                    .store
                    .intend_creation(
                        &rec,
                        &intent,
                        Audit {
                            event: "creating",
                            actor: ACTOR,
                            detail: format!(
                                "CreateAccountAssignment for principal {principal}{} (creation intent recorded)",
                                in_account(&rec, account)
                            ),
                        },
                    )
                    .await?;
                let c = self
                    .sso
                    .create_assignment(&self.instance, account, &rec.permission_set_arn, principal)
                    .await?;
                rec = self
                    .store
                    .note(
                        &rec,
                        rec.part_changes(Part {
                            creation_request_id: Some(c.clone()),
                            ..part_of(&rec, account)?
                        }),
                        Audit {
                            event: "assignment_requested",
                            actor: ACTOR,
                            detail: format!(
                                "CreateAccountAssignment request {c}{}",
                                in_account(&rec, account)
                            ),
                        },
                    )
                    .await?;
                c
            }
        };
        self.sso.wait_created(&self.instance, &creation).await?;
        Ok(rec)
    }

    /// Records on the lease that its assignment exists, for the requests that joined it.
    async fn mark_provisioned(&self, key: &str) -> Result<(), Error> {
        for _ in 0..ATTEMPTS {
            match self.store.lease(key).await? {
                Some(l) if l.provisioned => return Ok(()),
                Some(l) if !l.releasing => {
                    let mut next = l.clone();
                    next.provisioned = true;
                    next.version += 1;
                    if self.store.put_lease(&next, Some(l.version)).await? {
                        return Ok(());
                    }
                }
                _ => {
                    return Err(Error::StateConflict(format!(
                        "lease {key} was released while its assignment was being created"
                    )));
                }
            }
        }
        Err(Error::Transient(format!(
            "lease {key} kept changing under us"
        )))
    }
}

/// The request's part of `account`.
fn part_of(rec: &RequestRecord, account: &AccountId) -> Result<Part, Error> {
    rec.part(account)
        .ok_or_else(|| Error::InvalidInput(format!("request {} has no account {account}", rec.id)))
}

/// ` in account …` for the audit trail of a request with several accounts (nothing for one).
pub(super) fn in_account(rec: &RequestRecord, account: &AccountId) -> String {
    if rec.more_accounts.is_empty() {
        String::new()
    } else {
        format!(" in account {account}")
    }
}
