"""Running a ```console block of the README as a reader would: shared by
quick_start.py and email_walkthrough.py.

A block is a list of steps: each `$ ` line is a command, the lines under it what it must
print. Commands run in bash in a working directory; lines that only define a shell
function are kept and prepended to the commands after them.
"""

import json
import pathlib
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def fail(name, message):
    print(f"[{name}] FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def section(name, heading):
    """The text of the README from `heading` to the next heading of the same level."""
    text = (ROOT / "README.md").read_text()
    if heading not in text:
        fail(name, f"README.md has no '{heading}' section")
    level = heading.split(" ", 1)[0]
    return text.split(heading, 1)[1].split(f"\n{level} ", 1)[0]


def steps(name, console):
    """(command, expected output lines) for each `$ ` line."""
    result = []
    for line in console.splitlines():
        if line.startswith("$ "):
            result.append((line[2:], []))
        elif result:
            result[-1][1].append(line)
        else:
            fail(name, f"console block starts with output: {line!r}")
    return result


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def built_example(name, example, *cargo_args):
    """Builds `example` (`cargo build --example`) and returns its executable."""
    print(f"[{name}] building: cargo build --example {example}", flush=True)
    build = subprocess.run(
        ["cargo", "build", "--example", example, *cargo_args,
         "--message-format=json-render-diagnostics"],
        cwd=ROOT, stdout=subprocess.PIPE, check=False,
    )
    if build.returncode != 0:
        fail(name, f"cargo build --example {example} failed")
    for line in build.stdout.decode().splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if (message.get("reason") == "compiler-artifact"
                and message.get("target", {}).get("name") == example
                and message.get("executable")):
            return message["executable"]
    fail(name, f"no {example} executable in cargo's output")
    return None


def wait_for_server(name, server, port):
    """Waits (up to 30 s) until `server` (a Popen) listens on `port`."""
    for _ in range(300):
        if port_open(port) or server.poll() is not None:
            break
        time.sleep(0.1)
    if not port_open(port):
        detail = server.stderr.read().decode() if server.poll() is not None else "no answer"
        fail(name, f"the server did not start: {detail}")


def run_steps(name, work, all_steps, pause=0.0):
    """Runs each step in bash in `work` and compares its output with the README's."""
    functions = []
    for command, expected in all_steps:
        if "() {" in command and command.rstrip().endswith("}"):
            functions.append(command)
            continue
        time.sleep(pause)
        run = subprocess.run(
            ["bash", "-c", "\n".join([*functions, command])], cwd=work,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False,
        )
        got = run.stdout.decode().splitlines()
        if got != expected or run.returncode != 0:
            fail(name, f"$ {command}\n  expected: {expected}\n  got:      {got} "
                       f"(exit {run.returncode}) {run.stderr.decode()[-2000:]}")
        print(f"[{name}] ok: $ {command}", flush=True)
