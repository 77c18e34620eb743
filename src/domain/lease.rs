//! Leases: the live requests sharing one Identity Center assignment, and the pure decisions
//! of joining and leaving them. The worker does the I/O the decisions ask for; the decisions
//! are unit-tested here, like the reconciler's verdicts.

use time::OffsetDateTime;

use super::{AccountId, PermissionSetArn};

/// A lease set: the live requests sharing one Identity Center assignment, keyed by
/// (principal, account, permission set). The assignment is created when the first lease
/// joins and deleted when the last one leaves, unless it was standing access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub holders: Vec<String>,
    /// The assignment existed before break glass: never delete it.
    pub standing: bool,
    /// The last holder left and the assignment is being deleted; joiners must wait.
    pub releasing: bool,
    /// When the last holder left: the moment access ended.
    pub released_at: Option<OffsetDateTime>,
    /// The last holder's rule ends live sessions: whoever finishes the release denies them
    /// (the request id names the deny).
    pub end_sessions_for: Option<String>,
    /// The assignment is in place (created and provisioned, or standing): a request that
    /// joins the lease is granted only once this is true.
    pub provisioned: bool,
    pub version: u64,
}

impl Lease {
    pub fn key(principal: &str, account: &AccountId, ps: &PermissionSetArn) -> String {
        format!("lease#{principal}#{account}#{ps}")
    }

    /// (principal, account, permission set) of a lease key; `None` if it is not one.
    pub fn parse_key(key: &str) -> Option<(String, AccountId, PermissionSetArn)> {
        let mut parts = key.strip_prefix("lease#")?.splitn(3, '#');
        let principal = parts.next().filter(|p| !p.is_empty())?;
        let account = AccountId::parse(parts.next()?).ok()?;
        let ps = PermissionSetArn::parse(parts.next()?).ok()?;
        Some((principal.to_owned(), account, ps))
    }
}

/// Break glass is about to create (or may have created) the assignment of `key`
/// (`<principal>#<account>#<permission set>`): recorded before `CreateAccountAssignment` is
/// called and kept after the lease ends, so that an assignment a late grant creates is
/// never taken for standing access. The reconciler deletes it once no grant can be in
/// flight any more and no assignment is left (`pk = created#<key>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub key: String,
    pub request_id: String,
    pub at: OffsetDateTime,
}

impl Intent {
    pub fn key(principal: &str, account: &AccountId, ps: &PermissionSetArn) -> String {
        format!("{principal}#{account}#{ps}")
    }

    /// (principal, account, permission set) of an intent key; `None` if it is not one.
    pub fn parse_key(key: &str) -> Option<(String, AccountId, PermissionSetArn)> {
        Lease::parse_key(&format!("lease#{key}"))
    }
}

/// The next step of joining a lease, given what the table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinStep {
    /// The request holds the lease already (a repeated grant): nothing to write.
    Joined(Lease),
    /// The assignment is being released by an earlier lease: wait, then try again.
    Wait,
    /// No lease yet: find out whether the assignment exists and whether break glass made it
    /// (its creation intent), then write [`first_lease`].
    Look,
    /// Add the request to the live lease: write `next` if the lease is still at `expected`.
    Add {
        next: Lease,
        expected: u64,
        held: Held,
    },
}

/// How a request holds its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The first holder: it creates the assignment (unless it exists already).
    First,
    /// Another live lease of the same person created it: shared.
    Shared,
    /// The assignment existed before break glass: it is never deleted.
    Standing,
    /// The assignment exists because a grant landed after its request ended (its creation
    /// intent names that request): this lease takes it over and deletes it when it ends.
    TakenOver(String),
}

impl Held {
    pub fn preexisting(&self) -> bool {
        matches!(self, Held::Standing)
    }
    pub fn shared(&self) -> bool {
        matches!(self, Held::Shared)
    }
}

