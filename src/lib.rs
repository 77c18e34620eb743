//! # break-glass
//!
//! Emergency access to AWS from Slack. One click on a **Break Glass** button grants an IAM
//! Identity Center permission set on an account for a bounded time; Step Functions takes it
//! away again, waits for CloudTrail, and mails a report of everything done with it.
//!
//! One binary serves every role: the Slack webhook, the Step Functions worker tasks and the
//! operator's CLI. The domain is pure and in the middle; AWS and Slack are at the edges.
//!
//! ## Layout
//!
//! - [`config`]: typed configuration from the environment, validated at cold start.
//! - [`domain`]: newtypes (`AccountId`, `PermissionSetArn`, `RequestId`, `Duration`) with `parse()`.
//! - [`policy`]: who may have what, for how long; deny by default, deny rules win.
//! - [`slack`]: request signatures, interactivity payloads, replies and follow-ups.
//! - [`aws`]: one adapter per AWS service (DynamoDB store, SSO, Step Functions, SES, secrets).
//! - [`report`]: CloudTrail collection, filtering to one session, summary, HTML/text rendering.
//! - [`handlers`]: the webhook and the worker tasks, one use case a file, and event dispatch.
//! - [`oncall`]: who is on call (PagerDuty, Opsgenie) and whether an incident is open.
//! - [`sessions`]: ending a user's live sessions on revoke (the inline-policy deny).
//! - [`cache`]: a map whose entries expire (identity answers), the clock passed in.
//! - [`cli`]: the operator's subcommands (`policy check`, `report render`, `leases check`).
//! - [`error`]: errors with the stable names the state machine matches on.

pub mod aws;
pub mod cache;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod identity;
pub mod oncall;
pub mod policy;
pub mod report;
pub mod sessions;
pub mod slack;
pub mod time_util;
