#!/usr/bin/env bash
# Peak memory (RSS) of the spec server during an argon2id login storm, with and without a
# memory budget that holds fewer hashes than there are permits.
#
#     bash benches/argon2_storm.sh            # about a minute; needs cargo and curl
#
# For each budget it starts the release spec server (argon2id at OWASP's minimum, 19 MiB a
# hash, 16 hashing permits, a 256-job queue) on a temporary SQLite file, registers one user,
# sends 300 logins 32 at a time, and prints the answers by status and the server's peak RSS
# (VmHWM). With a 64 MiB budget only 3 hashes run at once: the peak stays near 3 x 19 MiB
# above the idle server, where 16 unbounded ones would take 16 x 19 MiB.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet --example spec_server
BIN="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/spec_server"
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

storm() {
    local budget_mib=$1 port
    port="$(free_port)"
    rm -f "$WORK"/a.db*
    "$BIN" --bind "127.0.0.1:$port" --database-url "sqlite://$WORK/a.db?mode=rwc" \
        --hash-algorithm argon2id --hash-permits 16 --hash-queue 256 \
        --hash-memory-budget-mib "$budget_mib" --max-login-failures 100000 \
        --max-login-failures-per-ip 100000 >/dev/null 2>&1 &
    PID=$!
    for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$port/" && break; sleep 0.1; done
    local idle
    idle=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
    curl -s -o /dev/null -d 'email=storm@example.com' -d 'password=correct horse battery staple' \
        "127.0.0.1:$port/users"
    seq 300 | xargs -P 32 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
        -d 'email=storm@example.com' -d 'password=correct horse battery staple' \
        "127.0.0.1:$port/sessions" | sort | uniq -c | tr '\n' ' ' >"$WORK/codes"
    local peak
    peak=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
    printf '| %s MiB | %s | %d MiB | %d MiB | %s|\n' "$budget_mib" "$((budget_mib * 1024 / 19456 < 16 ? budget_mib * 1024 / 19456 : 16))" \
        "$((idle / 1024))" "$((peak / 1024))" "$(cat "$WORK/codes")"
}

echo "| hash_memory_budget | hashes at once | RSS idle | peak RSS | answers (count status) |"
echo "|---|--:|--:|--:|---|"
storm 64
storm 512
