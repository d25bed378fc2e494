#!/usr/bin/env bash
# Installs (from Debian's packages), starts and provisions a local PostgreSQL for the tests.
#
# Usage (developers too; needs root or sudo-less root, as on CI):
#
#     export TOWER_AUTH_TEST_PG_URL="$(bash .ci/postgres.sh)"
#
# Everything the script does is logged to stderr; the only thing on stdout is the URL of
# the test database, e.g. postgres://tower_auth:tower_auth@127.0.0.1:5432/tower_auth
#
# Idempotent: running it again on a machine where the cluster already runs only checks the
# role and database and prints the URL again. The role may create databases, because every
# PostgreSQL test creates its own throwaway database (tests/support/pg.rs).
#
# Settings (environment):
#   PG_ROLE / PG_PASSWORD / PG_DATABASE   default tower_auth / tower_auth / tower_auth
#   PG_CLUSTER                            the Debian cluster to use or create (default main)
#   PG_PRIVATE=1                          skip the Debian cluster; run a private one in
#                                         PG_FALLBACK_DIR (default /var/tmp/tower-auth-pg)
#   PG_PORT                               the private cluster's port (default 5432)
#   PG_MAX_CONNECTIONS                    server max_connections (default 300: tests run in
#                                         parallel, each with its own pool)
set -euo pipefail

# Keep stdout for the URL alone.
exec 3>&1 1>&2

PG_ROLE="${PG_ROLE:-tower_auth}"
PG_PASSWORD="${PG_PASSWORD:-tower_auth}"
PG_DATABASE="${PG_DATABASE:-tower_auth}"
PG_MAX_CONNECTIONS="${PG_MAX_CONNECTIONS:-300}"
CLUSTER="${PG_CLUSTER:-main}"
# Where the fallback cluster lives (only used when the Debian cluster cannot be started).
FALLBACK_DIR="${PG_FALLBACK_DIR:-/var/tmp/tower-auth-pg}"

log() { echo "[postgres.sh] $*"; }
die() {
    echo "[postgres.sh] ERROR: $*"
    exit 1
}

as_postgres() {
    if [ "$(id -un)" = postgres ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

# Runs a command that may leave a daemon behind (the server, or a package's postinst
# starting it) with nothing inherited beyond stdin from /dev/null and stdout/stderr on a
# temporary file, shown afterwards. Otherwise the server would hold the caller's pipes
# open (this script's `$(...)`, CI's log) and whoever reads them would wait forever.
detached() {
    local out rc=0
    out="$(mktemp)"
    (
        for fd in /proc/self/fd/*; do
            fd="${fd##*/}"
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        "$@" </dev/null >"$out" 2>&1
    ) || rc=$?
    cat "$out"
    rm -f "$out"
    return "$rc"
}

# ---- 1. install ---------------------------------------------------------------------------
pg_bindir() {
    local dir
    dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null |
        sort -V | tail -n 1)"
    [ -n "$dir" ] && [ -x "$dir/postgres" ] && echo "$dir"
}

if ! pg_bindir >/dev/null || ! command -v psql >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and this is not root: install the 'postgresql' package"
    log "installing PostgreSQL from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    for attempt in 1 2 3; do
        if detached apt-get update -q && detached apt-get install -y -q postgresql; then
            break
        fi
        [ "$attempt" = 3 ] && die "apt-get could not install postgresql"
        log "apt-get failed (attempt $attempt); retrying"
        sleep 5
    done
fi
BINDIR="$(pg_bindir)" || die "no PostgreSQL server binaries under /usr/lib/postgresql"
VERSION="$(basename "$(dirname "$BINDIR")")"
log "PostgreSQL $VERSION ($BINDIR)"

# ---- 2. start a cluster -------------------------------------------------------------------
# Returns the port of a running server we can use, or fails.
PORT=""
SOCKET_DIR=""

start_debian_cluster() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 1
    if ! pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c' | grep -q .; then
        log "creating cluster $VERSION/$CLUSTER"
        pg_createcluster "$VERSION" "$CLUSTER" >/dev/null || return 1
    fi
    local line status
    line="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c')"
    PORT="$(echo "$line" | awk '{print $3}')"
    status="$(echo "$line" | awk '{print $4}')"
    SOCKET_DIR=/var/run/postgresql
    mkdir -p "$SOCKET_DIR" && chown postgres:postgres "$SOCKET_DIR" && chmod 2775 "$SOCKET_DIR"
    # Tests run in parallel, each with its own pool: the default 100 connections is tight.
    local conf="/etc/postgresql/$VERSION/$CLUSTER/conf.d/tower-auth.conf"
    local want
    want="$(printf 'max_connections = %s\n%s' "$PG_MAX_CONNECTIONS" "$AUTH_TIMEOUT_SETTING")"
    if [ -d "$(dirname "$conf")" ] && [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
        echo "$want" >"$conf"
        if [[ "$status" == online* ]]; then
            log "restarting cluster $VERSION/$CLUSTER for $want"
            detached pg_ctlcluster "$VERSION" "$CLUSTER" restart || return 1
            return 0
        fi
    fi
    if [[ "$status" == online* ]]; then
        log "cluster $VERSION/$CLUSTER already running on port $PORT"
    else
        log "starting cluster $VERSION/$CLUSTER on port $PORT"
        detached pg_ctlcluster "$VERSION" "$CLUSTER" start || return 1
    fi
}

