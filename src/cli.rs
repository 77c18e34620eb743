//! The operator's subcommands. Exit 0 on success; on bad input, non-zero with one line on
//! stderr saying what is wrong, and no partial output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use time::OffsetDateTime;

use crate::policy::{Effect, Policy};
use crate::report::render::{Header, View};
use crate::report::{Event, Session};
use crate::time_util::from_rfc3339;

pub const USAGE: &str = "\
usage:
  break-glass policy check FILE
  break-glass report render --events FILE --html OUT --text OUT
                            [--user NAME --account ID --permission-set NAME --from RFC3339 --to RFC3339]

Without arguments, break-glass runs as an AWS Lambda function (AWS_LAMBDA_RUNTIME_API must be set).";

pub fn run(args: &[String]) -> ExitCode {
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["policy", "check", file] => policy_check(Path::new(file)),
        ["report", "render", rest @ ..] => report_render(rest),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("break-glass: {e}");
            ExitCode::from(2)
        }
    }
}

fn policy_check(path: &Path) -> Result<(), String> {
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

#[derive(Default)]
struct RenderArgs {
    events: Option<PathBuf>,
    html: Option<PathBuf>,
    text: Option<PathBuf>,
    user: Option<String>,
    account: Option<String>,
    permission_set: Option<String>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
}

fn parse_render_args(args: &[&str]) -> Result<RenderArgs, String> {
    let mut a = RenderArgs::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let time =
            |v: &str| from_rfc3339(v).ok_or_else(|| format!("{flag}: not an RFC 3339 time: {v:?}"));
        match *flag {
            "--events" => a.events = Some(value.into()),
            "--html" => a.html = Some(value.into()),
            "--text" => a.text = Some(value.into()),
            "--user" => a.user = Some((*value).to_owned()),
            "--account" => {
                crate::domain::AccountId::parse(value).map_err(|e| format!("--account: {e}"))?;
                a.account = Some((*value).to_owned());
            }
            "--permission-set" => a.permission_set = Some((*value).to_owned()),
            "--from" => a.from = Some(time(value)?),
            "--to" => a.to = Some(time(value)?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

fn report_render(args: &[&str]) -> Result<(), String> {
    let a = parse_render_args(args)?;
    let (Some(events_path), Some(html_path), Some(text_path)) = (&a.events, &a.html, &a.text)
    else {
        return Err("report render needs --events, --html and --text".into());
    };
    let session = match (&a.user, &a.account, &a.permission_set) {
        (Some(u), Some(acct), Some(ps)) => Some(Session {
            account_id: acct.clone(),
            permission_set_name: ps.clone(),
            user_name: u.clone(),
        }),
        (None, None, None) => None,
        _ => return Err("--user, --account and --permission-set go together".into()),
    };
    let mut events = read_events(events_path, |e| {
        session.as_ref().is_none_or(|s| s.owns(e))
            && a.from.is_none_or(|f| e.time >= f)
            && a.to.is_none_or(|t| e.time <= t)
    })?;
    events.sort_by_key(|x| x.time);
    let first = events.first().map(|e| e.time);
    let last = events.last().map(|e| e.time);
    let header = Header {
        user: a
            .user
            .clone()
            .unwrap_or_else(|| "(all users in the file)".into()),
        account_id: a
            .account
            .clone()
            .unwrap_or_else(|| "(all accounts in the file)".into()),
        account_name: None,
        permission_set: a.permission_set.clone().unwrap_or_else(|| "(any)".into()),
        from: a.from.or(first).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        to: a.to.or(last).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        request_id: None,
        reason: None,
        slack_link: None,
    };
    // A file is not a mail: show the whole timeline.
    let view = View::new(&header, &events, &[], &[], events.len().max(1));
    // Rendered straight into temporary files, renamed into place only when both are complete:
    // broken input leaves no partial output, and memory does not hold the rendered pages.
    let html_tmp = render_to_temp(html_path, |w| view.write_html(w))?;
    let text_tmp = render_to_temp(text_path, |w| view.write_text(w)).inspect_err(|_| {
        let _ = std::fs::remove_file(&html_tmp);
    })?;
    std::fs::rename(&html_tmp, html_path).map_err(|e| format!("{}: {e}", html_path.display()))?;
    std::fs::rename(&text_tmp, text_path).map_err(|e| format!("{}: {e}", text_path.display()))?;
    println!(
        "{} events rendered to {} and {}",
        events.len(),
        html_path.display(),
        text_path.display()
    );
    Ok(())
}

/// Reads `{"Records": [...]}` (CloudTrail's S3 files, also gzip) or `{"Events": [...]}`
/// (LookupEvents), streaming, keeping only what `keep` accepts.
fn read_events(path: &Path, keep: impl FnMut(&Event) -> bool) -> Result<Vec<Event>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut head = [0u8; 2];
    let gzip = std::io::Read::read(&mut &file, &mut head)
        .map_err(|e| format!("{}: {e}", path.display()))?
        == 2
        && head == [0x1f, 0x8b];
    std::io::Seek::rewind(&mut &file).map_err(|e| format!("{}: {e}", path.display()))?;
    let result = if gzip {
        crate::report::read_file(
            flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)),
            keep,
        )
    } else {
        crate::report::read_file(file, keep)
    };
    result.map_err(|e| format!("{}: not a CloudTrail file: {e}", path.display()))
}

fn render_to_temp(
    path: &Path,
    render: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<PathBuf, String> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp-break-glass");
    let tmp = path.with_file_name(name);
    let result = std::fs::File::create(&tmp).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        render(&mut w)?;
        std::io::Write::flush(&mut w)
    });
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })?;
    Ok(tmp)
}
