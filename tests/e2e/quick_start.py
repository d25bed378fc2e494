"""The README's quick start, as a reader would try it.

1. The first ```rust block of "## Add auth to your axum app" must be
   examples/quick_start.rs, byte for byte, and the second examples/account_api.rs (whose
   handlers tests/account_api.rs exercises).
2. The example is built and started in a temporary directory (it serves 127.0.0.1:3000
   with its SQLite file there).
3. Every `$ ` line of the ```console block after it runs in a shell there, and must print
   exactly the lines the README shows under it.

    python3 tests/e2e/quick_start.py      # from anywhere; needs cargo and curl

Exits non-zero, saying what differed, on any failure.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
PORT = 3000


def fail(message):
    print(f"[quick_start] FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def readme_blocks():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Add auth to your axum app", 1)
    if len(section) != 2:
        fail("README.md has no '## Add auth to your axum app' section")
    body = section[1]
    body = body.split("\n## ", 1)[0]
    rust = [part.split("```\n", 1)[0] for part in body.split("```rust\n")[1:]]
    console = body.split("```console\n", 1)[1].split("```\n", 1)[0]
    return rust, console


def steps(console):
    """(command, expected output lines) for each `$ ` line."""
    result = []
    for line in console.splitlines():
        if line.startswith("$ "):
            result.append((line[2:], []))
        elif result:
            result[-1][1].append(line)
        else:
            fail(f"console block starts with output: {line!r}")
    return result


def port_open():
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", PORT)) == 0


def main():
    rust, console = readme_blocks()
    if len(rust) != 2:
        fail(f"the README's section has {len(rust)} rust blocks, expected 2")
    for shown, name in zip(rust, ["quick_start.rs", "account_api.rs"], strict=True):
        if shown != (ROOT / "examples" / name).read_text():
            fail(f"a code block of the README's section is not examples/{name}")

    print("[quick_start] building: cargo build --example quick_start", flush=True)
    build = subprocess.run(
        ["cargo", "build", "--example", "quick_start", "--message-format=json-render-diagnostics"],
        cwd=ROOT, stdout=subprocess.PIPE, check=False,
    )
    if build.returncode != 0:
        fail("cargo build --example quick_start failed")
    binary = None
    for line in build.stdout.decode().splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if (message.get("reason") == "compiler-artifact"
                and message.get("target", {}).get("name") == "quick_start"
                and message.get("executable")):
            binary = message["executable"]
    if binary is None:
        fail("no quick_start executable in cargo's output")
    if port_open():
        fail(f"port {PORT} is already in use: the quick start needs it")

    with tempfile.TemporaryDirectory() as work:
        server = subprocess.Popen(
            [binary], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        try:
            for _ in range(300):
                if port_open() or server.poll() is not None:
                    break
                time.sleep(0.1)
            if not port_open():
                fail(f"the example did not start: {server.stderr.read().decode() if server.poll() is not None else 'no answer'}")
            for command, expected in steps(console):
                run = subprocess.run(
                    ["bash", "-c", command], cwd=work, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, timeout=60, check=False,
                )
                got = run.stdout.decode().splitlines()
                if got != expected or run.returncode != 0:
                    fail(f"$ {command}\n  expected: {expected}\n  got:      {got} "
                         f"(exit {run.returncode}) {run.stderr.decode()}")
                print(f"[quick_start] ok: $ {command}", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print("[quick_start] the README's quick start works as copied")


if __name__ == "__main__":
    main()
