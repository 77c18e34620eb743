//! `break-glass leases check --policy FILE`: before a new policy is deployed, the live leases
//! it would no longer allow. Their revoke keeps working (removing access is never scoped to
//! the policy), but an operator should know that access granted under the old policy is
//! still live, and that a rule which ended sessions may no longer have the rights to.
//!
//! `break-glass leases index [--days 30]`: once, after upgrading from a version without the
//! table's `live` index, puts what the last days' requests hold (their leases, creation
//! intents and session denies) into it, so that the reconciler sees them. It reads the
//! requests by day (a Query a day), never the whole table.

use std::collections::BTreeSet;
use std::path::Path;

use crate::aws::sso::{Instance, Sso};
use crate::aws::store::{Live, Store};
use crate::domain::RequestId;
use crate::domain::lease::{Intent, Lease};
use crate::policy::{Decision, Policy, Subject, Target};

pub fn check(policy_file: &Path, table: &str) -> Result<(), String> {
    let policy =
        Policy::load(policy_file).map_err(|e| format!("{}: {e}", policy_file.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (live, outside) = rt.block_on(live_outside(&policy, table))?;
    if outside.is_empty() {
        println!(
            "{}: every one of the {live} live lease(s) is allowed by this policy",
            policy_file.display()
        );
    } else {
        println!(
            "{}: {} of the {live} live lease(s) would not be allowed by this policy (their revoke keeps working; new grants like them will be refused):",
            policy_file.display(),
            outside.len()
        );
        for line in &outside {
            println!("  {line}");
        }
    }
    Ok(())
}

/// How many requests hold a live lease, and a line for each one `policy` would not allow.
async fn live_outside(policy: &Policy, table: &str) -> Result<(usize, Vec<String>), String> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let sso = Sso::new(
        aws_sdk_ssoadmin::Client::new(&sdk),
        aws_sdk_identitystore::Client::new(&sdk),
    );
    let wanted = policy.groups();
    let mut instance: Option<Instance> = None;
    let keys = store.keys().await.map_err(|e| e.to_string())?;
    let (mut live, mut outside) = (0, Vec::new());
    for key in &keys.leases {
        let Some(lease) = store.lease(key).await.map_err(|e| e.to_string())? else {
            continue;
        };
        // The lease's own account: a request with several accounts holds a lease on each.
        let Some((_, account, _)) = Lease::parse_key(key) else {
            continue;
        };
        for holder in &lease.holders {
            let Ok(id) = RequestId::parse(holder) else {
                continue;
            };
            let Some(rec) = store.get(&id).await.map_err(|e| e.to_string())? else {
                continue;
            };
            if !rec.status.is_active() {
                continue;
            }
            live += 1;
            let mut groups = BTreeSet::new();
            if let (false, Some(principal)) = (wanted.is_empty(), &rec.principal_id) {
                if instance.is_none() {
                    instance = Some(instance_of(&sso).await?);
                }
                let inst = instance.as_ref().expect("set above");
                groups = sso
                    .member_of(inst, principal, &wanted)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let decision = policy.decide(
                &Subject {
                    slack_user: &rec.slack_user_id,
                    sso_groups: &groups,
                },
                &Target {
                    account: &account,
                    permission_set: &rec.permission_set_arn,
                    permission_set_name: rec.permission_set_name.as_deref(),
                },
            );
            let what = format!(
                "{id}: {} on {} as {} until {}",
                rec.sso_user_name,
                account,
                rec.permission_set_name
                    .as_deref()
                    .unwrap_or(rec.permission_set_arn.as_str()),
                rec.expires_at
                    .map(crate::time_util::rfc3339)
                    .unwrap_or_else(|| "(not granted yet)".into())
            );
            match decision {
                Decision::Deny(why) => outside.push(format!("{what}: {why}")),
                Decision::Allow(g) if rec.end_sessions && !g.end_sessions => outside.push(format!(
                    "{what}: its rule ends live sessions when it ends, the new rule {:?} does not: ending them may be refused (the revoke-failed alarm says so)",
                    g.rule
                )),
                Decision::Allow(_) => {}
            }
        }
    }
    Ok((live, outside))
}

/// The Identity Center instance: `SSO_INSTANCE_ARN`/`IDENTITY_STORE_ID`, or the one
/// `ListInstances` returns.
async fn instance_of(sso: &Sso) -> Result<Instance, String> {
    match (
        std::env::var("SSO_INSTANCE_ARN"),
        std::env::var("IDENTITY_STORE_ID"),
    ) {
        (Ok(instance_arn), Ok(identity_store_id)) => Ok(Instance {
            instance_arn,
            identity_store_id,
        }),
        _ => sso.discover_instance().await.map_err(|e| e.to_string()),
    }
}

pub fn index(days: u32, table: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (requests, marked) = rt.block_on(index_live(days, table))?;
    println!(
        "{requests} request(s) of the last {days} day(s): {} lease(s), {} creation intent(s) and {} permission set(s) with session denies are in the live index",
        marked[0], marked[1], marked[2]
    );
    Ok(())
}

/// How many requests were looked at, and how many leases, intents and session-deny lists
/// were put into the live index.
async fn index_live(days: u32, table: &str) -> Result<(usize, [usize; 3]), String> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let e = |e: crate::error::Error| e.to_string();
    let requests = store
        .requests_since(days, time::OffsetDateTime::now_utc())
        .await
        .map_err(e)?;
    let mut marked = [0; 3];
    let mut denied = BTreeSet::new();
    for rec in &requests {
        let Some(principal) = &rec.principal_id else {
            continue;
        };
        for account in rec.accounts() {
            let lease = Lease::key(principal, &account, &rec.permission_set_arn);
            let intent = Intent::key(principal, &account, &rec.permission_set_arn);
            if store.mark_live(Live::Lease, &lease).await.map_err(e)? {
                marked[0] += 1;
            }
            if store
                .mark_live(Live::Intent, &format!("created#{intent}"))
                .await
                .map_err(e)?
            {
                marked[1] += 1;
            }
        }
        if rec.sessions_denied_until.is_some() && rec.sessions_lifted_at.is_none() {
            denied.insert(rec.permission_set_arn.clone());
        }
    }
    for ps in denied {
        let denies = store.denies(&ps).await.map_err(e)?;
        if !denies.denies.is_empty()
            && store
                .mark_live(Live::Sessions, &Store::denies_key(&ps))
                .await
                .map_err(e)?
        {
            marked[2] += 1;
        }
    }
    Ok((requests.len(), marked))
}
