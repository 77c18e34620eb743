//! `break-glass report render`: a CloudTrail file as a break-glass report, written to temporary
//! files and renamed into place only when both are complete.

use std::path::{Path, PathBuf};

use clap::Args;
use time::OffsetDateTime;

use crate::report::analysis::Coverage;
use crate::report::render::{Header, View};
use crate::report::{Event, Session};
use crate::time_util::from_rfc3339;

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The CloudTrail file.
    #[arg(long)]
    events: PathBuf,
    /// Where to write the HTML report.
    #[arg(long)]
    html: PathBuf,
    /// Where to write the plain-text report.
    #[arg(long)]
    text: PathBuf,
    /// Where to write the report as JSON (flags, left behind, after the end, coverage).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep only this Identity Center user's session (with --account and --permission-set).
    #[arg(long, requires_all = ["account", "permission_set"])]
    user: Option<String>,
    /// The session's account (12 digits).
    #[arg(long, value_parser = account, requires_all = ["user", "permission_set"])]
    account: Option<String>,
    /// The session's permission set name.
    #[arg(long, requires_all = ["user", "account"])]
    permission_set: Option<String>,
    /// Keep events from this time on (RFC 3339).
    #[arg(long, value_parser = time)]
    from: Option<OffsetDateTime>,
    /// Keep events up to this time (RFC 3339).
    #[arg(long, value_parser = time)]
    to: Option<OffsetDateTime>,
    /// When the access ended (RFC 3339): the session's events after it are reported as used
    /// after access ended.
    #[arg(long, value_parser = time)]
    ended: Option<OffsetDateTime>,
}

fn account(v: &str) -> Result<String, String> {
    crate::domain::AccountId::parse(v)
        .map(|a| a.to_string())
        .map_err(|e| e.to_string())
}

fn time(v: &str) -> Result<OffsetDateTime, String> {
    from_rfc3339(v).ok_or_else(|| format!("not an RFC 3339 time: {v:?}"))
}

pub fn render(a: &RenderArgs) -> Result<(), String> {
    let (events_path, html_path, text_path) = (&a.events, &a.html, &a.text);
    let session = match (&a.user, &a.account, &a.permission_set) {
        (Some(u), Some(acct), Some(ps)) => Some(Session {
            account_id: acct.clone(),
            more_accounts: Vec::new(),
            permission_set_name: ps.clone(),
            user_name: u.clone(),
        }),
        _ => None,
    };
    let mut events = read_events(events_path, |e| {
        session.as_ref().is_none_or(|s| s.owns(e))
            && a.from.is_none_or(|f| e.time >= f)
            && a.to.is_none_or(|t| e.time <= t)
    })?;
    events.sort_by_key(|x| x.time);
    let after_end = match a.ended {
        Some(end) => {
            let cut = events.partition_point(|e| e.time <= end);
            events.split_off(cut)
        }
        None => Vec::new(),
    };
    let first = events.first().map(|e| e.time);
    let last = events.last().map(|e| e.time);
    let mut regions: Vec<String> = events
        .iter()
        .chain(&after_end)
        .filter(|e| !e.region.is_empty())
        .map(|e| e.region.clone())
        .collect();
    regions.sort();
    regions.dedup();
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
        more_accounts: Vec::new(),
        permission_set: a.permission_set.clone().unwrap_or_else(|| "(any)".into()),
        from: a.from.or(first).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        to: a
            .ended
            .or(a.to)
            .or(last)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        request_id: None,
        reason: None,
        slack_link: None,
        incident: None,
        ended_at: None,
    };
    // A file is not a mail: show the whole timeline.
    let view = View::new(
        &header,
        &events,
        &[],
        &after_end,
        Coverage::new(regions, None, &[]),
        events.len().max(1),
    );
    // Rendered straight into temporary files (at once, one per core), renamed into place only
    // when all are complete: broken input leaves no partial output, and memory does not hold
    // the rendered pages.
    type Render<'v> = Box<dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()> + Sync + 'v>;
    let mut jobs: Vec<(&Path, Render<'_>)> = vec![
        (html_path, Box::new(|w| view.write_html(w))),
        (text_path, Box::new(|w| view.write_text(w))),
    ];
    if let Some(path) = &a.json {
        jobs.push((
            path,
            Box::new(|w| {
                serde_json::to_writer_pretty(&mut *w, &view.twin()).map_err(std::io::Error::other)
            }),
        ));
    }
    let written: Vec<Result<PathBuf, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(path, render)| s.spawn(move || render_to_temp(path, render)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    if let Some(Err(e)) = written.iter().find(|r| r.is_err()) {
        for tmp in written.iter().flatten() {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e.clone());
    }
    for ((path, _), tmp) in jobs.iter().zip(written.into_iter().flatten()) {
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!(
        "{} events ({} flagged: {}) rendered to {} and {}{}",
        events.len(),
        view.flagged,
        view.severity_line(),
        html_path.display(),
        text_path.display(),
        a.json
            .as_ref()
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_default()
    );
    // The process ends here: freeing thousands of events one by one would only delay it.
    drop(jobs);
    std::mem::forget(view);
    std::mem::forget(events);
    std::mem::forget(after_end);
    Ok(())
}

/// Reads `{"Records": [...]}` (CloudTrail's S3 files, also gzip) or `{"Events": [...]}`
/// (LookupEvents), streaming, keeping only what `keep` accepts.
fn read_events(path: &Path, keep: impl Fn(&Event) -> bool + Sync) -> Result<Vec<Event>, String> {
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
            0,
            keep,
        )
    } else {
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        crate::report::read_file(file, size, keep)
    };
    result.map_err(|e| format!("{}: not a CloudTrail file: {e}", path.display()))
}

fn render_to_temp(
    path: &Path,
    render: impl Fn(&mut dyn std::io::Write) -> std::io::Result<()>,
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
