//! `break-glass policy check FILE` and `break-glass policy scope --json FILE`.

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

pub fn scope(path: &Path) -> Result<(), String> {
    let p = Policy::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json = serde_json::to_string_pretty(&p.deploy_scope()).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}
