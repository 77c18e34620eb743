//! Detections as data: which CloudTrail events deserve a reviewer's attention first, with
//! their ATT&CK technique, and which creations the session did not undo. The table is
//! `detections.toml` (next to this file, compiled in): see its header for the format and the
//! sources. This module reads and validates it, and matches events against it; matching needs
//! the event's request parameters only while the event is parsed, so nothing of them is kept.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How bad a flag is. Ordered most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];
    /// Its colour in the HTML report.
    pub fn color(self) -> &'static str {
        match self {
            Severity::Critical => "#c9372c",
            Severity::High => "#e56910",
            Severity::Medium => "#b38600",
            Severity::Low => "#5e6c84",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// One detection rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub technique: String,
    pub tactic: String,
    pub source: String,
    pub actions: Vec<String>,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub when: Vec<Condition>,
}

/// A condition on the request parameters: it holds when any value at any of `paths` passes
/// its one test.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub paths: Vec<String>,
    #[serde(default)]
    pub equals: Vec<String>,
    #[serde(default)]
    pub ends_with: Vec<String>,
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub exists: bool,
    #[serde(default)]
    pub other_account: bool,
}

/// A creation the session should have undone before it ended.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeftBehindRule {
    pub title: String,
    /// `service:Action`.
    pub create: String,
    pub undo: Vec<String>,
    /// Where the resource's name is in the creating call.
    pub key: String,
    /// `"response"`: `key` is in the response elements (the name is only known then).
    #[serde(default)]
    pub from: Option<String>,
    /// Where it is in the undoing call's request parameters, when named differently.
    #[serde(default)]
    pub undo_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rule: Vec<Rule>,
    left_behind: Vec<LeftBehindRule>,
}

/// The ATT&CK tactics a rule may name.
/// The name of something created whose record does not say what (a denied response, a record
/// cut short): still left behind, one per event.
pub const UNNAMED: &str = "(not named in the record)";

const TACTICS: &[&str] = &[
    "Initial Access",
    "Execution",
    "Persistence",
    "Privilege Escalation",
    "Defense Evasion",
    "Credential Access",
    "Discovery",
    "Lateral Movement",
    "Collection",
    "Exfiltration",
    "Impact",
];

/// The table, ready to match: rules by (source, action).
#[derive(Debug)]
pub struct Detections {
    pub rules: Vec<Rule>,
    pub left_behind: Vec<LeftBehindRule>,
    /// eventSource → action → indexes of the rules for it; `"*"` as the source for rules of
    /// any source. Nested so that a look-up borrows the event's strings.
    by_action: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Fallback rules (`actions = ["*"]`).
    fallback: Vec<usize>,
    /// service → action → (index of the left-behind rule, whether the action creates).
    lifecycle: HashMap<String, HashMap<String, Vec<(usize, bool)>>>,
}

/// The compiled-in table. It is validated by the tests, so a broken one never ships.
pub fn detections() -> &'static Detections {
    static TABLE: OnceLock<Detections> = OnceLock::new();
    TABLE.get_or_init(|| {
        Detections::parse(include_str!("detections.toml"))
            .unwrap_or_else(|e| panic!("src/report/detections.toml: {e}"))
    })
}