pub fn join_step(current: Option<&Lease>, id: &str) -> JoinStep {
    match current {
        None => JoinStep::Look,
        Some(l) if l.holders.iter().any(|h| h == id) => JoinStep::Joined(l.clone()),
        Some(l) if l.releasing => JoinStep::Wait,
        Some(l) => {
            let mut next = l.clone();
            next.holders.push(id.to_owned());
            next.version += 1;
            let held = if l.standing {
                Held::Standing
            } else if l.holders.is_empty() {
                Held::First
            } else {
                Held::Shared
            };
            JoinStep::Add {
                next,
                expected: l.version,
                held,
            }
        }
    }
}

/// The first lease of `key`: standing access when the assignment exists and break glass has
/// no creation intent for it, a late grant of ours to take over when it has one. A lease on an
/// assignment that exists is provisioned from the start.
pub fn first_lease(key: &str, id: &str, assigned: bool, intent: Option<&Intent>) -> (Lease, Held) {
    let held = match (assigned, intent) {
        (true, None) => Held::Standing,
        (true, Some(i)) => Held::TakenOver(i.request_id.clone()),
        (false, _) => Held::First,
    };
    let lease = Lease {
        key: key.to_owned(),
        holders: vec![id.to_owned()],
        standing: held == Held::Standing,
        releasing: false,
        released_at: None,
        end_sessions_for: None,
        provisioned: assigned,
        version: 1,
    };
    (lease, held)
}

/// The next step of leaving a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveStep {
    /// Nothing to do; the reason, for the audit trail.
    Nothing(String),
    /// Write `next` if the lease is still at `expected`. If `next` has no holders left, its
    /// release is to be finished next ([`release`]).
    Write { next: Lease, expected: u64 },
    /// Finish a release an earlier attempt left half-way.
    Finish(Lease),
}

/// Leaving `current`: `holder` is the leaving request and whether its rule ends sessions;
/// `None` only finishes a release left half-way, and only one started at least `settle`
/// before `now` (a Revoke may be finishing it right now).
pub fn leave_step(
    current: Option<&Lease>,
    holder: Option<(&str, bool)>,
    now: OffsetDateTime,
    settle: time::Duration,
) -> LeaveStep {
    let Some(l) = current else {
        return LeaveStep::Nothing("nothing to delete: the lease was already released".into());
    };
    let mine = holder.filter(|(h, _)| l.holders.iter().any(|x| x == h));
    if let Some((h, end_sessions)) = mine {
        let mut next = l.clone();
        next.holders.retain(|x| x != h);
        next.releasing = next.holders.is_empty();
        if next.releasing {
            // The moment access ends, recorded before anything is deleted: whoever finishes
            // the release ends the sessions issued before it.
            next.released_at = Some(now);
            next.end_sessions_for = end_sessions.then(|| h.to_owned());
        }
        next.version += 1;
        return LeaveStep::Write {
            next,
            expected: l.version,
        };
    }
    if l.releasing && l.holders.is_empty() {
        if holder.is_none() && l.released_at.is_some_and(|at| now - at < settle) {
            return LeaveStep::Nothing("a release in progress: left to it".into());
        }
        return LeaveStep::Finish(l.clone());
    }
    LeaveStep::Nothing(format!(
        "already left the lease; {} other lease(s) hold it",
        l.holders.len()
    ))
}

/// What finishing the release of a lease with no holders does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Delete the assignment (never standing access).
    pub delete_assignment: bool,
    /// End the user's live sessions, in the name of this request.
    pub end_sessions_for: Option<String>,
}

