#!/usr/bin/env bash
# The seed's task-20 end-to-end test: runs tests/e2e/main.py (Python, `requests`) against the
# release build of examples/spec_server.rs, as a user of the seed would, and checks that it
# prints nothing and exits 0.
#
#     bash tests/e2e/run.sh          # from anywhere; needs cargo, python3 and `requests`
#
# 1. builds `cargo build --release --example spec_server`;
# 2. starts it on 127.0.0.1 (port 5000 when free, else a free one) with a fresh SQLite
#    database in a temporary directory and the spec's bcrypt cost (12);
# 3. runs main.py, then stops the server with SIGTERM and checks it exits cleanly (0);
# 4. starts it again on the same database and checks the account survived the restart;
# 5. when TOWER_AUTH_TEST_PG_URL is set (as .ci/run does), runs the same flow against
#    PostgreSQL, in a database created for this run (with psql) and dropped afterwards.
#    Without psql that step is skipped, unless AUTH_REQUIRE_POSTGRES=1 (then it fails).
#
# Exits non-zero, with a message saying what failed, on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"

log() { echo "[e2e] $*"; }
fail() {
    echo "[e2e] FAILED: $*" >&2
    exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tower-auth-e2e.XXXXXX")"
SERVER_PID=""
PG_DB=""
PG_ADMIN_URL=""

cleanup() {
    local status=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$PG_DB" ]; then
        psql "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "[e2e] warning: could not drop PostgreSQL database $PG_DB" >&2
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- prerequisites --------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || fail "cargo is not on PATH"
command -v python3 >/dev/null 2>&1 || fail "python3 is not on PATH"
python3 -c 'import requests' 2>/dev/null ||
    fail "the Python module 'requests' is missing: python3 -m pip install requests"

# ---- build ------------------------------------------------------------------------------------
log "building: cargo build --release --example spec_server"
cargo build --release --example spec_server --message-format=json-render-diagnostics \
    >"$WORK/build.json" || fail "cargo build --release --example spec_server failed"
BIN="$(python3 - "$WORK/build.json" <<'EOF'
import json
import sys

for line in open(sys.argv[1]):
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if (message.get("reason") == "compiler-artifact"
            and message.get("target", {}).get("name") == "spec_server"
            and message.get("executable")):
        print(message["executable"])
EOF
)"
BIN="$(echo "$BIN" | tail -n 1)"
[ -n "$BIN" ] && [ -x "$BIN" ] || fail "could not find the built spec_server executable"
log "server binary: $BIN"

# ---- helpers ----------------------------------------------------------------------------------

# Prints 5000 when it is free on 127.0.0.1, else a free port the OS picks.
free_port() {
    python3 - <<'EOF'
import socket

for port in (5000, 0):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    print(s.getsockname()[1])
    s.close()
    break
EOF
}

# start_server LABEL ARGS...: starts the server on a free port; sets SERVER_PID, BASE_URL.
start_server() {
    local label="$1"
    shift
    local port
    port="$(free_port)"
    [ -n "$port" ] || fail "$label: no free port"
    BASE_URL="http://127.0.0.1:$port"
    SERVER_LOG="$WORK/server-$label.log"
    NO_COLOR=1 RUST_LOG="${RUST_LOG:-info,sqlx=warn}" "$BIN" --bind "127.0.0.1:$port" "$@" \
        >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            cat "$SERVER_LOG" >&2
            fail "$label: the server exited at start (log above)"
        fi
        if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
            "$BASE_URL/" 2>/dev/null; then
            log "$label: server up at $BASE_URL (pid $SERVER_PID)"
            return 0
        fi
        sleep 0.1
    done
    cat "$SERVER_LOG" >&2
    fail "$label: the server did not answer GET / within 30 s (log above)"
}

# stop_server LABEL: SIGTERM, then checks the server exits with status 0 within 10 s.
stop_server() {
    local label="$1" status=0
    kill -TERM "$SERVER_PID" || fail "$label: could not signal the server"
    for _ in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$SERVER_LOG" >&2
        fail "$label: the server did not stop within 10 s of SIGTERM (log above)"
    fi
    wait "$SERVER_PID" || status=$?
    SERVER_PID=""
    if [ "$status" -ne 0 ]; then
        cat "$SERVER_LOG" >&2
        fail "$label: the server exited with status $status after SIGTERM (log above)"
    fi
    grep -q "shutting down" "$SERVER_LOG" ||
        fail "$label: the server stopped without logging its graceful shutdown"
    log "$label: server stopped cleanly"
}

# run_python LABEL WHAT ARGS...: runs python3 with ARGS (in tests/e2e) against BASE_URL;
# requires empty output and exit status 0.
run_python() {
    local label="$1" what="$2" status=0 output
    shift 2
    output="$(cd "$ROOT/tests/e2e" && E2E_BASE_URL="$BASE_URL" python3 "$@" 2>&1)" || status=$?
    if [ "$status" -ne 0 ] || [ -n "$output" ]; then
        echo "----- $what (exit status $status), output: -----" >&2
        echo "$output" >&2
        echo "----- server log: -----" >&2
        cat "$SERVER_LOG" >&2
        if [ "$status" -ne 0 ]; then
            fail "$label: $what exited with status $status"
        fi
        fail "$label: $what printed output (it must print nothing)"
    fi
    log "$label: $what passed (no output, exit 0)"
}

# flow LABEL DATABASE_URL [SERVER ARGS...]: main.py, a clean stop, then a restart on the
# same database where the account (with its new password) must still exist.
flow() {
    local label="$1" url="$2"
    shift 2
    start_server "$label" --database-url "$url" "$@"
    run_python "$label" "python3 main.py" main.py
    stop_server "$label"

    start_server "$label-restart" --database-url "$url"
    run_python "$label-restart" "the account survived the restart" -c '
import requests
import main

main.log_in(main.EMAIL, main.NEW_PASSWD)
main.log_in_wrong_password(main.EMAIL, main.PASSWD)
r = requests.post(main.BASE_URL + "/users",
                  data={"email": main.EMAIL, "password": main.PASSWD})
assert r.status_code == 400, r.text
'
    stop_server "$label-restart"
}

# ---- SQLite -----------------------------------------------------------------------------------
flow sqlite "sqlite://$WORK/a.db?mode=rwc"

# ---- PostgreSQL (optional) --------------------------------------------------------------------
if [ -n "${TOWER_AUTH_TEST_PG_URL:-}" ]; then
    if ! command -v psql >/dev/null 2>&1; then
        if [ "${AUTH_REQUIRE_POSTGRES:-}" = 1 ]; then
            fail "TOWER_AUTH_TEST_PG_URL is set and AUTH_REQUIRE_POSTGRES=1, but psql is missing"
        fi
        log "SKIPPED: PostgreSQL flow (psql is needed to create a dedicated database)"
    else
        PG_ADMIN_URL="$TOWER_AUTH_TEST_PG_URL"
        NAME="tower_auth_e2e_$(date +%s)_$$"
        psql "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$NAME\"" >/dev/null ||
            fail "could not create the PostgreSQL database $NAME (the role needs CREATEDB)"
        PG_DB="$NAME"
        PG_URL="$(python3 - "$PG_ADMIN_URL" "$PG_DB" <<'EOF'
import sys
from urllib.parse import urlsplit, urlunsplit

parts = urlsplit(sys.argv[1])
print(urlunsplit(parts._replace(path="/" + sys.argv[2])))
EOF
)"
        log "PostgreSQL database $PG_DB (dropped at exit)"
        # --fresh drops and recreates the tables, as the seed's DB() does; this database is
        # ours alone.
        flow postgres "$PG_URL" --fresh
    fi
else
    log "SKIPPED: PostgreSQL flow (TOWER_AUTH_TEST_PG_URL is not set)"
fi

log "all end-to-end checks passed"
