"""The README's quick start, as a reader would try it.

1. The first ```rust block of "## Add auth to your axum app" must be
   examples/quick_start.rs, byte for byte, and the second examples/account_api.rs (whose
   handlers tests/account_api.rs exercises).
2. The example is built and started in a temporary directory (it serves 127.0.0.1:3000
   with its SQLite file and its mail outbox there).
3. Every `$ ` line of the ```console block after it runs in a shell there, and must print
   exactly the lines the README shows under it (see readme_console.py).

    python3 tests/e2e/quick_start.py      # from anywhere; needs cargo, curl and perl

Exits non-zero, saying what differed, on any failure.
"""

import os
import subprocess
import tempfile

import readme_console as rc

NAME = "quick_start"
HEADING = "## Add auth to your axum app"
PORT = 3000


def main():
    body = rc.section(NAME, HEADING)
    rust = [part.split("```\n", 1)[0] for part in body.split("```rust\n")[1:]]
    if len(rust) != 2:
        rc.fail(NAME, f"the README's section has {len(rust)} rust blocks, expected 2")
    for shown, name in zip(rust, ["quick_start.rs", "account_api.rs"], strict=True):
        if shown != (rc.ROOT / "examples" / name).read_text():
            rc.fail(NAME, f"a code block of the README's section is not examples/{name}")
    console = body.split("```console\n", 1)[1].split("```\n", 1)[0]

    binary = rc.built_example(NAME, "quick_start")
    if rc.port_open(PORT):
        rc.fail(NAME, f"port {PORT} is already in use: the quick start needs it")
    with tempfile.TemporaryDirectory() as work:
        server = subprocess.Popen(
            [binary], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        try:
            rc.wait_for_server(NAME, server, PORT)
            rc.run_steps(NAME, work, rc.steps(NAME, console))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"[{NAME}] the README's quick start works as copied")


if __name__ == "__main__":
    main()
