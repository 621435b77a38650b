#!/usr/bin/env bash
# Smoke test of the container image's runtime stage.
#
# Why this exists: the Dockerfile's build stage (rust:1.95-bookworm) needs a registry to pull
# from, and building it means a full release compile. This script checks the part of the image
# that a registry-less machine *can* check: the runtime stage, as the Helm chart runs it.
#
# What it does:
#   1. derives a Dockerfile from the repo's Dockerfile: its final stage, verbatim, except that
#      `COPY --from=build /out/autofix ...` copies an existing binary instead (so the runtime
#      stage tested here cannot drift from the real one), builds it with `--network host`
#      (the stage runs apt-get) and tags it kube-autofix:smoke;
#   2. runs it like the chart does: read-only root, tmpfs /tmp, uid/gid 65532, all capabilities
#      dropped, no-new-privileges, the data dir as a volume, the config file mounted read-only
#      at /etc/autofix/autofix.toml, the webhook token in AUTOFIX_WEBHOOK_TOKEN; evidence comes
#      from a scenario snapshot (--snapshot) and fixes go to a local git repo (--gitops);
#   3. waits for /readyz, checks that the webhook refuses a request without the token, posts the
#      scenario's alert.json, waits for the incident to be `done`, checks the fix branch and the
#      local PR record in the GitOps repo, checks uid, read-only root, writable HOME and data dir,
#      the CA bundle, HTTPS certificate checks with rustls and with libgit2/OpenSSL (optional),
#      that the image refuses to start without a config file, and the image's own
#      /var/lib/autofix volume permissions; prints the image size and a PASS/FAIL summary.
#
# What it does NOT cover: the build stage (rust:1.95-bookworm, `cargo build --release --locked`,
# vendored OpenSSL/libgit2), the `# syntax=` frontend and BuildKit cache mounts; the binary
# under test is whatever you give it (by default the debug build, which links the host's glibc:
# run this on a Debian 12 / glibc 2.36 host or give a binary built for bookworm). No Kubernetes:
# probes, fsGroup, NetworkPolicy and RBAC are not exercised.
#
# Needs: a Docker daemon, a local `debian:bookworm-slim` image (pulled, or imported from a
# debootstrap when no registry is reachable), network access to the Debian mirror for apt-get,
# curl, jq and git.
#
# Usage: scripts/docker-smoke.sh
#   AUTOFIX_BIN       binary to put in the image   (default: target/debug/autofix)
#   SMOKE_SCENARIO    scenario folder              (default: examples/scenarios/helm-values-oom-cart)
#   SMOKE_PORT        loopback port to listen on   (default: 18480)
#   SMOKE_IMAGE       tag of the image built       (default: kube-autofix:smoke)
#   SMOKE_TLS_URL     HTTPS URL for the certificate checks, empty to skip (default: https://deb.debian.org)
#   SMOKE_CA_BUNDLE   CA bundle mounted over the image's for those checks only: behind a
#                     TLS-intercepting proxy, e.g. /etc/ssl/certs/ca-certificates.crt of the host
#   SMOKE_TIMEOUT     seconds to wait for readiness and for the incident (default: 120)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${AUTOFIX_BIN:-$ROOT/target/debug/autofix}
SCENARIO=${SMOKE_SCENARIO:-$ROOT/examples/scenarios/helm-values-oom-cart}
PORT=${SMOKE_PORT:-18480}
IMAGE=${SMOKE_IMAGE:-kube-autofix:smoke}
TLS_URL=${SMOKE_TLS_URL-https://deb.debian.org}
CA_BUNDLE=${SMOKE_CA_BUNDLE:-}
TIMEOUT=${SMOKE_TIMEOUT:-120}
NAME=kube-autofix-smoke
URL=http://127.0.0.1:$PORT
UID_GID=65532:65532

RESULTS=()
FAILED=0
pass() { RESULTS+=("PASS  $1"); echo "PASS  $1"; }
fail() { RESULTS+=("FAIL  $1"); echo "FAIL  $1" >&2; FAILED=1; }
skip() { RESULTS+=("SKIP  $1"); echo "SKIP  $1"; }
note() { RESULTS+=("NOTE  $1"); echo "NOTE  $1"; }
die() { echo "error: $*" >&2; exit 2; }
check() { # check "description" command...
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

for tool in docker curl jq git; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
docker info >/dev/null 2>&1 || die "no Docker daemon (docker info failed)"
docker image inspect debian:bookworm-slim >/dev/null 2>&1 \
    || die "no local debian:bookworm-slim image (docker pull it, or import a debootstrap of bookworm)"
[[ -x $BIN ]] || die "no binary at $BIN (build it, or set AUTOFIX_BIN)"
[[ -f $SCENARIO/alert.json && -d $SCENARIO/gitops ]] \
    || die "$SCENARIO is not a scenario folder (alert.json, gitops/)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
SCENARIO=$(cd "$SCENARIO" && pwd)

WORK=$(mktemp -d /tmp/autofix-smoke.XXXXXX)
chmod 0755 "$WORK"

# Files the container wrote belong to 65532: hand them back (through a root container, so
# this also works without root) before deleting them.
cleanup() {
    local rc=$?
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    if [[ -d $WORK ]]; then
        docker run --rm --network none --user 0:0 -v "$WORK:/w" --entrypoint chown "$IMAGE" \
            -R "$(id -u):$(id -g)" /w >/dev/null 2>&1 || true
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT INT TERM
docker rm -f "$NAME" >/dev/null 2>&1 || true  # left over from an interrupted run

# --- 1. the runtime stage of the real Dockerfile, fed a prebuilt binary ----------------------
echo "== building $IMAGE from the final stage of Dockerfile with $BIN"
CONTEXT=$WORK/context
mkdir -p "$CONTEXT"
cp "$BIN" "$CONTEXT/autofix"
# Everything from the last FROM on; the one COPY from the build stage reads the context instead.
awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' "$ROOT/Dockerfile" \
    | sed 's#^COPY --from=build /out/autofix #COPY autofix #' >"$CONTEXT/Dockerfile"
[[ $(grep -c '^COPY autofix /usr/local/bin/autofix$' "$CONTEXT/Dockerfile") == 1 ]] \
    || die "the final stage of Dockerfile no longer has 'COPY --from=build /out/autofix /usr/local/bin/autofix'; update this script"
! grep -q -- '--from=' "$CONTEXT/Dockerfile" \
    || die "the final stage of Dockerfile copies something else from another stage; update this script"
t0=$SECONDS
docker build --network host -t "$IMAGE" "$CONTEXT"
BUILD_SECS=$((SECONDS - t0))
pass "runtime stage builds (${BUILD_SECS}s)"

# --- 2. a GitOps repo, a data dir and a config, owned as in the pod --------------------------
GITOPS=$WORK/gitops
DATA=$WORK/data
cp -r "$SCENARIO/gitops" "$GITOPS"
git -C "$GITOPS" init -q -b main
git -C "$GITOPS" add -A
git -C "$GITOPS" -c user.name=smoke -c user.email=smoke@localhost commit -q -m import
mkdir -p "$DATA"
printf '[llm]\nmode = "rules"\n' >"$WORK/autofix.toml"
chmod 0644 "$WORK/autofix.toml"
docker run --rm --network none --user 0:0 -v "$WORK:/w" --entrypoint chown "$IMAGE" \
    -R "$UID_GID" /w/gitops /w/data
TOKEN=smoke-$RANDOM$RANDOM$RANDOM
git_() { git -c safe.directory='*' -C "$GITOPS" "$@"; }  # the repo belongs to 65532 now

# --- 3. run it as the Helm chart does ---------------------------------------------------------
echo "== starting $NAME on $URL"
t0=$SECONDS
docker run -d --name "$NAME" --network host \
    --read-only --tmpfs /tmp --user "$UID_GID" --cap-drop ALL --security-opt no-new-privileges \
    -e AUTOFIX_WEBHOOK_TOKEN="$TOKEN" \
    -v "$WORK/autofix.toml:/etc/autofix/autofix.toml:ro" \
    -v "$DATA:/var/lib/autofix" \
    -v "$SCENARIO:/scenario:ro" \
    -v "$GITOPS:/gitops" \
    "$IMAGE" serve --snapshot /scenario --gitops /gitops --listen "127.0.0.1:$PORT" >/dev/null

running() { [[ $(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null) == true ]]; }
ready=""
for ((i = 0; i < TIMEOUT * 2; i++)); do
    running || break
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz") == 200 ]]; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ -z $ready ]]; then
    fail "/readyz answers 200"
    docker logs "$NAME" 2>&1 | tail -n 30 >&2
    exit 1
fi
READY_SECS=$((SECONDS - t0))
pass "serve starts, /readyz 200 (${READY_SECS}s)"

code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "@$SCENARIO/alert.json" "$URL/webhooks/alertmanager")
check "webhook without the token is refused (got $code)" test "$code" = 401

t0=$SECONDS
code=$(curl -s -o "$WORK/post.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "@$SCENARIO/alert.json" "$URL/webhooks/alertmanager")
check "webhook with the token accepted (got $code: $(cat "$WORK/post.json"))" test "$code" = 200

states=""
for ((i = 0; i < TIMEOUT; i++)); do
    curl -sf -H "Authorization: Bearer $TOKEN" "$URL/incidents" >"$WORK/incidents.json" || true
    states=$(jq -r '[.. | objects | select(has("state")) | .state] | join(",")' \
        "$WORK/incidents.json" 2>/dev/null || true)
    [[ $states == done || $states == *parked* ]] && break
    sleep 1
done
INCIDENT_SECS=$((SECONDS - t0))
if [[ $states == done ]]; then
    pass "incident done (${INCIDENT_SECS}s)"
else
    fail "incident done (states: '${states:-none}')"
    jq . "$WORK/incidents.json" >&2 || true
    docker logs "$NAME" 2>&1 | tail -n 30 >&2
fi

branches=$(git_ for-each-ref --format='%(refname:short)' 'refs/heads/autofix/')
if [[ -n $branches ]]; then
    pass "fix branch in the GitOps repo: $branches"
    branch=$(head -n 1 <<<"$branches")
    check "fix branch is one commit on main" test "$(git_ rev-list --count "main..$branch")" = 1
    git_ diff --stat "main" "$branch"
else
    fail "fix branch in the GitOps repo"
fi
check "local PR record written (.git/autofix/pulls/*/pr.json)" \
    test -n "$(compgen -G "$GITOPS/.git/autofix/pulls/*/pr.json" || true)"
check "work tree untouched (git status clean)" test -z "$(git_ status --porcelain)"
check "intake database in the data dir" test -n "$(ls -A "$DATA")"

# --- 4. the container itself ------------------------------------------------------------------
in_ctr() { docker exec "$NAME" "$@"; }
check "runs as uid 65532" test "$(in_ctr id -u)" = 65532
check "runs as gid 65532" test "$(in_ctr id -g)" = 65532
root_read_only() { ! in_ctr touch /probe 2>/dev/null; }
check "root filesystem is read-only" root_read_only
check "HOME ($(in_ctr sh -c 'echo $HOME')) is writable" in_ctr sh -c 'touch "$HOME/.probe"'
check "/var/lib/autofix is writable" in_ctr touch /var/lib/autofix/.probe
check "CA bundle present" in_ctr test -s /etc/ssl/certs/ca-certificates.crt
check "no capabilities" test "$(in_ctr sh -c "awk '/^CapEff/{print \$2}' /proc/self/status")" = 0000000000000000
check "CA bundle has the public roots ($(in_ctr grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt) certificates)" \
    test "$(in_ctr grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)" -ge 100

# HTTPS from the image, both TLS stacks: rustls (reqwest: MLflow, GitHub, the LLM) through an
# MLflow call, and libgit2's vendored OpenSSL through a clone. The URL is not an MLflow server
# nor a git repo: an HTTP error status proves the handshake and the certificate check passed.
tls_run() {
    local ca=()
    [[ -n $CA_BUNDLE ]] && ca=(-v "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
    docker run --rm --network host --read-only --tmpfs /tmp --user "$UID_GID" --cap-drop ALL \
        --security-opt no-new-privileges -e NO_COLOR=1 "${ca[@]}" \
        -v "$WORK/tls.toml:/etc/autofix/autofix.toml:ro" -v "$SCENARIO:/scenario:ro" \
        "$IMAGE" "$@" 2>&1 | tail -n 1 || true
}
tls_check() { # what, expected substring, command...
    local what=$1 want=$2 out
    shift 2
    out=$(tls_run "$@")
    if [[ $out == *"$want"* ]]; then
        pass "$what: $out"
    elif [[ $out == *ertificate* || $out == *UnknownIssuer* || $out == *SSL* || $out == *TLS* ]]; then
        fail "$what: $out${CA_BUNDLE:+ (with $CA_BUNDLE)}"
    else
        skip "$what: $TLS_URL not reachable? $out"
    fi
}
if [[ -n $TLS_URL ]]; then
    printf '[[gitops.repos]]\nurl = "%s/smoke.git"\nbase = "main"\n[llm]\nmode = "rules"\n' \
        "$TLS_URL" >"$WORK/tls.toml"
    chmod 0644 "$WORK/tls.toml"
    tls_check "HTTPS via rustls (reqwest)" "answered" calibrate --mlflow "$TLS_URL"
    tls_check "HTTPS via libgit2/OpenSSL" "unexpected http status code" \
        run --snapshot /scenario --data-dir /tmp/data
fi

# ENTRYPOINT/CMD and AUTOFIX_CONFIG as the image defines them: no arguments at all.
out=$(docker run --rm --network none --read-only --tmpfs /tmp --user "$UID_GID" \
    -e AUTOFIX_WEBHOOK_TOKEN="$TOKEN" -e NO_COLOR=1 \
    -v "$WORK/autofix.toml:/etc/autofix/autofix.toml:ro" "$IMAGE" 2>&1 | tail -n 1 || true)
check "default command is serve with /etc/autofix/autofix.toml ($out)" \
    test "${out#*no GitOps repository}" != "$out"
out=$(docker run --rm --network none --read-only --tmpfs /tmp --user "$UID_GID" \
    -e AUTOFIX_WEBHOOK_TOKEN="$TOKEN" -e NO_COLOR=1 "$IMAGE" 2>&1 | tail -n 1 || true)
note "without a mounted config file the image does not start: $out"

# The image's own volume (no bind mount): its owner and mode come from the Dockerfile.
check "image's /var/lib/autofix volume writable by 65532" \
    docker run --rm --network none --read-only --tmpfs /tmp --user "$UID_GID" --cap-drop ALL \
    --security-opt no-new-privileges --entrypoint sh "$IMAGE" -c 'touch /var/lib/autofix/probe'

SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE")
BASE_SIZE=$(docker image inspect -f '{{.Size}}' debian:bookworm-slim)
BIN_SIZE=$(stat -c %s "$BIN")
echo
echo "== $IMAGE: $((SIZE / 1000000)) MB (base debian:bookworm-slim $((BASE_SIZE / 1000000)) MB, autofix binary $((BIN_SIZE / 1000000)) MB)"
echo "== summary"
printf '%s\n' "${RESULTS[@]}"
if ((FAILED)); then
    echo "FAIL"
    exit 1
fi
echo "PASS"
