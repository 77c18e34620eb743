#!/usr/bin/env bash
# Lints every template `cdk synth` wrote to cdk.out/ with cfn-lint: the project's venv first
# (make installs it there), then whatever is on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -x ../.venv/bin/cfn-lint ]]; then
  cfn_lint=../.venv/bin/cfn-lint
elif command -v cfn-lint >/dev/null; then
  cfn_lint=cfn-lint
else
  echo "cfn-lint not found: run 'make test' (it installs it into .venv) or 'pip install cfn-lint'" >&2
  exit 1
fi

shopt -s nullglob
templates=(cdk.out/*.template.json)
if (( ${#templates[@]} == 0 )); then
  echo "no templates in cdk/cdk.out: run 'npm run synth' first" >&2
  exit 1
fi
"$cfn_lint" --version
"$cfn_lint" -- "${templates[@]}"
echo "cfn-lint: ${#templates[@]} templates clean"
