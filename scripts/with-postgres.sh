#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL server on loopback.
#
#   scripts/with-postgres.sh CMD [ARGS...]
#
# If ASKDESK_TEST_DATABASE_URL is already set, CMD simply runs with it.
# Otherwise this script finds (or, as root, apt-installs) the PostgreSQL server
# binaries, creates a fresh cluster in a temporary directory, starts it on a free
# 127.0.0.1 port, creates the role `askdesk` and the database `askdesk_test`, and
# runs CMD with these exported:
#
#   ASKDESK_TEST_DATABASE_URL=postgresql+psycopg://askdesk@127.0.0.1:PORT/askdesk_test
#   ASKDESK_PG_ADMIN_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
#   ASKDESK_PG_PORT=PORT
#
# The server is always stopped and the directory removed on exit; the exit code
# is CMD's. Set ASKDESK_PG_LOG_TAIL=N to print the last N server log lines after
# CMD fails. The distro's own cluster (if any) is never touched.
set -euo pipefail

log() { printf 'with-postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$#" -gt 0 ] || die "usage: $0 CMD [ARGS...]"

if [ -n "${ASKDESK_TEST_DATABASE_URL:-}" ]; then
    log "ASKDESK_TEST_DATABASE_URL is already set; using that server"
    exec "$@"
fi

is_root() { [ "$(id -u)" -eq 0 ]; }

# Print the first directory that holds both initdb and pg_ctl.
find_bindir() {
    local cand d
    local -a cands=()
    if command -v pg_config >/dev/null 2>&1; then
        cands+=("$(pg_config --bindir 2>/dev/null || true)")
    fi
    if command -v initdb >/dev/null 2>&1; then
        cands+=("$(dirname "$(readlink -f "$(command -v initdb)")")")
    fi
    # Highest version first.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -rn); do
        cands+=("$d")
    done
    for cand in "${cands[@]}"; do
        if [ -n "$cand" ] && [ -x "$cand/initdb" ] && [ -x "$cand/pg_ctl" ]; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    return 1
}

BINDIR="$(find_bindir || true)"
if [ -z "$BINDIR" ]; then
    if ! is_root; then
        die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them" \
            "(e.g. 'sudo apt-get install postgresql') or set ASKDESK_TEST_DATABASE_URL."
    fi
    log "PostgreSQL server not found; installing it with apt-get"
    t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq </dev/null >&2
    # The package's postinst may create (and try to start) the distro cluster;
    # we leave it alone and use our own cluster below.
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postgresql \
        </dev/null >&2
    log "installed PostgreSQL in $((SECONDS - t0))s"
    BINDIR="$(find_bindir || true)"
    [ -n "$BINDIR" ] || die "apt-get installed postgresql but initdb/pg_ctl were not found"
fi

PSQL="$BINDIR/psql"
[ -x "$PSQL" ] || PSQL="$(command -v psql || true)"
[ -n "$PSQL" ] || die "psql not found (looked in $BINDIR and on PATH)"

PYTHON_BIN="$(command -v python3 || command -v python || true)"
[ -n "$PYTHON_BIN" ] || die "python3 is needed to pick a free port"

free_port() {
    "$PYTHON_BIN" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# As root, the server must run as an unprivileged user.
RUN_AS=()
if is_root; then
    if ! id postgres >/dev/null 2>&1; then
        log "creating system user 'postgres'"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
    RUN_AS=(runuser -u postgres --)
fi

# Short path under /tmp: the Unix socket path must stay under ~107 bytes and be
# reachable by the postgres user (root's TMPDIR might not be).
T_START="${EPOCHREALTIME:-0}"
DIR="$(mktemp -d /tmp/askdesk-pg.XXXXXX)"
DATA="$DIR/data"
LOGFILE="$DIR/log"
STARTED=0

pg() { (cd "$DIR" && "${RUN_AS[@]}" "$@"); }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ "$STARTED" -eq 1 ]; then
        if ! pg "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
            pg "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
        fi
        # Last resort: kill the postmaster by pid if it is still there.
        if [ -f "$DATA/postmaster.pid" ]; then
            local pid
            pid="$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)"
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                log "server did not stop; killing postmaster $pid"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
    fi
    rm -rf "$DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

is_root && chown postgres: "$DIR"
chmod 700 "$DIR"

if ! pg "$BINDIR/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$DIR/initdb.log" 2>&1; then
    cat "$DIR/initdb.log" >&2
    die "initdb failed"
fi

PORT=""
for attempt in 1 2 3 4 5; do
    PORT="$(free_port)"
    if pg "$BINDIR/pg_ctl" -D "$DATA" -w -t 60 -l "$LOGFILE" \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
            start >/dev/null 2>&1; then
        STARTED=1
        break
    fi
    # pg_ctl may have left a half-started server behind.
    pg "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    if [ "$attempt" -lt 5 ] && grep -qiE 'could not bind|address already in use' "$LOGFILE" 2>/dev/null; then
        log "port $PORT was taken; retrying on another port"
        continue
    fi
    log "PostgreSQL failed to start; server log tail:"
    tail -n 40 "$LOGFILE" >&2 2>/dev/null || true
    die "could not start PostgreSQL (bindir $BINDIR)"
done
[ "$STARTED" -eq 1 ] || die "could not start PostgreSQL after 5 attempts"

"$PSQL" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
    -c "CREATE ROLE askdesk LOGIN SUPERUSER" \
    -c "CREATE DATABASE askdesk_test OWNER askdesk" </dev/null >&2 \
    || die "could not create role/database"

export ASKDESK_TEST_DATABASE_URL="postgresql+psycopg://askdesk@127.0.0.1:$PORT/askdesk_test"
export ASKDESK_PG_ADMIN_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
export ASKDESK_PG_PORT="$PORT"
READY_S="$(awk -v a="$T_START" -v b="${EPOCHREALTIME:-0}" 'BEGIN { printf "%.2f", b - a }')"
log "PostgreSQL $("$BINDIR/pg_ctl" --version | awk '{print $3}') ready on 127.0.0.1:$PORT" \
    "in ${READY_S}s (data in $DIR)"

set +e
"$@"
rc=$?
set -e

if [ "$rc" -ne 0 ] && [ -n "${ASKDESK_PG_LOG_TAIL:-}" ]; then
    log "command exited $rc; last ${ASKDESK_PG_LOG_TAIL} server log lines:"
    tail -n "$ASKDESK_PG_LOG_TAIL" "$LOGFILE" >&2 2>/dev/null || true
fi
exit "$rc"
