//! `break-glass policy check FILE`.

use std::path::Path;

use crate::policy::{Effect, Policy};

pub fn check(path: &Path) -> Result<(), String> {
    let p = Policy::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let allows = p.rules.iter().filter(|r| r.effect == Effect::Allow).count();
    println!(
        "{}: ok: {} rules ({} allow, {} deny), {} mapped users, {} named accounts",
        path.display(),
        p.rules.len(),
        allows,
        p.rules.len() - allows,
        p.users.len(),
        p.accounts.len()
    );
    Ok(())
}