pub fn release(lease: &Lease) -> Release {
    Release {
        delete_assignment: !lease.standing,
        end_sessions_for: if lease.standing {
            None
        } else {
            lease.end_sessions_for.clone()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_util::from_rfc3339;

    fn lease(holders: &[&str]) -> Lease {
        Lease {
            key: "lease#u#123456789012#ps".into(),
            holders: holders.iter().map(|h| h.to_string()).collect(),
            standing: false,
            releasing: false,
            released_at: None,
            end_sessions_for: None,
            provisioned: true,
            version: 3,
        }
    }

    #[test]
    fn joining() {
        assert_eq!(join_step(None, "a"), JoinStep::Look);
        let live = lease(&["a"]);
        assert_eq!(join_step(Some(&live), "a"), JoinStep::Joined(live.clone()));
        let JoinStep::Add {
            next,
            expected,
            held,
        } = join_step(Some(&live), "b")
        else {
            panic!()
        };
        assert_eq!(
            (next.holders, next.version, expected, held),
            (vec!["a".to_owned(), "b".to_owned()], 4, 3, Held::Shared)
        );
        let mut standing = live.clone();
        standing.standing = true;
        assert!(matches!(
            join_step(Some(&standing), "b"),
            JoinStep::Add {
                held: Held::Standing,
                ..
            }
        ));
        let mut releasing = lease(&[]);
        releasing.releasing = true;
        assert_eq!(join_step(Some(&releasing), "b"), JoinStep::Wait);
    }

    #[test]
    fn the_first_lease_tells_standing_access_from_a_late_grant() {
        let (l, held) = first_lease("k", "a", false, None);
        assert_eq!(
            (held, l.standing, l.provisioned),
            (Held::First, false, false)
        );
        let (l, held) = first_lease("k", "a", true, None);
        assert_eq!(
            (held, l.standing, l.provisioned),
            (Held::Standing, true, true)
        );
        let intent = Intent {
            key: "k".into(),
            request_id: "bg-late".into(),
            at: OffsetDateTime::UNIX_EPOCH,
        };
        let (l, held) = first_lease("k", "a", true, Some(&intent));
        assert_eq!(
            (held, l.standing, l.provisioned),
            (Held::TakenOver("bg-late".into()), false, true),
            "an assignment break glass made is never standing access"
        );
        assert!(!Held::TakenOver(String::new()).preexisting());
    }

    #[test]
    fn leaving() {
        let now = from_rfc3339("2026-11-24T09:00:00Z").unwrap();
        let settle = time::Duration::minutes(15);
        assert!(matches!(
            leave_step(None, Some(("a", false)), now, settle),
            LeaveStep::Nothing(_)
        ));
        let shared = lease(&["a", "b"]);
        let LeaveStep::Write { next, expected } =
            leave_step(Some(&shared), Some(("a", true)), now, settle)
        else {
            panic!()
        };
        assert_eq!(
            (
                next.holders.clone(),
                next.releasing,
                next.released_at,
                expected
            ),
            (vec!["b".to_owned()], false, None, 3),
            "the other holder keeps it"
        );
        let LeaveStep::Write { next, .. } = leave_step(Some(&next), Some(("b", true)), now, settle)
        else {
            panic!()
        };
        assert!(next.releasing && next.holders.is_empty());
        assert_eq!(next.released_at, Some(now));
        assert_eq!(
            release(&next),
            Release {
                delete_assignment: true,
                end_sessions_for: Some("b".into())
            }
        );
        // A release left half-way is finished, but not one a Revoke may be doing right now.
        assert_eq!(
            leave_step(Some(&next), None, now + settle, settle),
            LeaveStep::Finish(next.clone())
        );
        assert!(matches!(
            leave_step(Some(&next), None, now + time::Duration::minutes(1), settle),
            LeaveStep::Nothing(_)
        ));
        assert!(matches!(
            leave_step(Some(&shared), Some(("z", false)), now, settle),
            LeaveStep::Nothing(_)
        ));
        let mut standing = lease(&[]);
        standing.standing = true;
        standing.end_sessions_for = Some("x".into());
        assert_eq!(
            release(&standing),
            Release {
                delete_assignment: false,
                end_sessions_for: None
            },
            "standing access is never deleted"
        );
    }
}
