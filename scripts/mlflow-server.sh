#!/usr/bin/env bash
# Starts or stops a local MLflow tracking server for the tracking tests and local experiments.
#
#   scripts/mlflow-server.sh start DIR   install MLflow (pinned) into .venv-mlflow/ if needed,
#                                        start `mlflow server` on a free loopback port with a
#                                        SQLite backend and artifact serving under DIR, wait for
#                                        /health, print MLFLOW_TRACKING_URI=... and write it and
#                                        the pid to DIR/env
#   scripts/mlflow-server.sh stop DIR    stop the server started for DIR
#
# Both commands are idempotent: `start` on a running server prints its URI again; `stop` on a
# stopped one does nothing. Progress goes to stderr, the URI line to stdout, so
#   eval "$(scripts/mlflow-server.sh start "$dir")" && export MLFLOW_TRACKING_URI
# works in scripts.
set -euo pipefail

# Pinned so test results do not move with upstream releases (3.6+ for the OTLP trace endpoint).
MLFLOW_VERSION="${MLFLOW_VERSION:-3.17.2}"
# How long to wait for /health after starting, in seconds (first start migrates the database).
HEALTH_TIMEOUT_S="${MLFLOW_HEALTH_TIMEOUT_S:-90}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MLFLOW_VENV:-$ROOT/.venv-mlflow}"

log() { echo "mlflow-server: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}

# Creates the virtualenv and installs the pinned MLflow, unless it is already there.
install_mlflow() {
    local installed=""
    if [[ -x "$VENV/bin/python" ]]; then
        installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null || true)"
    fi
    if [[ "$installed" == "$MLFLOW_VERSION" ]]; then
        log "MLflow $MLFLOW_VERSION already installed in $VENV"
        return
    fi
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating virtualenv $VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            # Debian without python3-venv: fall back to the virtualenv package.
            rm -rf "$VENV"
            log "python3 -m venv is unavailable; trying virtualenv"
            python3 -m virtualenv --version >/dev/null 2>&1 ||
                python3 -m pip install --user --quiet virtualenv ||
                die "cannot create a virtualenv: install python3-venv (apt-get install python3-venv)"
            python3 -m virtualenv --quiet "$VENV"
        fi
    fi
    log "installing mlflow==$MLFLOW_VERSION into $VENV (takes a few minutes the first time)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "mlflow==$MLFLOW_VERSION"
    log "installed MLflow $MLFLOW_VERSION"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True when the server at $1 answers /health.
healthy() {
    curl -fsS --max-time 2 "$1/health" >/dev/null 2>&1
}

# Reads DIR/env into URI and PID; false when there is none.
read_env() {
    local env="$1/env"
    [[ -f "$env" ]] || return 1
    URI="$(sed -n 's/^MLFLOW_TRACKING_URI=//p' "$env")"
    PID="$(sed -n 's/^MLFLOW_PID=//p' "$env")"
    [[ -n "$URI" && -n "$PID" ]]
}

start() {
    local dir="$1"
    mkdir -p "$dir/artifacts"
    dir="$(cd "$dir" && pwd)"
    if read_env "$dir" && kill -0 "$PID" 2>/dev/null && healthy "$URI"; then
        log "already running (pid $PID) at $URI"
        echo "MLFLOW_TRACKING_URI=$URI"
        return
    fi
    install_mlflow
    local port uri pid
    port="$(free_port)"
    uri="http://127.0.0.1:$port"
    log "starting mlflow server at $uri (data in $dir, log in $dir/server.log)"
    # setsid: the server (gunicorn/uvicorn workers) gets its own process group, so `stop` can
    # end the whole group and nothing else.
    setsid "$VENV/bin/mlflow" server \
        --host 127.0.0.1 --port "$port" \
        --backend-store-uri "sqlite:///$dir/mlflow.db" \
        --artifacts-destination "$dir/artifacts" \
        --workers 1 \
        >"$dir/server.log" 2>&1 </dev/null &
    pid=$!
    printf 'MLFLOW_TRACKING_URI=%s\nMLFLOW_PID=%s\n' "$uri" "$pid" >"$dir/env"
    local waited=0
    until healthy "$uri"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$dir/server.log" >&2 || true
            die "mlflow server exited during startup (see $dir/server.log)"
        fi
        if ((waited >= HEALTH_TIMEOUT_S)); then
            tail -n 30 "$dir/server.log" >&2 || true
            stop "$dir"
            die "mlflow server not healthy after ${HEALTH_TIMEOUT_S}s"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "healthy after ${waited}s (pid $pid)"
    echo "MLFLOW_TRACKING_URI=$uri"
}

stop() {
    local dir="$1"
    if ! read_env "$dir"; then
        log "no server recorded in $dir/env"
        return
    fi
    # The server leads its own process group (setsid above), with uvicorn and the job runners:
    # end the whole group, and only it.
    if kill -0 -- "-$PID" 2>/dev/null; then
        log "stopping mlflow server (process group $PID)"
        kill -TERM -- "-$PID" 2>/dev/null || true
        local waited=0
        while kill -0 -- "-$PID" 2>/dev/null && ((waited < 60)); do
            sleep 0.5
            waited=$((waited + 1))
        done
        if kill -0 -- "-$PID" 2>/dev/null; then
            log "still running; sending KILL"
            kill -KILL -- "-$PID" 2>/dev/null || true
        fi
    else
        log "server (pid $PID) is not running"
    fi
    rm -f "$dir/env"
}

[[ $# -eq 2 ]] || usage
case "$1" in
start) start "$2" ;;
stop) stop "$2" ;;
*) usage ;;
esac
