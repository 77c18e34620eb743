//! Slack interactivity payloads: the form field `payload` holding JSON with a `type`.
//!
//! Two kinds of click start break glass:
//! - the legacy `interactive_message` of the original demo: the account id is the middle of
//!   `callback_id` (`<prefix>_<12 digits>_<suffix>`), the permission set ARN is the `value` of
//!   the clicked action named `break_glass`;
//! - a Block Kit `block_actions` click on a button with `action_id` `break_glass`: the account id
//!   is the middle of the button's `block_id` (same shape as `callback_id`), the permission set
//!   ARN is its `value`.
//!
//! Everything here is untrusted: the policy decides, never the message.

use serde::Deserialize;

use crate::domain::{AccountId, PermissionSetArn};

/// The `action_id` (Block Kit) or action `name` (legacy) of the Break Glass button.
pub const BREAK_GLASS_ACTION: &str = "break_glass";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the body has no `payload` form field")]
    MissingPayload,
    #[error("the payload is not valid JSON: {0}")]
    BadJson(String),
    #[error("unsupported payload type {0:?}")]
    UnknownType(String),
    #[error("{field}: {problem}")]
    BadField {
        field: &'static str,
        problem: String,
    },
}

pub(super) fn bad(field: &'static str, problem: impl Into<String>) -> PayloadError {
    PayloadError::BadField {
        field,
        problem: problem.into(),
    }
}

/// A Break Glass click, reduced to what the rest of the system needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub team_id: String,
    pub api_app_id: Option<String>,
    pub user_id: String,
    pub channel_id: Option<String>,
    /// The message the button is in (`message_ts`); identifies the click for de-duplication.
    pub message_ts: Option<String>,
    pub action_ts: String,
    pub account_id: AccountId,
    pub permission_set_arn: PermissionSetArn,
    pub response_url: Option<String>,
}

/// The `action_id`s of the buttons on the "access granted" message; their value is the
/// request id.
pub const END_ACCESS_ACTION: &str = "end_access";
pub const EXTEND_ACCESS_ACTION: &str = "extend_access";
/// The `action_id`s of the review message's buttons; their value is the request id.
pub const REVIEW_OK_ACTION: &str = "review_ok";
pub const REVIEW_FOLLOW_UP_ACTION: &str = "review_follow_up";
/// The `action_id`s of the approval request's buttons; their value is the request id.
pub const APPROVE_ACTION: &str = "approve_request";
pub const DENY_ACTION: &str = "deny_request";
/// The `callback_id` of the follow-up note's modal (its `private_metadata` is the request id).
pub const REVIEW_NOTE_CALLBACK: &str = "review_note";
/// The `callback_id` of the slash command's modal.
pub const MODAL_CALLBACK: &str = "break_glass_request";

/// Where a request came from in Slack: enough to check the workspace and to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub team_id: String,
    pub api_app_id: Option<String>,
    pub user_id: String,
}

/// `/break-glass` (form-encoded slash command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub origin: Origin,
    pub trigger_id: String,
    pub channel_id: Option<String>,
}

/// The modal's submission, values as the user chose them (untrusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub origin: Origin,
    pub view_id: String,
    /// The accounts chosen, in order, without repeats (one picker, single or multiple).
    pub accounts: Vec<String>,
    pub permission_set: Option<String>,
    pub duration: Option<String>,
    pub reason: Option<String>,
    /// A PagerDuty incident id or URL (the modal asks when a rule requires one).
    pub incident: Option<String>,
    pub private_metadata: String,
}

/// A click on **End access now** or **Extend**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseClick {
    pub origin: Origin,
    pub extend: bool,
    /// The button's value: supposedly a request id (checked by the caller).
    pub request_id: String,
    /// Slack's id of this click: the same click delivered twice has the same one.
    pub action_ts: String,
    pub response_url: Option<String>,
}

