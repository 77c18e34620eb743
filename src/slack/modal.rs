//! The `/break-glass` modal (Block Kit): account, permission set, duration, reason, offering
//! only what the policy allows the user.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::domain::{AccountId, Duration};
use crate::policy::{Grant, Policy};

/// Durations the modal offers (those up to the user's maximum).
const DURATION_CHOICES: &[u64] = &[900, 1800, 3600, 7200, 14400, 28800, 43200];

/// The `/break-glass` modal: account, permission set, duration, reason.
pub fn modal(
    policy: &Policy,
    options: &[(AccountId, String, Grant)],
    labels: &[String],
    channel: Option<&str>,
) -> Value {
    let plain = |s: &str| json!({"type": "plain_text", "text": crate::domain::truncate(s, 75)});
    let option = |text: &str, value: &str| json!({"text": plain(text), "value": value});
    let accounts: BTreeSet<&AccountId> = options.iter().map(|(a, _, _)| a).collect();
    let account_options: Vec<Value> = accounts
        .iter()
        .take(100)
        .map(|a| match policy.account_name(a) {
            Some(n) => option(&format!("{n} ({a})"), a.as_str()),
            None => option(a.as_str(), a.as_str()),
        })
        .collect();
    let mut seen = BTreeSet::new();
    let ps_options: Vec<Value> = options
        .iter()
        .zip(labels)
        .filter(|((_, ps, _), _)| seen.insert(ps.clone()))
        .take(100)
        .map(|((_, ps, _), label)| option(label, ps))
        .collect();
    let longest = options
        .iter()
        .map(|(_, _, g)| g.max_duration)
        .max()
        .unwrap_or(Duration::from_secs(0));
    let mut durations: BTreeSet<u64> = DURATION_CHOICES
        .iter()
        .copied()
        .filter(|d| *d <= longest.as_secs())
        .collect();
    durations.extend(options.iter().map(|(_, _, g)| g.duration.as_secs()));
    let duration_options: Vec<Value> = durations
        .into_iter()
        .map(|d| {
            let d = Duration::from_secs(d).to_string();
            option(&d, &d)
        })
        .collect();
    let reason_required = options.iter().any(|(_, _, g)| g.reason_required);
    let mut blocks = vec![
        json!({"type": "input", "block_id": "account", "label": plain("Account"),
         "element": {"type": "static_select", "action_id": "account", "options": account_options}}),
        json!({"type": "input", "block_id": "permission_set", "label": plain("Permission set"),
         "element": {"type": "static_select", "action_id": "permission_set", "options": ps_options}}),
        json!({"type": "input", "block_id": "duration", "label": plain("For how long"),
         "element": {"type": "static_select", "action_id": "duration", "options": duration_options}}),
        json!({"type": "input", "block_id": "reason", "optional": !reason_required, "label": plain("Reason"),
         "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true, "max_length": 500}}),
    ];
    // Optional in the form: which choices need it is checked on submission.
    if options.iter().any(|(_, _, g)| g.incident_required) {
        blocks.push(
            json!({"type": "input", "block_id": "incident", "optional": true,
            "label": plain("PagerDuty incident"),
            "hint": plain("Its id or URL; some access needs an open incident."),
            "element": {"type": "plain_text_input", "action_id": "incident", "max_length": 200}}),
        );
    }
    json!({
        "type": "modal",
        "callback_id": crate::slack::payload::MODAL_CALLBACK,
        "title": plain("Break glass"),
        "submit": plain("Break glass"),
        "close": plain("Cancel"),
        "private_metadata": json!({"channel_id": channel}).to_string(),
        "blocks": blocks,
    })
}

/// The channel the slash command was typed in, carried through the modal.
pub fn modal_channel(private_metadata: &str) -> Option<String> {
    serde_json::from_str::<Value>(private_metadata)
        .ok()
        .and_then(|v| v["channel_id"].as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Subject;

    const PS: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";

    #[test]
    fn the_modal_offers_only_what_the_policy_allows() {
        let policy = Policy::parse(&format!(
            "version = 1\n[accounts]\n\"123456789012\" = \"production\"\n[[rule]]\nname = \"oncall\"\neffect = \"allow\"\nslack_users = [\"U0ALICE0001\"]\naccounts = [\"123456789012\"]\npermission_sets = [\"{PS}\"]\ndefault_duration = \"1h\"\nmax_duration = \"2h\"\nreason_required = true\n"
        ))
        .unwrap();
        let groups = BTreeSet::new();
        let options = policy.options(&Subject {
            slack_user: "U0ALICE0001",
            sso_groups: &groups,
        });
        let view = modal(
            &policy,
            &options,
            &["BreakGlassAdmin".to_owned()],
            Some("C1"),
        );
        let blocks = view["blocks"].as_array().unwrap();
        assert_eq!(
            blocks[0]["element"]["options"][0]["text"]["text"],
            "production (123456789012)"
        );
        assert_eq!(blocks[1]["element"]["options"][0]["value"], PS);
        assert_eq!(
            blocks[1]["element"]["options"][0]["text"]["text"],
            "BreakGlassAdmin"
        );
        let durations: Vec<&str> = blocks[2]["element"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            durations,
            ["15m", "30m", "1h", "2h"],
            "nothing longer than the maximum"
        );
        assert_eq!(blocks[3]["optional"], false, "the reason is required");
        assert_eq!(
            modal_channel(view["private_metadata"].as_str().unwrap()).as_deref(),
            Some("C1")
        );
    }
}
