"""The README's email walk-through, as a reader would run it.

The ```console block of "### Email: confirmation, magic links, email change, reset links":
its first line starts the spec server (run here from the built binary, with the flags the
README shows, in a temporary directory); every other `$ ` line runs in bash there and must
print exactly the lines the README shows under it (see readme_console.py).

    python3 tests/e2e/email_walkthrough.py      # from anywhere; needs cargo, curl and perl

Exits non-zero, saying what differed, on any failure.
"""

import os
import shlex
import subprocess
import tempfile

import readme_console as rc

NAME = "email_walkthrough"
HEADING = "### Email: confirmation, magic links, email change, reset links"
PORT = 5000
START = "cargo run --example spec_server -- "


def main():
    body = rc.section(NAME, HEADING)
    all_steps = rc.steps(NAME, body.split("```console\n", 1)[1].split("```\n", 1)[0])
    start, _ = all_steps[0]
    if not start.startswith(START):
        rc.fail(NAME, f"the walk-through does not start the spec server: {start}")
    binary = rc.built_example(NAME, "spec_server", "--all-features")
    if rc.port_open(PORT):
        rc.fail(NAME, f"port {PORT} is already in use: the walk-through needs it")
    with tempfile.TemporaryDirectory() as work:
        server = subprocess.Popen(
            [binary, *shlex.split(start[len(START):])], cwd=work,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        try:
            rc.wait_for_server(NAME, server, PORT)
            # Mail leaves through the outbox just after each answer, and a requested link
            # (magic link, reset) up to 1.25 s later (`Mailer::answer_delay`): a person's
            # pause between steps.
            rc.run_steps(NAME, work, all_steps[1:], pause=1.6)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"[{NAME}] the README's email walk-through works as shown")


if __name__ == "__main__":
    main()
