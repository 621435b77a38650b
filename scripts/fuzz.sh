#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (libFuzzer, nightly toolchain) for a bounded time each and
# prints one line per target: executions, coverage and crashes.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  libFuzzer's -max_total_time for each target (default 60); 0 runs every
#                       input of the corpus once and stops (a check before committing a fix)
#   TARGET              alertmanager_payload, github_webhook, quantity, yaml_edit, yaml_parse
#                       (default: all)
#
# Installs cargo-fuzz into ~/.cargo/bin when it is missing. Builds without a sanitizer
# (`-s none`): the workspace forbids `unsafe`, so AddressSanitizer would mostly slow the runs
# down; panics, overflow checks (debug assertions are on), timeouts and memory blow-ups are
# caught all the same. github_webhook needs the whole server crate and is by far the longest
# build: leave it out to build only the small targets.
#
# Each target starts from its committed seeds (fuzz/corpus/<target>, kept small) plus the
# corpus grown by earlier runs (fuzz/target/corpus/<target>, not committed), and writes new
# inputs only to the latter. Crashing inputs are kept in fuzz/artifacts/<target>/; minimize one
# with `cargo +nightly fuzz tmin -s none <target> <file>`. Exits 1 when any target crashed.
# Builds and runs are niced: the machine is shared. See docs/fuzzing.md.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
seconds="${1:-60}"
shift || true
all=(alertmanager_payload github_webhook quantity yaml_edit yaml_parse)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# Per-target input size limit (bytes): a few times the largest realistic input, so that
# libFuzzer spends its time on shapes rather than on length.
max_len() {
    case "$1" in
        quantity) echo 64 ;;
        yaml_edit | yaml_parse) echo 16384 ;;
        *) echo 65536 ;;
    esac
}

for t in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $t "* ]] || { echo "unknown target: $t (one of: ${all[*]})" >&2; exit 2; }
done

export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz..." >&2
    nice -n 10 cargo install cargo-fuzz --locked
fi
rustup toolchain list | grep -q '^nightly' || { echo "needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 2; }

features=(--no-default-features)
[[ " ${targets[*]} " == *" github_webhook "* ]] && features=()
echo "building ${targets[*]}..." >&2
for t in "${targets[@]}"; do
    (cd "$fuzz" && nice -n 10 cargo +nightly fuzz build -s none "${features[@]}" "$t")
done

bin_dir="$fuzz/target/x86_64-unknown-linux-gnu/release"
crashed=0
rows=()
for t in "${targets[@]}"; do
    work="$fuzz/target/corpus/$t"
    artifacts="$fuzz/artifacts/$t"
    log="$fuzz/target/fuzz-$t.log"
    mkdir -p "$work" "$artifacts" "$fuzz/corpus/$t"
    before=$(find "$artifacts" -type f | wc -l)
    if [ "$seconds" -eq 0 ]; then
        echo "replaying the corpus of $t (log: $log)..." >&2
        limit=(-runs=0)
    else
        echo "fuzzing $t for ${seconds}s (log: $log)..." >&2
        limit=(-max_total_time="$seconds")
    fi
    status=0
    # -rss_limit_mb: an input that makes a target use more memory (a YAML alias bomb getting
    # past the safe reader, say) is reported as a crash (oom-*).
    nice -n 10 "$bin_dir/$t" "$work" "$fuzz/corpus/$t" \
        "${limit[@]}" -max_len="$(max_len "$t")" -rss_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    found=$(( $(find "$artifacts" -type f | wc -l) - before ))
    if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then
        found="?"  # libFuzzer failed without leaving an input: see the log
    fi
    [ "$found" = 0 ] || crashed=1
    # A crash while the corpus is still being read leaves no progress lines: `?` then.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$({ grep -E '^#[0-9]+.* cov: ' "$log" || true; } | tail -n 1 | sed -E 's/.* cov: ([0-9]+).*/\1/')
    ft=$({ grep -E '^#[0-9]+.* ft: ' "$log" || true; } | tail -n 1 | sed -E 's/.* ft: ([0-9]+).*/\1/')
    rows+=("$(printf '%-22s %8s %12s %8s %8s %8s' "$t" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$found")")
done

printf '\n%-22s %8s %12s %8s %8s %8s\n' target seconds runs cov ft crashes
printf '%s\n' "${rows[@]}"
if [ "$crashed" -ne 0 ]; then
    echo "crashing inputs are in fuzz/artifacts/; see the logs in fuzz/target/" >&2
    exit 1
fi
