//! `break-glass policy check FILE` and `break-glass policy scope --json FILE`.

use std::path::Path;

use crate::policy::{Effect, Policy};

pub fn check(path: &Path) -> Result<(), String> {
    let p = Policy::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let allows = p.rules.iter().filter(|r| r.effect == Effect::Allow).count();
    let gated = p.rules.iter().filter(|r| r.gate.is_some()).count();
    let incidents = p.rules.iter().filter(|r| r.incident_required).count();
    let (pagerduty, opsgenie) = p.services();
    let services: Vec<&str> = [(pagerduty, "PagerDuty"), (opsgenie, "Opsgenie")]
        .into_iter()
        .filter_map(|(used, name)| used.then_some(name))
        .collect();
    println!(
        "{}: ok: {} rules ({} allow, {} deny), {} mapped users, {} named accounts{}",
        path.display(),
        p.rules.len(),
        allows,
        p.rules.len() - allows,
        p.users.len(),
        p.accounts.len(),
        if gated + incidents > 0 {
            let tokens = if services.is_empty() {
                String::new()
            } else {
                format!(
                    " (the on-call secret needs a {} token)",
                    services.join(" and a ")
                )
            };
            format!(
                "; {gated} gated on who is on call or an approver, {incidents} needing an incident{tokens}"
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

pub fn scope(path: &Path) -> Result<(), String> {
    let p = Policy::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json = serde_json::to_string_pretty(&p.deploy_scope()).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}
