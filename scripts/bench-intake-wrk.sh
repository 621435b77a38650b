#!/usr/bin/env bash
# Benchmark: webhook intake of `autofix serve` under wrk, a load generator in its own process.
#
# `autofix bench intake` makes its load from inside the bench process (reqwest), on the same two
# cores as the server: every request's round trip then includes the generator's own work. This
# script measures the same server the same way (SQLite with synchronous = FULL in a temporary
# data directory, one worker over the example snapshot, the same alert bodies) with wrk, which
# costs far less per request.
#
#   scripts/bench-intake-wrk.sh [BATCH] [CONNECTIONS] [DURATION]
#
#   BATCH        alerts per delivery (default 1)
#   CONNECTIONS  requests in flight, one keep-alive connection each (default 64)
#   DURATION     wrk's duration (default 10s)
#
# Builds the release binary, installs wrk (Debian package) when missing, starts `autofix serve`
# on a free loopback port (chosen by python3), runs `wrk --latency -s scripts/wrk/alertmanager.lua`, then prints
# wrk's summary and what the server counted: alerts received and duplicated, group commits, its
# CPU time over the load, and its RSS idle and at peak.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
batch=${1:-1}
connections=${2:-64}
duration=${3:-10s}
token=bench-wrk-5d1c0e8a2f6b4c39a7e8d2b1f0c4a6e3

if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
echo "building the release binary (cargo build --release -p autofix)" >&2
CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0} cargo build --release -p autofix --quiet

work=$(mktemp -d)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
scenario=$root/examples/scenarios/oom-statefulset-search-cache
cp -R "$scenario/gitops" "$work/gitops"
git -C "$work/gitops" init -q -b main
git -C "$work/gitops" add -A
git -C "$work/gitops" -c user.name=bench -c user.email=bench@localhost commit -q -m import
echo "$token" >"$work/token"
printf '[server]\nworkers = 1\n\n[server.auth]\nbearer_token_file = "%s"\n' "$work/token" >"$work/autofix.toml"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$root/target/release/autofix" serve --snapshot "$scenario" --gitops "$work/gitops" \
    --config "$work/autofix.toml" --listen "127.0.0.1:$port" --data-dir "$work/data" \
    >"$work/serve.log" 2>&1 &
server=$!
base=""
for _ in $(seq 300); do
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then
        base=http://127.0.0.1:$port
        break
    fi
    sleep 0.1
done
[ -n "$base" ] || { echo "autofix serve did not become ready:" >&2; cat "$work/serve.log" >&2; exit 1; }

# metric NAME: the server's metric NAME (a counter without labels, or the sum over its labels).
metric() { curl -sf "$base/metrics" | awk -v name="$1" '$1 == name || index($1, name "{") == 1 { s += $2 } END { print s + 0 }'; }
# cpu_ticks: the server's user + system time so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
rss_mib() { awk -v f="$1" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }

idle=$(rss_mib VmRSS:)
received_before=$(metric autofix_alerts_received_total)
commits_before=$(metric autofix_store_group_commits_total)
ticks_before=$(cpu_ticks)
began=$EPOCHREALTIME
TOKEN=$token BATCH=$batch wrk -t2 -c"$connections" -d"$duration" --latency \
    -s "$root/scripts/wrk/alertmanager.lua" "$base/webhooks/alertmanager" | tee "$work/wrk.txt"
ended=$EPOCHREALTIME
ticks=$(($(cpu_ticks) - ticks_before))
received=$(($(metric autofix_alerts_received_total) - received_before))
commits=$(($(metric autofix_store_group_commits_total) - commits_before))
duplicates=$(metric autofix_alerts_duplicate_total)
kill -0 "$server" || { echo "autofix serve exited during the load:" >&2; cat "$work/serve.log" >&2; exit 1; }

hz=$(getconf CLK_TCK)
awk -v r="$received" -v c="$commits" -v d="$duplicates" -v t="$ticks" -v hz="$hz" \
    -v a="$began" -v b="$ended" -v idle="$idle" -v peak="$(rss_mib VmHWM:)" \
    -v batch="$batch" -v conns="$connections" 'BEGIN {
    secs = b - a
    printf "\nserver (autofix serve, release; wrk in its own process: %d connections, %d alert(s)/delivery)\n", conns, batch
    printf "  alerts received         %d (%d re-delivered)\n", r, d
    printf "  alerts/s                %.0f (goal >= 20,000: %s)\n", r / secs, (r / secs >= 20000 ? "met" : "NOT met")
    printf "  group commits           %d (%.1f deliveries per commit)\n", c, (c > 0 ? r / batch / c : 0)
    printf "  server CPU (cores)      %.2f\n", t / hz / secs
    printf "  server RSS idle / peak  %s / %s MiB\n", idle, peak
}'
if grep -q "Non-2xx" "$work/wrk.txt"; then
    echo "some requests were refused (see wrk's Non-2xx line above); the server log:" >&2
    tail -20 "$work/serve.log" >&2
    exit 1
fi
