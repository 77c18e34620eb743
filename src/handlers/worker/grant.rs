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
//! The intent outlives the lease: an assignment created after its request was revoked (a
//! slow `CreateAccountAssignment`) is still known as ours, so the next grant on that key takes
//! it over and the reconciler revokes it; it is never taken for standing access.

use time::OffsetDateTime;

use super::hold::LeaseState;
use super::{ACTOR, Worker};
use crate::domain::RequestId;
use crate::domain::lease::{Held, Intent, JoinStep, Lease, first_lease, join_step};
use crate::domain::request::{Audit, Change, RequestRecord, Status};
use crate::error::Error;
use crate::slack::messages;
use crate::time_util::rfc3339;

/// Attempts at a versioned read-modify-write of a lease before handing back to the state
/// machine's retry.
const ATTEMPTS: usize = 5;

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
            let key = Lease::key(&principal, &rec.account_id, &rec.permission_set_arn);
            let (joined, lease) = self.join_lease(rec, &key, &principal).await?;
            rec = joined;
            if !lease.provisioned {
                if rec.shared {
                    // Another request is creating the assignment: wait for it (the state
                    // machine retries), never grant before it exists.
                    return Err(Error::Transient(format!(
                        "the assignment request {id} shares is still being created by {}",
                        lease
                            .holders
                            .first()
                            .map_or("another request", String::as_str)
                    )));
                }
                rec = self.create(rec, &principal).await?;
                self.mark_provisioned(&key).await?;
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
                            rec.account_id,
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

    /// Joins the lease set (or finds the request joined already). Returns the request as it
    /// is now (`preexisting` and `shared` say how it holds the lease) and the lease.
    async fn join_lease(
        &self,
        mut rec: RequestRecord,
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
                        .has_assignment(
                            &self.instance,
                            &rec.account_id,
                            &rec.permission_set_arn,
                            principal,
                        )
                        .await?;
                    let intent = self
                        .store
                        .intent(&Intent::key(
                            principal,
                            &rec.account_id,
                            &rec.permission_set_arn,
                        ))
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
            };
            let changes = vec![
                Change::Preexisting(held.preexisting()),
                Change::Shared(held.shared()),
            ];
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
        principal: &str,
    ) -> Result<RequestRecord, Error> {
        let creation = match rec.creation_request_id.clone() {
            Some(c) => c,
            None => {
                let intent = Intent {
                    key: Intent::key(principal, &rec.account_id, &rec.permission_set_arn),
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
                                "CreateAccountAssignment for principal {principal} (creation intent recorded)"
                            ),
                        },
                    )
                    .await?;
                let c = self
                    .sso
                    .create_assignment(
                        &self.instance,
                        &rec.account_id,
                        &rec.permission_set_arn,
                        principal,
                    )
                    .await?;
                rec = self
                    .store
                    .note(
                        &rec,
                        vec![Change::CreationRequestId(c.clone())],
                        Audit {
                            event: "assignment_requested",
                            actor: ACTOR,
                            detail: format!("CreateAccountAssignment request {c}"),
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