# A test ends by dropping its database (`DROP DATABASE ... WITH (FORCE)`) from inside its
# own runtime. If one of the test's pools was opening a connection just then, that
# connection stays half-authenticated (its client's runtime is blocked in the drop), and
# the drop waits for it: by default for the whole minute of authentication_timeout, which
# every other test's drop then waits on too (the drop's barrier spans the cluster). Five
# seconds bounds that stall; no connection on loopback needs longer to authenticate.
AUTH_TIMEOUT_SETTING="authentication_timeout = 5s"

start_fallback_cluster() {
    # A private cluster in FALLBACK_DIR, run as the postgres user, socket in FALLBACK_DIR.
    PORT="${PG_PORT:-5432}"
    SOCKET_DIR="$FALLBACK_DIR"
    local data="$FALLBACK_DIR/data"
    mkdir -p "$FALLBACK_DIR"
    chown postgres:postgres "$FALLBACK_DIR"
    if [ ! -f "$data/PG_VERSION" ]; then
        log "initdb into $data"
        as_postgres "$BINDIR/initdb" -D "$data" -U postgres --auth-local=peer \
            --auth-host=scram-sha-256 -E UTF8 >/dev/null
    fi
    if as_postgres "$BINDIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        log "fallback cluster already running"
        return 0
    fi
    log "starting fallback cluster in $data on port $PORT"
    detached as_postgres "$BINDIR/pg_ctl" -D "$data" -l "$FALLBACK_DIR/server.log" -w -t 60 \
        -o "-k $FALLBACK_DIR -p $PORT -c listen_addresses=127.0.0.1 -c max_connections=$PG_MAX_CONNECTIONS -c authentication_timeout=5s" \
        start
}

if [ "${PG_PRIVATE:-0}" = 1 ]; then
    start_fallback_cluster || {
        [ -f "$FALLBACK_DIR/server.log" ] && tail -n 30 "$FALLBACK_DIR/server.log"
        die "could not start PostgreSQL"
    }
elif ! start_debian_cluster; then
    log "the Debian cluster could not be started; using a private cluster instead"
    start_fallback_cluster || {
        [ -f "$FALLBACK_DIR/server.log" ] && tail -n 30 "$FALLBACK_DIR/server.log"
        die "could not start PostgreSQL"
    }
fi

log "waiting for the server (port $PORT)"
for _ in $(seq 1 60); do
    if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        break
    fi
    sleep 1
done
"$BINDIR/pg_isready" -h 127.0.0.1 -p "$PORT" || {
    tail -n 30 "/var/log/postgresql/postgresql-$VERSION-$CLUSTER.log" 2>/dev/null || true
    die "PostgreSQL is not accepting connections on 127.0.0.1:$PORT"
}

# ---- 3. role and database -----------------------------------------------------------------
psql_admin() {
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -d postgres "$@"
}

sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }

log "ensuring role $PG_ROLE and database $PG_DATABASE"
psql_admin <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = $(sql_quote "$PG_ROLE")) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', $(sql_quote "$PG_ROLE"));
    END IF;
    EXECUTE format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L',
                   $(sql_quote "$PG_ROLE"), $(sql_quote "$PG_PASSWORD"));
END
\$\$;
SQL
if [ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = $(sql_quote "$PG_DATABASE")")" != 1 ]; then
    psql_admin -c "CREATE DATABASE \"$PG_DATABASE\" OWNER \"$PG_ROLE\""
fi

URL="postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PORT/$PG_DATABASE"

# ---- 4. check it as the tests will connect ------------------------------------------------
PGPASSWORD="$PG_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" \
    -U "$PG_ROLE" -d "$PG_DATABASE" -tA -c "SELECT 1" >/dev/null ||
    die "cannot log in as $PG_ROLE over TCP"
log "ready: $URL (max_connections=$(PGPASSWORD="$PG_PASSWORD" psql -X -h 127.0.0.1 -p "$PORT" \
    -U "$PG_ROLE" -d "$PG_DATABASE" -tA -c 'SHOW max_connections'))"

echo "$URL" >&3
