"""Can the time of a request tell whether the address probed just before it is registered?

    python3 benches/enumeration.py                 # about two minutes on 2 cores
    python3 benches/enumeration.py --trials 400    # per kind of request

It builds and starts the release spec server (hardened preset, mail written to a temporary
directory, per-client limits raised so the probes are not refused), registers accounts, then
for each "mail me a link" request (magic link, reset, confirmation resend) runs trials: a
probe for a registered or an unknown address (at random), and right after its answer, a
request for another unknown address, timed. The worker's work for a registered address
(finding the account, issuing the link, writing the message) is the signal an attacker
looks for in that second request's time.

The classifier picks the threshold on the follow-up's time that best separates registered
from unknown probes on half the trials, and is scored on the other half: 50% is chance.
It prints a Markdown table.
"""

import argparse
import http.client
import os
import random
import statistics
import subprocess
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "correct horse battery staple"
KINDS = [("magic link", "/magic_link"), ("reset", "/reset_password"),
         ("resend", "/confirmation/resend")]


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "spec_server"],
                   cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "examples", "spec_server")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path, fields):
        body = urllib.parse.urlencode(fields)
        started = time.perf_counter()
        self.conn.request("POST", path, body,
                          {"Content-Type": "application/x-www-form-urlencoded"})
        response = self.conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started


def accuracy(samples):
    """Best-threshold classifier trained on even samples, scored on odd ones."""
    train, test = samples[0::2], samples[1::2]

    def score(threshold, data, above_is_known):
        right = sum((t > threshold) == (known if above_is_known else not known)
                    for t, known in data)
        return right / len(data)

    best = max(((score(t, train, d), t, d) for t, _ in train for d in (True, False)))
    _, threshold, direction = best
    return score(threshold, test, direction)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200, help="per kind of request")
    parser.add_argument("--gap-ms", type=float, default=20.0,
                        help="pause between trials (the attacker's pace)")
    parser.add_argument("--binary", help="a spec_server binary to measure instead of "
                        "building this checkout's")
    args = parser.parse_args()
    binary = args.binary or build()
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        server = subprocess.Popen(
            [binary, "--bind", f"127.0.0.1:{port}", "--preset", "hardened",
             "--cookie-secure", "false", "--bcrypt-cost", "4",
             "--database-url", f"sqlite://{work}/a.db?mode=rwc",
             "--mail-dir", os.path.join(work, "outbox"),
             "--max-registrations-per-ip", "1000000",
             "--max-reset-requests-per-ip", "1000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    Client(port).post("/", {})
                    break
                except OSError:
                    time.sleep(0.05)
            client = Client(port)
            # Each account is probed at most once per kind (the per-account and
            # per-address caps would otherwise stop the work an attacker looks for).
            known = [f"known{n}@example.com" for n in range(args.trials)]
            for email in known:
                status, _ = client.post("/users", {"email": email, "password": PASSWORD})
                assert status == 202, status
            time.sleep(3)
            rows = []
            rng = random.Random(7)
            for name, path in KINDS:
                samples = []
                pool = list(known)
                rng.shuffle(pool)
                for n in range(args.trials):
                    is_known = rng.random() < 0.5 and pool
                    probe = pool.pop() if is_known else f"nobody{n}-{name[0]}@example.com"
                    status, _ = client.post(path, {"email": probe})
                    assert status == 202, status
                    status, took = client.post(path, {"email": f"other{n}@example.org"})
                    assert status == 202, status
                    samples.append((took, bool(is_known)))
                    time.sleep(args.gap_ms / 1000)
                rows.append((name, len(samples), accuracy(samples),
                             statistics.median(t for t, k in samples if k) * 1e3,
                             statistics.median(t for t, k in samples if not k) * 1e3))
            print("| probe | trials | classifier accuracy (50% = chance) "
                  "| median follow-up, registered | median follow-up, unknown |")
            print("|---|---|---|---|---|")
            for name, n, acc, known_ms, unknown_ms in rows:
                print(f"| {name} | {n} | {acc:.0%} | {known_ms:.2f} ms | {unknown_ms:.2f} ms |")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