/// A click on **Reviewed — fine** or **Needs follow-up**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewClick {
    pub origin: Origin,
    pub follow_up: bool,
    /// The button's value: supposedly a request id (checked by the caller).
    pub request_id: String,
    /// For the follow-up note's modal.
    pub trigger_id: Option<String>,
}

/// A click on **Approve** or **Deny** of an approval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalClick {
    pub origin: Origin,
    pub approve: bool,
    /// The button's value: supposedly a request id (checked by the caller).
    pub request_id: String,
}

/// Which of the modal's type-ahead pickers Slack asks options for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picker {
    Account,
    PermissionSet,
}

/// Slack asks for the options of an `external_select` as the user types
/// (`block_suggestion`); the answer must come within 3 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub origin: Origin,
    pub picker: Picker,
    /// What the user typed so far (at most 100 characters kept).
    pub typed: String,
    /// The (first) account already chosen in the form, if any (untrusted).
    pub account: Option<String>,
}

/// The follow-up note's modal, submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewNote {
    pub origin: Origin,
    /// The modal's `private_metadata`: supposedly a request id (checked by the caller).
    pub request_id: String,
    pub note: Option<String>,
}

/// What an interactivity request asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    BreakGlass(Click),
    Command(Command),
    Submission(Submission),
    Lease(LeaseClick),
    Review(ReviewClick),
    ReviewNote(ReviewNote),
    Approval(ApprovalClick),
    Suggestion(Suggestion),
    /// The Events API's handshake: answer with the challenge.
    UrlVerification {
        challenge: String,
    },
    /// `app_home_opened` on the Home tab: publish the user's Home view.
    HomeOpened(Origin),
    /// A click on some other button of the same message (the seed's "Retry"): not ours.
    Ignored {
        team_id: String,
        api_app_id: Option<String>,
    },
}

impl Interaction {
    /// What kind of interaction this is, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Interaction::BreakGlass(_) => "break_glass",
            Interaction::Command(_) => "command",
            Interaction::Submission(_) => "submission",
            Interaction::Lease(l) if l.extend => "extend_access",
            Interaction::Lease(_) => "end_access",
            Interaction::Review(r) if r.follow_up => "review_follow_up",
            Interaction::Review(_) => "review_ok",
            Interaction::ReviewNote(_) => "review_note",
            Interaction::Approval(a) if a.approve => "approve_request",
            Interaction::Approval(_) => "deny_request",
            Interaction::Suggestion(_) => "block_suggestion",
            Interaction::UrlVerification { .. } => "url_verification",
            Interaction::HomeOpened(_) => "app_home_opened",
            Interaction::Ignored { .. } => "ignored",
        }
    }

    /// The Slack user who acted (none for a click that is not ours).
    pub fn user_id(&self) -> &str {
        match self {
            Interaction::BreakGlass(c) => &c.user_id,
            Interaction::Command(c) => &c.origin.user_id,
            Interaction::Submission(s) => &s.origin.user_id,
            Interaction::Lease(l) => &l.origin.user_id,
            Interaction::Review(r) => &r.origin.user_id,
            Interaction::ReviewNote(n) => &n.origin.user_id,
            Interaction::Approval(a) => &a.origin.user_id,
            Interaction::Suggestion(s) => &s.origin.user_id,
            Interaction::HomeOpened(o) => &o.user_id,
            Interaction::UrlVerification { .. } | Interaction::Ignored { .. } => "",
        }
    }

    pub fn team_and_app(&self) -> (&str, Option<&str>) {
        let o = match self {
            Interaction::BreakGlass(c) => return (&c.team_id, c.api_app_id.as_deref()),
            Interaction::Ignored {
                team_id,
                api_app_id,
            } => return (team_id, api_app_id.as_deref()),
            Interaction::Command(c) => &c.origin,
            Interaction::Submission(s) => &s.origin,
            Interaction::Lease(l) => &l.origin,
            Interaction::Review(r) => &r.origin,
            Interaction::ReviewNote(n) => &n.origin,
            Interaction::Approval(a) => &a.origin,
            Interaction::Suggestion(s) => &s.origin,
            Interaction::HomeOpened(o) => o,
            // Slack's handshake names no workspace; it is signed all the same.
            Interaction::UrlVerification { .. } => return ("", None),
        };
        (&o.team_id, o.api_app_id.as_deref())
    }
}

