#!/usr/bin/env bash
# The one test command: installs what the tests need (a git-ignored Python venv with pinned moto,
# osmem-server, cfn-lint and aws-sam-cli), builds the binaries the end-to-end tests run, runs every
# workspace test, then validates the SAM template. Safe to re-run; a fresh machine needs only Rust
# and Python 3 with network access to crates.io and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${CONNECT_EVENTS_VENV:-$PWD/.venv-local}"
SAM_VENV="$VENV/sam"
PINS='moto[server]==5.2.5 osmem-server==0.1.6 cfn-lint==1.58.0'
SAM_PINS='aws-sam-cli==1.170.0'

ensure_venv() { # dir, pins
  local dir=$1 pins=$2
  if [ "$(cat "$dir/.pins" 2>/dev/null)" != "$pins" ]; then
    echo "==> installing $pins into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check $pins
    echo "$pins" > "$dir/.pins"
  fi
}
ensure_venv "$VENV" "$PINS"
ensure_venv "$SAM_VENV" "$SAM_PINS"
export CONNECT_EVENTS_VENV="$VENV"

echo "==> cargo build --workspace --bins (the end-to-end tests run these binaries)"
cargo build --workspace --bins --locked
echo "==> cargo test --workspace"
rm -f "${CARGO_TARGET_DIR:-target}"/fault-suite-*.txt
cargo test --workspace --locked
echo "==> faults injected by the fault suite (tests/tests/fault_suite.rs)"
cat "${CARGO_TARGET_DIR:-target}"/fault-suite-*.txt
echo "==> cfn-lint infra/template.yaml"
"$VENV/bin/cfn-lint" infra/template.yaml
echo "==> sam validate --lint"
SAM_CLI_TELEMETRY=0 "$SAM_VENV/bin/sam" validate --template infra/template.yaml --region us-east-1 --lint
echo "==> all tests passed"
