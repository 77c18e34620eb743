#!/usr/bin/env bash
# Scans every template `cdk synth` wrote to cdk.out/ with checkov and fails on any failed check:
# the project's checkov venv first (make installs it there; a venv of its own, because its
# boto3 pin conflicts with moto's), then whatever is on PATH. A check the stack does not meet on
# purpose is skipped in the resource's own template metadata, with its reason (skipCheckov in
# lib/break-glass-stack.ts), so the skips are reviewed with the code and listed in the output.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -x ../.venv-checkov/bin/checkov ]]; then
  checkov=../.venv-checkov/bin/checkov
elif command -v checkov >/dev/null; then
  checkov=checkov
else
  echo "checkov not found: run 'make test' (it installs it into .venv-checkov from cdk/requirements-checkov.txt) or 'pip install -r cdk/requirements-checkov.txt'" >&2
  exit 1
fi

shopt -s nullglob
templates=(cdk.out/*.template.json)
if (( ${#templates[@]} == 0 )); then
  echo "no templates in cdk/cdk.out: run 'npm run synth' first" >&2
  exit 1
fi
echo "checkov $("$checkov" --version)"
# --skip-download: no policies or metadata fetched from Prisma Cloud; the result depends only on
# the pinned version. checkov exits non-zero when a check fails, and set -e passes that on.
"$checkov" -d cdk.out --framework cloudformation --skip-download --compact --quiet
echo "checkov: ${#templates[@]} templates, no failed check"