/// Parses a form-encoded body: an interactivity `payload`, or a slash command.
pub fn parse_form(body: &[u8]) -> Result<Interaction, PayloadError> {
    let fields = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|_| PayloadError::MissingPayload)?;
    let get = |name: &str| {
        fields
            .iter()
            .find_map(|(k, v)| (k == name).then_some(v.as_str()))
    };
    if let Some(payload) = get("payload") {
        return parse_payload(payload);
    }
    let Some(command) = get("command") else {
        return Err(PayloadError::MissingPayload);
    };
    if command != "/break-glass" {
        return Err(PayloadError::UnknownType(
            crate::domain::truncate(command, 40).to_owned(),
        ));
    }
    let required = |name: &'static str| {
        get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| bad(name, "missing"))
    };
    Ok(Interaction::Command(Command {
        origin: Origin {
            team_id: required("team_id")?,
            api_app_id: get("api_app_id").map(str::to_owned),
            user_id: required("user_id")?,
        },
        trigger_id: required("trigger_id")?,
        channel_id: get("channel_id").map(str::to_owned),
    }))
}

/// Parses the JSON of the `payload` field.
pub fn parse_payload(json: &str) -> Result<Interaction, PayloadError> {
    let raw: RawPayload = serde_json::from_str(json).map_err(|e| {
        // serde's message for an unknown tag names the tag; keep it out of the JSON error.
        PayloadError::BadJson(e.to_string())
    })?;
    match raw {
        RawPayload::InteractiveMessage(p) => p.into_interaction(),
        RawPayload::BlockActions(p) => p.into_interaction(),
        RawPayload::ViewSubmission(p) => p.into_interaction(),
        RawPayload::BlockSuggestion(p) => p.into_interaction(),
        RawPayload::Other => Err(PayloadError::UnknownType(peek_type(json))),
    }
}

