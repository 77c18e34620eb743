//! `make synth` and `make deploy` check the policy file the CDK app would ship before anything
//! else, and refuse a broken one with the checker's message. (The binary under test stands in
//! for the Makefile's own build, so no nested cargo runs.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_break-glass");

fn make(target: &str, cdk_args: &str) -> (bool, String) {
    let out = Command::new("make")
        .args(["--no-print-directory", "-s", target])
        .arg(format!("BIN={BIN}"))
        .arg(format!("CDK_ARGS={cdk_args}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TABLE_NAME")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn synth_and_deploy_refuse_a_broken_policy_with_the_checkers_message() {
    let dir = std::env::temp_dir().join(format!("bg-make-guards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.toml");
    std::fs::write(
        &broken,
        "version = 1\n[[rule]]\nname = \"x\"\neffect = \"allow\"\nslack_users = [\"U0ALICE0001\"]\naccounts = [\"12345\"]\npermission_sets = [\"*\"]\ndefault_duration = \"1h\"\nmax_duration = \"1h\"\n",
    )
    .unwrap();
    let args = format!("-c ssoInstanceArn=x -c policyFile={}", broken.display());
    for target in ["synth", "deploy"] {
        let (ok, out) = make(target, &args);
        assert!(!ok, "make {target} went ahead with a broken policy: {out}");
        assert!(
            out.contains("break-glass: ") && out.contains("broken.toml") && out.contains("12345"),
            "make {target} says what is wrong: {out}"
        );
        assert!(
            !out.contains("cdk synth") && !out.contains("cargo lambda"),
            "nothing else ran: {out}"
        );
    }
    // The example policy passes, as the file the app ships by default when there is no
    // config/policy.toml.
    let (ok, out) = make(
        "policy-check",
        "-c policyFile=../config/policy.example.toml",
    );
    assert!(ok, "{out}");
    assert!(out.contains("policy.example.toml: ok"), "{out}");
}
