#!/usr/bin/env bash
# The one test command: installs what the tests need (a git-ignored Python venv with pinned moto,
# osmem-server, cfn-lint and aws-sam-cli; Debian's chromium and Node.js when missing; the pinned npm
# packages of the agent-workspace app and of its browser test), builds the binaries the end-to-end
# tests run, runs every workspace test and the browser test, then validates the SAM template. Safe to
# re-run; a fresh Debian machine needs Rust and Python 3 with network access to crates.io, PyPI,
# npm and Debian's packages (apt-get runs as root, or through sudo).
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

# The browser test drives Debian's chromium (never a downloaded browser) with playwright-core.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-liberation >/dev/null
fi
echo "==> agent-workspace app: npm ci, type check, build (handlers/web/dist)"
npm --prefix handlers/web ci --no-audit --no-fund --loglevel=error
npm --prefix handlers/web run --silent check
npm --prefix handlers/web run --silent build
npm --prefix tests/browser ci --no-audit --no-fund --loglevel=error

echo "==> cargo build --workspace --bins (the end-to-end tests run these binaries)"
cargo build --workspace --bins --locked
echo "==> cargo test --workspace"
rm -f "${CARGO_TARGET_DIR:-target}"/fault-suite-*.txt
cargo test --workspace --locked
echo "==> the agent-workspace app in headless Chromium (tests/browser)"
node --test tests/browser/agent_app.test.mjs
echo "==> faults injected by the fault suite (tests/tests/fault_suite.rs)"
cat "${CARGO_TARGET_DIR:-target}"/fault-suite-*.txt
echo "==> cfn-lint infra/template.yaml"
"$VENV/bin/cfn-lint" infra/template.yaml
echo "==> sam validate --lint"
SAM_CLI_TELEMETRY=0 "$SAM_VENV/bin/sam" validate --template infra/template.yaml --region us-east-1 --lint
echo "==> all tests passed"