pub(super) fn peek_type(json: &str) -> String {
    #[derive(Deserialize)]
    struct T {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    serde_json::from_str::<T>(json)
        .ok()
        .and_then(|t| t.kind)
        .map(|k| crate::domain::truncate(&k, 40).to_owned())
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawPayload {
    InteractiveMessage(Legacy),
    BlockActions(Blocks),
    ViewSubmission(ViewSubmission),
    BlockSuggestion(BlockSuggestion),
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Legacy {
    actions: Vec<LegacyAction>,
    callback_id: String,
    team: Id,
    user: Id,
    channel: Option<Id>,
    action_ts: String,
    message_ts: Option<String>,
    response_url: Option<String>,
    api_app_id: Option<String>,
}

#[derive(Deserialize)]
struct LegacyAction {
    name: String,
    value: Option<String>,
}

impl Legacy {
    fn into_interaction(self) -> Result<Interaction, PayloadError> {
        // Slack sends exactly the clicked action in `actions`.
        let [action] = self.actions.as_slice() else {
            return Err(bad("actions", "expected exactly the clicked action"));
        };
        if action.name != BREAK_GLASS_ACTION {
            return Ok(Interaction::Ignored {
                team_id: self.team.id,
                api_app_id: self.api_app_id,
            });
        }
        let value = action.value.as_deref().unwrap_or_default();
        Ok(Interaction::BreakGlass(Click {
            account_id: account_from_id("callback_id", &self.callback_id)?,
            permission_set_arn: PermissionSetArn::parse(value)
                .map_err(|e| bad("actions[0].value", e.to_string()))?,
            team_id: self.team.id,
            api_app_id: self.api_app_id,
            user_id: self.user.id,
            channel_id: self.channel.map(|c| c.id),
            message_ts: self.message_ts,
            action_ts: self.action_ts,
            response_url: self.response_url,
        }))
    }
}

#[derive(Deserialize)]
struct Blocks {
    actions: Vec<BlockAction>,
    team: Id,
    user: Id,
    channel: Option<Id>,
    container: Option<Container>,
    response_url: Option<String>,
    api_app_id: Option<String>,
    trigger_id: Option<String>,
}

#[derive(Deserialize)]
struct BlockAction {
    action_id: String,
    block_id: Option<String>,
    value: Option<String>,
    action_ts: String,
}

#[derive(Deserialize)]
struct Container {
    message_ts: Option<String>,
}

impl Blocks {
    fn into_interaction(self) -> Result<Interaction, PayloadError> {
        let [action] = self.actions.as_slice() else {
            return Err(bad("actions", "expected exactly the clicked action"));
        };
        if action.action_id == END_ACCESS_ACTION || action.action_id == EXTEND_ACCESS_ACTION {
            return Ok(Interaction::Lease(LeaseClick {
                extend: action.action_id == EXTEND_ACCESS_ACTION,
                request_id: action.value.clone().unwrap_or_default(),
                action_ts: action.action_ts.clone(),
                response_url: self.response_url,
                origin: Origin {
                    team_id: self.team.id,
                    api_app_id: self.api_app_id,
                    user_id: self.user.id,
                },
            }));
        }
        if action.action_id == REVIEW_OK_ACTION || action.action_id == REVIEW_FOLLOW_UP_ACTION {
            return Ok(Interaction::Review(ReviewClick {
                follow_up: action.action_id == REVIEW_FOLLOW_UP_ACTION,
                request_id: action.value.clone().unwrap_or_default(),
                trigger_id: self.trigger_id,
                origin: Origin {
                    team_id: self.team.id,
                    api_app_id: self.api_app_id,
                    user_id: self.user.id,
                },
            }));
        }
        if action.action_id == APPROVE_ACTION || action.action_id == DENY_ACTION {
            return Ok(Interaction::Approval(ApprovalClick {
                approve: action.action_id == APPROVE_ACTION,
                request_id: action.value.clone().unwrap_or_default(),
                origin: Origin {
                    team_id: self.team.id,
                    api_app_id: self.api_app_id,
                    user_id: self.user.id,
                },
            }));
        }
        if action.action_id != BREAK_GLASS_ACTION {
            return Ok(Interaction::Ignored {
                team_id: self.team.id,
                api_app_id: self.api_app_id,
            });
        }
        let block_id = action.block_id.as_deref().unwrap_or_default();
        let value = action.value.as_deref().unwrap_or_default();
        Ok(Interaction::BreakGlass(Click {
            account_id: account_from_id("block_id", block_id)?,
            permission_set_arn: PermissionSetArn::parse(value)
                .map_err(|e| bad("actions[0].value", e.to_string()))?,
            team_id: self.team.id,
            api_app_id: self.api_app_id,
            user_id: self.user.id,
            channel_id: self.channel.map(|c| c.id),
            message_ts: self.container.and_then(|c| c.message_ts),
            action_ts: action.action_ts.clone(),
            response_url: self.response_url,
        }))
    }
}

#[derive(Deserialize)]
struct ViewSubmission {
    team: Id,
    user: Id,
    api_app_id: Option<String>,
    view: View,
}

#[derive(Deserialize)]
struct View {
    id: String,
    callback_id: Option<String>,
    #[serde(default)]
    private_metadata: String,
    state: State,
}

#[derive(Deserialize)]
struct State {
    /// block id → action id → element state.
    values: std::collections::HashMap<String, std::collections::HashMap<String, Element>>,
}

#[derive(Deserialize, Clone)]
struct Element {
    value: Option<String>,
    selected_option: Option<SelectedOption>,
    /// A `multi_external_select`'s choices.
    selected_options: Option<Vec<SelectedOption>>,
}

impl Element {
    /// The chosen values, single or multiple, in order and without repeats; at most one more
    /// than any rule may allow (what follows changes no decision: too many is refused).
    fn chosen(self) -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        let all = self
            .selected_option
            .into_iter()
            .chain(self.selected_options.into_iter().flatten());
        for o in all {
            if values.len() > crate::policy::MAX_ACCOUNTS {
                break;
            }
            if !o.value.trim().is_empty() && !values.contains(&o.value) {
                values.push(o.value);
            }
        }
        values
    }
}

#[derive(Deserialize, Clone)]
struct SelectedOption {
    value: String,
}

impl ViewSubmission {
    fn into_interaction(self) -> Result<Interaction, PayloadError> {
        let values = &self.view.state.values;
        let get = |block: &str| {
            values
                .get(block)
                .and_then(|actions| actions.get(block))
                .and_then(|e| {
                    e.selected_option
                        .as_ref()
                        .map(|o| o.value.clone())
                        .or_else(|| e.value.clone())
                        .filter(|v| !v.trim().is_empty())
                })
        };
        let origin = Origin {
            team_id: self.team.id.clone(),
            api_app_id: self.api_app_id.clone(),
            user_id: self.user.id.clone(),
        };
        match self.view.callback_id.as_deref() {
            Some(MODAL_CALLBACK) => {}
            Some(REVIEW_NOTE_CALLBACK) => {
                return Ok(Interaction::ReviewNote(ReviewNote {
                    origin,
                    request_id: self.view.private_metadata.clone(),
                    note: get("note"),
                }));
            }
            _ => {
                return Err(PayloadError::UnknownType(
                    "view_submission of another view".into(),
                ));
            }
        }
        let accounts = self
            .view
            .state
            .values
            .get("account")
            .and_then(|actions| actions.get("account"))
            .cloned()
            .map(Element::chosen)
            .unwrap_or_default();
        Ok(Interaction::Submission(Submission {
            accounts,
            permission_set: get("permission_set"),
            duration: get("duration"),
            reason: get("reason"),
            incident: get("incident"),
            view_id: self.view.id,
            private_metadata: self.view.private_metadata,
            origin: Origin {
                team_id: self.team.id,
                api_app_id: self.api_app_id,
                user_id: self.user.id,
            },
        }))
    }
}

#[derive(Deserialize)]
struct BlockSuggestion {
    team: Id,
    user: Id,
    api_app_id: Option<String>,
    action_id: String,
    #[serde(default)]
    value: String,
    view: Option<SuggestionView>,
}

#[derive(Deserialize)]
struct SuggestionView {
    state: Option<State>,
}

impl BlockSuggestion {
    fn into_interaction(self) -> Result<Interaction, PayloadError> {
        let picker = match self.action_id.as_str() {
            "account" => Picker::Account,
            "permission_set" => Picker::PermissionSet,
            _ => return Err(bad("action_id", "not a picker of the break-glass form")),
        };
        let account = self
            .view
            .and_then(|v| v.state)
            .and_then(|mut s| s.values.remove("account"))
            .and_then(|mut a| a.remove("account"))
            .and_then(|e| e.chosen().into_iter().next());
        Ok(Interaction::Suggestion(Suggestion {
            origin: Origin {
                team_id: self.team.id,
                api_app_id: self.api_app_id,
                user_id: self.user.id,
            },
            picker,
            typed: crate::domain::truncate(self.value.trim(), 100).to_owned(),
            account,
        }))
    }
}

/// `<prefix>_<12 digits>_<suffix>`: exactly one inner `_`-separated segment is an account id.
fn account_from_id(field: &'static str, id: &str) -> Result<AccountId, PayloadError> {
    let parts: Vec<&str> = id.split('_').collect();
    let inner = parts
        .get(1..parts.len().saturating_sub(1))
        .unwrap_or_default();
    let mut found = inner.iter().filter_map(|p| AccountId::parse(p).ok());
    match (found.next(), found.next()) {
        (Some(a), None) => Ok(a),
        (Some(_), Some(_)) => Err(bad(field, "more than one account id")),
        (None, _) => Err(bad(
            field,
            "expected <prefix>_<12-digit account id>_<suffix>",
        )),
    }
}

#[cfg(test)]
mod tests;
