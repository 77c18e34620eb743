//! The policy contract: the binary is the one reader of policy files. Every file of the shared
//! corpus (`config/testdata/policy/`) is read here and by the CDK app's tests: the valid ones
//! pass `policy check`, and `policy scope --json` prints exactly the scope committed next to
//! them (what the deploy derives IAM from); every invalid one is refused with one line. Run with
//! `BG_UPDATE_SCOPES=1` to rewrite the committed scopes after an intended change.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_break-glass");

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/testdata/policy")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "the {kind} corpus in {}", dir.display());
    files
}

fn run(args: &[&str], file: &Path) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).arg(file).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn valid_policies_pass_and_print_their_committed_scope() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.example.toml");
    let (code, _, err) = run(&["policy", "check"], &example);
    assert_eq!(code, 0, "the example policy: {err}");
    for file in corpus("valid") {
        let (code, _, err) = run(&["policy", "check"], &file);
        assert_eq!(code, 0, "{}: {err}", file.display());
        let (code, scope, err) = run(&["policy", "scope", "--json"], &file);
        assert_eq!(code, 0, "{}: {err}", file.display());
        let committed = file.with_extension("scope.json");
        if std::env::var_os("BG_UPDATE_SCOPES").is_some() {
            std::fs::write(&committed, &scope).unwrap();
        }
        let want = std::fs::read_to_string(&committed)
            .unwrap_or_else(|_| panic!("{} is missing", committed.display()));
        let (got, want): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(&scope).unwrap(),
            serde_json::from_str(&want).unwrap(),
        );
        assert_eq!(got, want, "{}", file.display());
    }
}

#[test]
fn invalid_policies_are_refused_with_one_line() {
    for file in corpus("invalid") {
        for args in [&["policy", "check"][..], &["policy", "scope", "--json"]] {
            let (code, out, err) = run(args, &file);
            assert_eq!(code, 2, "{} {args:?} was accepted: {out}", file.display());
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(
                err.contains(file.file_name().unwrap().to_str().unwrap()),
                "{err}"
            );
        }
    }
}
