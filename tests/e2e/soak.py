"""Soak: a bounded mixed load against the release spec server; memory stays flat and no
file descriptor leaks.

    python3 tests/e2e/soak.py SERVER_BINARY [--seconds 120] [--database-url URL]

Starts the server (hardened preset over plain HTTP, bcrypt cost 4, SQLite in a temporary
directory unless --database-url), warms it up, then for --seconds runs eight clients, each
looping over: register, log in, profile x5, list sessions, reset request, wrong password,
log out. It samples the server's resident memory (VmRSS) and open file descriptors after the
warm-up and at the end, and fails when:

- any answer was a 5xx (or a request failed);
- the open file descriptors at the end exceed those after the warm-up by more than 16
  (connections in flight at the moment of sampling), after the load has stopped;
- the resident memory at the end is more than 1.5 times that after the warm-up plus
  32 MiB: a leak over the run, not a small allocator drift.

It prints the samples either way. CI runs it for two minutes; run longer by hand.
"""

import argparse
import os
import pathlib
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

PASSWORD = "correct horse battery staple"


def fail(message):
    print(f"[soak] FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    fail("no VmRSS")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Load:
    def __init__(self, base):
        self.base = base
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.requests = 0
        self.server_errors = []

    def check(self, response):
        with self.lock:
            self.requests += 1
            if response.status_code >= 500:
                self.server_errors.append(
                    f"{response.request.method} {response.request.url}: "
                    f"{response.status_code} {response.text[:200]}"
                )

    def client(self, n):
        session = requests.Session()
        i = 0
        while not self.stop.is_set():
            i += 1
            email = f"soak-{n}-{i}-{random.randrange(1 << 30)}@example.com"
            try:
                form = {"email": email, "password": PASSWORD}
                self.check(session.post(f"{self.base}/users", data=form, timeout=30))
                login = session.post(f"{self.base}/sessions", data=form, timeout=30)
                self.check(login)
                for _ in range(5):
                    self.check(session.get(f"{self.base}/profile", timeout=30))
                self.check(session.get(f"{self.base}/sessions", timeout=30))
                self.check(
                    session.post(f"{self.base}/reset_password", data={"email": email}, timeout=30)
                )
                wrong = {"email": email, "password": "not the passphrase at all"}
                self.check(session.post(f"{self.base}/sessions", data=wrong, timeout=30))
                self.check(
                    session.delete(f"{self.base}/sessions", allow_redirects=False, timeout=30)
                )
            except requests.RequestException as err:
                with self.lock:
                    self.server_errors.append(f"request failed: {err}")

    def run(self, seconds, clients=8):
        self.stop.clear()
        threads = [threading.Thread(target=self.client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in threads:
            t.join()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite://{tmp}/soak.db?mode=rwc"
        port = free_port()
        server = subprocess.Popen(
            [
                args.binary, "--bind", f"127.0.0.1:{port}", "--database-url", url,
                "--preset", "hardened", "--cookie-secure", "false", "--bcrypt-cost", "4",
                "--mail-dir", f"{tmp}/mail",
                # Unconfirmed accounts may log in, so every client keeps using sessions
                # (the confirmation mail is still sent, through the outbox).
                "--no-require-confirmed-email",
                # One address for every client: lift the per-address limits a real
                # deployment keeps, so the load is not throttled away.
                "--max-login-failures-per-ip", "1000000",
                "--max-registrations-per-ip", "1000000",
                "--max-reset-requests-per-ip", "1000000",
            ],
            env={**os.environ, "RUST_LOG": "warn", "AUTH_MAX_CONNECTIONS_PER_IP": "1024"},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if requests.get(f"{base}/", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            else:
                fail("the server did not start")
            load = Load(base)
            print(f"[soak] warm-up: 15 s", flush=True)
            load.run(15)
            time.sleep(1)
            rss0, fds0 = rss_kib(server.pid), open_fds(server.pid)
            print(f"[soak] after warm-up: RSS {rss0} KiB, {fds0} open fds", flush=True)
            load.run(args.seconds)
            time.sleep(1)
            rss1, fds1 = rss_kib(server.pid), open_fds(server.pid)
            print(
                f"[soak] after {args.seconds} s: RSS {rss1} KiB, {fds1} open fds, "
                f"{load.requests} requests",
                flush=True,
            )
            if load.server_errors:
                fail(f"{len(load.server_errors)} server errors, first: {load.server_errors[0]}")
            if fds1 > fds0 + 16:
                fail(f"file descriptors grew from {fds0} to {fds1}")
            if rss1 > rss0 * 1.5 + 32 * 1024:
                fail(f"resident memory grew from {rss0} KiB to {rss1} KiB")
            print("[soak] memory flat, no descriptor leak, no server error")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