impl Detections {
    /// Reads and validates a table: every problem at once, one per line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for r in &file.rule {
            let at = format!("rule {:?}", r.id);
            if r.id.is_empty()
                || !r
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                problems.push(format!(
                    "{at}: the id is lowercase letters, digits and dashes"
                ));
            }
            if !ids.insert(r.id.clone()) {
                problems.push(format!("{at}: duplicate id"));
            }
            if r.title.trim().is_empty() {
                problems.push(format!("{at}: no title"));
            }
            if !technique_id(&r.technique) {
                problems.push(format!(
                    "{at}: technique {:?} is not an ATT&CK id (T1234 or T1234.567)",
                    r.technique
                ));
            }
            if !TACTICS.contains(&r.tactic.as_str()) {
                problems.push(format!(
                    "{at}: tactic {:?} is not an ATT&CK tactic",
                    r.tactic
                ));
            }
            if r.source != "*" && !r.source.ends_with(".amazonaws.com") {
                problems.push(format!("{at}: source {:?} is not an eventSource", r.source));
            }
            if r.actions.is_empty() || r.actions.iter().any(|a| a.is_empty()) {
                problems.push(format!("{at}: no actions"));
            }
            let fallback = r.actions == ["*"];
            if fallback && r.errors.is_empty() {
                problems.push(format!(
                    "{at}: a rule for any action must name the errors it is about"
                ));
            }
            for c in &r.when {
                let tests = [
                    !c.equals.is_empty(),
                    !c.ends_with.is_empty(),
                    !c.contains.is_empty(),
                    c.exists,
                    c.other_account,
                ];
                if tests.iter().filter(|t| **t).count() != 1 {
                    problems.push(format!("{at}: a condition has exactly one test (equals, ends_with, contains, exists, other_account)"));
                }
                if c.paths.is_empty() || c.paths.iter().any(|p| p.is_empty()) {
                    problems.push(format!("{at}: a condition needs paths"));
                }
            }
        }
        for (i, l) in file.left_behind.iter().enumerate() {
            let at = format!("left_behind[{i}] ({})", l.title);
            for a in std::iter::once(&l.create).chain(&l.undo) {
                if !a
                    .split_once(':')
                    .is_some_and(|(s, n)| !s.is_empty() && !n.is_empty())
                {
                    problems.push(format!("{at}: {a:?} is not service:Action"));
                }
            }
            if l.undo.is_empty() {
                problems.push(format!("{at}: nothing undoes it"));
            }
            if !matches!(l.from.as_deref(), None | Some("request") | Some("response")) {
                problems.push(format!("{at}: from is \"request\" or \"response\""));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        let mut by_action: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
        let mut fallback = Vec::new();
        for (i, r) in file.rule.iter().enumerate() {
            if r.actions == ["*"] {
                fallback.push(i);
                continue;
            }
            for a in &r.actions {
                by_action
                    .entry(r.source.clone())
                    .or_default()
                    .entry(a.clone())
                    .or_default()
                    .push(i);
            }
        }
        let mut lifecycle: HashMap<String, HashMap<String, Vec<(usize, bool)>>> = HashMap::new();
        for (i, l) in file.left_behind.iter().enumerate() {
            let undo = l.undo.iter().map(|u| (u, false));
            for (what, creates) in std::iter::once((&l.create, true)).chain(undo) {
                // Validated above: service:Action.
                let (service, action) = what.split_once(':').unwrap_or_default();
                lifecycle
                    .entry(service.to_owned())
                    .or_default()
                    .entry(action.to_owned())
                    .or_default()
                    .push((i, creates));
            }
        }
        Ok(Detections {
            rules: file.rule,
            left_behind: file.left_behind,
            by_action,
            fallback,
            lifecycle,
        })
    }

    /// The rules for this source and (base) action, then those for any source, in table order.
    fn rules_for<'a>(&'a self, source: &str, action: &str) -> impl Iterator<Item = &'a Rule> {
        [source, "*"]
            .into_iter()
            .filter_map(move |s| self.by_action.get(s)?.get(action))
            .flatten()
            .map(|&i| &self.rules[i])
    }

    fn lifecycle_of(&self, source: &str, action: &str) -> Option<&Vec<(usize, bool)>> {
        self.lifecycle.get(service_of(source))?.get(action)
    }

    /// Whether any rule or left-behind entry looks at this (source, action): only then are an
    /// event's parameters read.
    pub fn interested(&self, source: &str, action: &str) -> bool {
        let action = base_action(action);
        self.rules_for(source, action).next().is_some()
            || self.lifecycle_of(source, action).is_some()
    }

    /// The most severe rule that matches the event (ties: the first in the table), else a
    /// fallback rule whose errors match. `params` are the request parameters, `account` the
    /// account the event happened in.
    pub fn classify(
        &self,
        source: &str,
        action: &str,
        error_code: &str,
        params: Option<&Value>,
        account: &str,
    ) -> Option<&Rule> {
        let action = base_action(action);
        let mut best: Option<&Rule> = None;
        for r in self.rules_for(source, action) {
            if r.applies(error_code, params, account)
                && best.is_none_or(|b| r.severity < b.severity)
            {
                best = Some(r);
            }
        }
        if best.is_some() {
            return best;
        }
        self.fallback
            .iter()
            .map(|&i| &self.rules[i])
            .find(|r| r.applies(error_code, params, account))
    }

    /// What the event does to resources the left-behind table tracks: (index of the entry,
    /// whether it creates, the resource names). A creation whose record names nothing is
    /// [`UNNAMED`].
    pub fn lifecycle(
        &self,
        source: &str,
        action: &str,
        params: Option<&Value>,
        response: Option<&Value>,
    ) -> Vec<(usize, bool, Vec<String>)> {
        let Some(entries) = self.lifecycle_of(source, base_action(action)) else {
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|&(i, creates)| {
                let l = &self.left_behind[i];
                let (from, path) = if creates {
                    let from = if l.from.as_deref() == Some("response") {
                        response
                    } else {
                        params
                    };
                    (from, l.key.as_str())
                } else {
                    (params, l.undo_key.as_deref().unwrap_or(&l.key))
                };
                let mut names = Vec::new();
                if let Some(from) = from {
                    values_at(from, path, &mut |v| {
                        if let Some(s) = scalar(v) {
                            names.push(s);
                        }
                    });
                }
                // A creation whose record does not name what it made is still left behind;
                // an undo that names nothing undoes nothing.
                if names.is_empty() && creates {
                    names.push(UNNAMED.to_owned());
                }
                (!names.is_empty()).then_some((i, creates, names))
            })
            .collect()
    }
}

