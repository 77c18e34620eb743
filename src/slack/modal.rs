//! The `/break-glass` modal (Block Kit): account, permission set, duration, reason. The
//! account and permission-set pickers are `external_select`s: Slack asks for their options
//! as the user types (`block_suggestion`), so an organization of any size fits, and only
//! what the policy allows the user is offered ([`suggestions`] shapes the answer).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::domain::Duration;
use crate::policy::Grant;

/// Durations the modal offers (those up to the user's maximum).
const DURATION_CHOICES: &[u64] = &[900, 1800, 3600, 7200, 14400, 28800, 43200];

/// The most options Slack shows for one keystroke.
pub const MAX_SUGGESTIONS: usize = 100;

fn plain(s: &str) -> Value {
    json!({"type": "plain_text", "text": crate::domain::truncate(s, 75)})
}

/// The `/break-glass` modal for a user whose rules give these terms.
pub fn modal(grants: &[Grant], channel: Option<&str>) -> Value {
    let option = |text: &str, value: &str| json!({"text": plain(text), "value": value});
    let longest = grants
        .iter()
        .map(|g| g.max_duration)
        .max()
        .unwrap_or(Duration::from_secs(0));
    let mut durations: BTreeSet<u64> = DURATION_CHOICES
        .iter()
        .copied()
        .filter(|d| *d <= longest.as_secs())
        .collect();
    durations.extend(grants.iter().map(|g| g.duration.as_secs()));
    let duration_options: Vec<Value> = durations
        .into_iter()
        .map(|d| {
            let d = Duration::from_secs(d).to_string();
            option(&d, &d)
        })
        .collect();
    let reason_required = grants.iter().any(|g| g.reason_required);
    let picker = |id: &str, label: &str, placeholder: &str| {
        json!({"type": "input", "block_id": id, "label": plain(label),
               "element": {"type": "external_select", "action_id": id,
                           "placeholder": plain(placeholder), "min_query_length": 0}})
    };
    // Several accounts only where a rule allows them (each is checked on submission).
    let most_accounts = grants.iter().map(|g| g.max_accounts).max().unwrap_or(1);
    let account_picker = if most_accounts > 1 {
        json!({"type": "input", "block_id": "account", "label": plain("Accounts"),
               "hint": plain(&format!("Up to {most_accounts}: one request, one reason, one report.")),
               "element": {"type": "multi_external_select", "action_id": "account",
                           "placeholder": plain("Type a name or an account id"),
                           "min_query_length": 0, "max_selected_items": most_accounts}})
    } else {
        picker("account", "Account", "Type a name or an account id")
    };
    let mut blocks = vec![
        account_picker,
        picker(
            "permission_set",
            "Permission set",
            "Type a name (after choosing the account)",
        ),
        json!({"type": "input", "block_id": "duration", "label": plain("For how long"),
         "element": {"type": "static_select", "action_id": "duration", "options": duration_options}}),
        json!({"type": "input", "block_id": "reason", "optional": !reason_required, "label": plain("Reason"),
         "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true, "max_length": 500}}),
    ];
    // Optional in the form: which choices need it is checked on submission.
    if grants.iter().any(|g| g.incident_required) {
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

/// The answer to one keystroke: the (value, label) candidates whose label or value contains
/// `typed` (case-insensitive), best matches first, at most [`MAX_SUGGESTIONS`].
pub fn suggestions(candidates: Vec<(String, String)>, typed: &str) -> Value {
    let typed = typed.trim().to_lowercase();
    // Ranked: starts with it, then a word of the label does, then it is somewhere inside.
    let mut matched: Vec<(u8, String, String)> = candidates
        .into_iter()
        .filter_map(|(value, label)| {
            let (v, l) = (value.to_lowercase(), label.to_lowercase());
            let rank = if v.starts_with(&typed) || l.starts_with(&typed) {
                0
            } else if l.split([' ', '-', '_', '(']).any(|w| w.starts_with(&typed)) {
                1
            } else if v.contains(&typed) || l.contains(&typed) {
                2
            } else {
                return None;
            };
            Some((rank, label, value))
        })
        .collect();
    matched.sort();
    let options: Vec<Value> = matched
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, label, value)| json!({"text": plain(&label), "value": value}))
        .collect();
    json!({ "options": options })
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
    use crate::policy::{Policy, Subject};

    /// Alice's terms under a policy of one rule for every account (`extra`: more of its keys).
    fn alice_grants(extra: &str) -> Vec<Grant> {
        let policy = Policy::parse(&format!(
            "version = 1\n[[rule]]\nname = \"oncall\"\neffect = \"allow\"\nslack_users = [\"U0ALICE0001\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\ndefault_duration = \"1h\"\nmax_duration = \"2h\"\n{extra}"
        ))
        .unwrap();
        policy
            .choices(&Subject {
                slack_user: "U0ALICE0001",
                sso_groups: &BTreeSet::new(),
            })
            .grants()
            .collect()
    }

    #[test]
    fn the_modal_asks_with_type_ahead_pickers_and_the_rules_terms() {
        let grants = alice_grants("reason_required = true\n");
        let view = modal(&grants, Some("C1"));
        let blocks = view["blocks"].as_array().unwrap();
        for (i, id) in ["account", "permission_set"].into_iter().enumerate() {
            assert_eq!(blocks[i]["element"]["type"], "external_select");
            assert_eq!(blocks[i]["element"]["action_id"], id);
            assert_eq!(
                blocks[i]["element"]["min_query_length"], 0,
                "offered on focus"
            );
        }
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

    #[test]
    fn the_account_picker_takes_several_only_where_a_rule_allows_them() {
        let account_picker =
            |extra: &str| modal(&alice_grants(extra), None)["blocks"][0]["element"].clone();
        assert_eq!(account_picker("")["type"], "external_select");
        let multi = account_picker("max_accounts = 3\n");
        assert_eq!(multi["type"], "multi_external_select");
        assert_eq!(
            multi["action_id"], "account",
            "the same id: Slack asks the same type-ahead"
        );
        assert_eq!(multi["max_selected_items"], 3);
    }

    #[test]
    fn suggestions_match_the_typed_text_prefixes_first_at_most_a_hundred() {
        let c = |v: &str, l: &str| (v.to_owned(), l.to_owned());
        let found = suggestions(
            vec![
                c("111111111111", "payments-prod (111111111111)"),
                c("222222222222", "prod-network (222222222222)"),
                c("333333333333", "sandbox (333333333333)"),
            ],
            " PROD",
        );
        let values: Vec<&str> = found["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            values,
            ["222222222222", "111111111111"],
            "a word that starts with it first, then one that contains it"
        );
        let by_id = suggestions(vec![c("333333333333", "sandbox (333333333333)")], "3333");
        assert_eq!(
            by_id["options"][0]["text"]["text"],
            "sandbox (333333333333)"
        );
        let many: Vec<(String, String)> = (0..250)
            .map(|i| (format!("{i:012}"), format!("acct-{i}")))
            .collect();
        assert_eq!(
            suggestions(many, "").as_object().unwrap()["options"]
                .as_array()
                .unwrap()
                .len(),
            MAX_SUGGESTIONS
        );
    }
}
