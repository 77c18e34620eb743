//! The operator's CLI: the same binary, given arguments. A clap-derive command whose doc
//! comments are its help text; each subcommand lives in a file of its own. Exit 0 on
//! success; usage errors and bad input exit 2 with one line on stderr saying what is wrong,
//! and no partial output.

mod audit;
mod leases;
mod policy;
mod report;
mod slack;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Emergency access to AWS from Slack. Without arguments, break-glass runs as an AWS Lambda
/// function (AWS_LAMBDA_RUNTIME_API must be set); with them, it is the operator's CLI.
#[derive(Debug, Parser)]
#[command(name = "break-glass", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Render CloudTrail records as a break-glass report.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Look at the live leases in the table (with your AWS credentials).
    #[command(subcommand)]
    Leases(LeasesCommand),
    /// Export the record of break-glass uses (with your AWS credentials).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Set up Slack.
    #[command(subcommand)]
    Slack(SlackCommand),
}

#[derive(Debug, Subcommand)]
enum SlackCommand {
    /// Post a Break Glass button for one account and permission set (checked against the
    /// policy first; the bot token is read from Secrets Manager or $SLACK_BOT_TOKEN, never
    /// printed).
    PostButton(slack::PostButtonArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Every request of a period, one row each: who, where, why, when it was granted, ended
    /// and revoked, the report's flags, and its review (outcome, reviewer, time to review).
    Export(audit::ExportArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a policy file; print a one-line summary, or the problem and exit 2.
    Check {
        /// The policy TOML file.
        file: PathBuf,
    },
    /// Print what the deploy derives from a policy file: the accounts and permission sets the
    /// allow rules can grant, which ones end live sessions, which rules remove standing
    /// access, and the Slack channels it names.
    Scope {
        /// Print JSON (the only format).
        #[arg(long)]
        json: bool,
        /// The policy TOML file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Render a CloudTrail file ({"Records": [...]} as CloudTrail writes to S3, also gzip, or a
    /// LookupEvents response {"Events": [...]}) to HTML and text.
    Render(report::RenderArgs),
}

#[derive(Debug, Subcommand)]
enum LeasesCommand {
    /// List the live leases a new policy file would no longer allow (run before deploying it:
    /// their revoke keeps working, but new grants like them will be refused).
    Check(LeasesCheckArgs),
    /// Put the leases, creation intents and session denies of the last days' requests into
    /// the table's live index, where the reconciler finds them (once, after upgrading from a
    /// version without it: items written since carry it already).
    Index(LeasesIndexArgs),
}

#[derive(Debug, Args)]
struct LeasesIndexArgs {
    /// How many days of requests to look at (the longest a lease may have lived, extensions
    /// included).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// The break-glass table (default: $TABLE_NAME).
    #[arg(long, env = "TABLE_NAME")]
    table: String,
}

#[derive(Debug, Args)]
struct LeasesCheckArgs {
    /// The policy file about to be deployed.
    #[arg(long)]
    policy: PathBuf,
    /// The break-glass table (default: $TABLE_NAME).
    #[arg(long, env = "TABLE_NAME")]
    table: String,
}

/// Runs the CLI on `args` (the program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print and succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Policy(PolicyCommand::Check { file }) => policy::check(&file),
        Command::Policy(PolicyCommand::Scope { file, .. }) => policy::scope(&file),
        Command::Report(ReportCommand::Render(args)) => report::render(&args),
        Command::Leases(LeasesCommand::Check(a)) => leases::check(&a.policy, &a.table),
        Command::Leases(LeasesCommand::Index(a)) => leases::index(a.days, &a.table),
        Command::Audit(AuditCommand::Export(a)) => audit::export(&a),
        Command::Slack(SlackCommand::PostButton(a)) => slack::post_button(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("break-glass: {e}");
            ExitCode::from(2)
        }
    }
}

/// The short usage, for a binary started with no arguments outside Lambda.
pub fn usage() -> String {
    use clap::CommandFactory;
    Cli::command().render_usage().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