impl Rule {
    fn applies(&self, error_code: &str, params: Option<&Value>, account: &str) -> bool {
        (self.errors.is_empty() || self.errors.iter().any(|p| wildcard(p, error_code)))
            && self
                .when
                .iter()
                .all(|c| params.is_some_and(|p| c.holds(p, account)))
    }
}

impl Condition {
    fn holds(&self, params: &Value, account: &str) -> bool {
        let mut found = false;
        for path in &self.paths {
            values_at(params, path, &mut |v| {
                if found {
                    return;
                }
                found = if self.exists {
                    !v.is_null()
                } else if let Some(s) = scalar(v) {
                    if self.other_account {
                        s == "*" || accounts_in(&s).any(|a| a != account)
                    } else {
                        self.equals.contains(&s)
                            || self.ends_with.iter().any(|x| s.ends_with(x.as_str()))
                            || self.contains.iter().any(|x| s.contains(x.as_str()))
                    }
                } else {
                    false
                };
            });
        }
        found
    }
}

/// Every value at `path` (dot-separated keys, `[]` for every item of a list). A string that
/// holds a JSON object (an IAM policy document), or its URL-encoding, is read as JSON.
pub fn values_at(v: &Value, path: &str, f: &mut dyn FnMut(&Value)) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (key, each) = match head.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (head, false),
    };
    let parsed;
    let v = match v {
        Value::String(s) => match embedded_json(s) {
            Some(p) => {
                parsed = p;
                &parsed
            }
            None => return,
        },
        other => other,
    };
    let Some(next) = (if key.is_empty() { Some(v) } else { v.get(key) }) else {
        return;
    };
    let mut visit = |item: &Value| match rest {
        Some(r) => values_at(item, r, f),
        None => f(item),
    };
    match (each, next) {
        (true, Value::Array(items)) => items.iter().for_each(&mut visit),
        (true, _) => {}
        (false, other) => visit(other),
    }
}

fn embedded_json(s: &str) -> Option<Value> {
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return serde_json::from_str(t).ok();
    }
    if t.starts_with("%7B") || t.starts_with("%7b") {
        let decoded = percent_decode(t)?;
        return serde_json::from_str(&decoded).ok();
    }
    None
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A scalar as text (`true`, `12`, `"x"` → x); `None` for objects, lists and null.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The 12-digit account ids in `s`: a bare id, or the account field of an ARN.
fn accounts_in(s: &str) -> impl Iterator<Item = &str> {
    let bare = (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s);
    let in_arn = s
        .strip_prefix("arn:")
        .and_then(|r| r.split(':').nth(3))
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    bare.into_iter().chain(in_arn)
}

/// `AccessDenied*`, `*UnauthorizedOperation`, `*NotAuthorized*` or an exact name.
fn wildcard(pattern: &str, code: &str) -> bool {
    if code.is_empty() {
        return false;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(p), _) if p.ends_with('*') => code.contains(&p[..p.len() - 1]),
        (Some(p), _) => code.ends_with(p),
        (None, Some(p)) => code.starts_with(p),
        (None, None) => code == pattern,
    }
}

fn technique_id(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    main.len() == 4
        && main.bytes().all(|b| b.is_ascii_digit())
        && sub.is_none_or(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
}

/// Lambda's versioned API names (`AddPermission20150331v2`) as their base name.
pub fn base_action(name: &str) -> &str {
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let without_v = trimmed.strip_suffix('v').unwrap_or(trimmed);
    let cut = if without_v.len() < trimmed.len() {
        without_v
    } else {
        name
    };
    // `cut` now ends where the version suffix (`v2`) began: the 8-digit date precedes it.
    let date_start = cut.len().saturating_sub(8);
    if cut.len() > 8 && cut[date_start..].bytes().all(|b| b.is_ascii_digit()) {
        &cut[..date_start]
    } else {
        name
    }
}

/// `iam` for `iam.amazonaws.com`.
pub fn service_of(source: &str) -> &str {
    source.strip_suffix(".amazonaws.com").unwrap_or(source)
}

#[cfg(test)]
mod tests;
