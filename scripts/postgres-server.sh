#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL server for the store tests and the two-replica test.
#
#   scripts/postgres-server.sh start DIR   install PostgreSQL (Debian package) if needed, create a
#                                          cluster in DIR, start it on a free loopback port with
#                                          trust authentication for local connections, print
#                                          AUTOFIX_TEST_POSTGRES=postgres://... and write it and
#                                          the pid to DIR/env
#   scripts/postgres-server.sh stop DIR    stop the server started for DIR
#
# Both commands are idempotent. Progress goes to stderr, the URL line to stdout, so
#   eval "$(scripts/postgres-server.sh start "$dir")" && export AUTOFIX_TEST_POSTGRES
# works in scripts. The tests create one database per test in this server.
set -euo pipefail

log() { echo "postgres-server: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}

# The directory of the Debian package's server binaries (initdb, pg_ctl, postgres).
pg_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

install_postgres() {
    pg_bin >/dev/null && return
    [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null ||
        die "PostgreSQL is missing and cannot be installed here (apt-get install postgresql)"
    log "installing postgresql (Debian package)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_bin >/dev/null || die "postgresql installed but initdb not found"
}

# PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

read_env() {
    local env="$1/env"
    [[ -f "$env" ]] || return 1
    URL="$(sed -n 's/^AUTOFIX_TEST_POSTGRES=//p' "$env")"
    PORT="$(sed -n 's/^POSTGRES_PORT=//p' "$env")"
    [[ -n "$URL" && -n "$PORT" ]]
}

start() {
    local dir="$1"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    install_postgres
    local bin
    bin="$(pg_bin)"
    if read_env "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        log "already running at $URL"
        echo "AUTOFIX_TEST_POSTGRES=$URL"
        return
    fi
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres "$dir"
        # The path must be traversable by the postgres user.
        chmod o+x "$(dirname "$dir")" 2>/dev/null || true
    fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        log "initdb in $dir/data"
        as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    local port
    port="$(free_port)"
    log "starting postgres on 127.0.0.1:$port (log in $dir/server.log)"
    # fsync off: a throwaway test server; the durability under test is the application's.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" >/dev/null ||
        { tail -n 30 "$dir/server.log" >&2; die "postgres did not start"; }
    local url="postgres://postgres@127.0.0.1:$port/postgres"
    printf 'AUTOFIX_TEST_POSTGRES=%s\nPOSTGRES_PORT=%s\n' "$url" "$port" >"$dir/env"
    log "ready at $url"
    echo "AUTOFIX_TEST_POSTGRES=$url"
}

stop() {
    local dir="$1"
    local bin
    bin="$(pg_bin)" || return 0
    if [[ -f "$dir/data/PG_VERSION" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
        log "stopped"
    fi
    rm -f "$dir/env"
}

[[ $# -eq 2 ]] || usage
case "$1" in
start) start "$2" ;;
stop) stop "$2" ;;
*) usage ;;
esac
