#!/usr/bin/env bash
# Benchmark: `autofix validate` against checkov over the same corpus of Kubernetes manifests.
#
# Builds the release binary, gathers every `gitops/` folder of examples/scenarios and of
# $AUTOFIX_SCENARIOS (default ../shared/scenarios) plus deploy/kustomize into a temporary folder,
# replicated (each copy in its own folder) until it holds at least $BENCH_MIN_FILES manifest
# files, installs checkov (pinned) into a cached venv, then runs each tool $BENCH_RUNS times
# under /usr/bin/time -v and prints the best wall time and the smallest peak RSS of each, and
# the ratios checkov/autofix. Output of the tools is discarded; both exit non-zero when they
# find violations, which is expected here.
#
#   scripts/bench-validate.sh
#
# Environment: AUTOFIX_SCENARIOS, BENCH_MIN_FILES (300), BENCH_RUNS (3), CHECKOV_VERSION,
# XDG_CACHE_HOME, CARGO_INCREMENTAL (0).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
scenarios=${AUTOFIX_SCENARIOS:-$root/../shared/scenarios}
min_files=${BENCH_MIN_FILES:-300}
runs=${BENCH_RUNS:-3}
checkov_version=${CHECKOV_VERSION:-3.3.30}
venv=${XDG_CACHE_HOME:-$HOME/.cache}/kube-autofix/venv-checkov

if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time" >&2
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

echo "building the release binary (cargo build --release -p autofix)" >&2
CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0} cargo build --release -p autofix --quiet
autofix=$root/target/release/autofix

if [ ! -x "$venv/bin/checkov" ] || ! "$venv/bin/pip" show checkov 2>/dev/null | grep -qx "Version: $checkov_version"; then
    echo "installing checkov $checkov_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet "checkov==$checkov_version"
fi
checkov=$venv/bin/checkov

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base=$work/base
mkdir -p "$base"
n=0
for dir in "$root"/examples/scenarios/*/gitops "$scenarios"/*/gitops "$root/deploy/kustomize"; do
    [ -d "$dir" ] || continue
    n=$((n + 1))
    mkdir -p "$base/$n"
    cp -R "$dir/." "$base/$n/"
done
corpus=$work/corpus
mkdir -p "$corpus"
count_files() { find "$1" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | wc -l; }
copy=0
while [ "$(count_files "$corpus")" -lt "$min_files" ]; do
    copy=$((copy + 1))
    cp -R "$base" "$corpus/copy-$copy"
done
files=$(count_files "$corpus")
echo "corpus: $files manifest files ($n source folders x $copy copies) in $corpus" >&2

# measure NAME CMD...: runs CMD $runs times; prints "best_wall_s min_rss_kb".
measure() {
    local name=$1
    shift
    local best_wall="" best_rss=""
    for i in $(seq "$runs"); do
        # Wall time from bash's microsecond clock (GNU time prints hundredths only), around
        # the whole `time` process: its own start is counted against the tool, a fraction of
        # a millisecond.
        local began=$EPOCHREALTIME
        /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>"$work/$name.err" || true
        local ended=$EPOCHREALTIME
        local wall rss
        wall=$(awk -v a="$began" -v b="$ended" 'BEGIN { printf "%.4f", b - a }')
        rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
        echo "  $name run $i: ${wall} s, $((rss / 1024)) MB" >&2
        if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
            best_wall=$wall
        fi
        if [ -z "$best_rss" ] || [ "$rss" -lt "$best_rss" ]; then
            best_rss=$rss
        fi
    done
    echo "$best_wall $best_rss"
}

read -r a_wall a_rss < <(measure autofix "$autofix" validate --json "$corpus")
# Sanity: autofix really read the corpus (its summary counts the files).
"$autofix" validate --json "$corpus" 2>/dev/null | python3 -c \
    'import json,sys; s=json.load(sys.stdin)["summary"]; print("  autofix summary:", s, file=sys.stderr)' || true
read -r c_wall c_rss < <(measure checkov "$checkov" -d "$corpus" --framework kubernetes \
    --quiet --compact --skip-download -o json)
if [ ! -s "$work/time.txt" ] || grep -q "Traceback" "$work/checkov.err"; then
    echo "checkov failed:" >&2
    tail -20 "$work/checkov.err" >&2
    exit 1
fi

awk -v files="$files" -v runs="$runs" -v version="$checkov_version" \
    -v aw="$a_wall" -v ar="$a_rss" -v cw="$c_wall" -v cr="$c_rss" 'BEGIN {
    printf "\n| tool | files | wall s (best of %d) | peak RSS MB |\n|---|---:|---:|---:|\n", runs
    printf "| autofix validate | %d | %.4f | %.1f |\n", files, aw, ar / 1024
    printf "| checkov %s | %d | %.2f | %.1f |\n", version, files, cw, cr / 1024
    printf "| ratio checkov/autofix | | %.0fx | %.1fx |\n", cw / aw, cr / ar
}'
