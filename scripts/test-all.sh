#!/usr/bin/env bash
# Runs every check and test of kube-autofix on a fresh machine: formatting, lints, and the whole
# test suite, including the conformance run over the shared scenario set when it is present.
# Usage: scripts/test-all.sh   (from anywhere; CI runs it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

# The outside conformance set sits beside the checkout (../shared/scenarios) unless told otherwise.
if [[ -z "${AUTOFIX_SCENARIOS:-}" && -d ../shared/scenarios ]]; then
  export AUTOFIX_SCENARIOS="$(cd ../shared/scenarios && pwd)"
fi
echo "==> scenarios: examples/scenarios ${AUTOFIX_SCENARIOS:+and $AUTOFIX_SCENARIOS}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked
