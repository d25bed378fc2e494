"""The README's quick start, as a reader would try it.

1. The first ```rust block of "## Add auth to your axum app" must be
   examples/quick_start.rs, byte for byte, and the second examples/account_api.rs (whose
   handlers tests/account_api.rs exercises).
2. The example is built and started in a temporary directory (it serves 127.0.0.1:3000
   with its SQLite file and its mail outbox there).
3. Every `$ ` line of the ```console block after it runs in a shell there, and must print
   exactly the lines the README shows under it (see readme_console.py).
4. Every kind of mailed link is then clicked as a person would: the link from the .eml
   file opened (a page with a form), the form submitted as a browser submits it (its
   hidden fields, what a person types, posted to the page's own URL).

    python3 tests/e2e/quick_start.py      # from anywhere; needs cargo, curl and perl

Exits non-zero, saying what differed, on any failure.
"""

import email
import email.policy
import html.parser
import json
import os
import pathlib
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import readme_console as rc

NAME = "quick_start"
HEADING = "## Add auth to your axum app"
PORT = 3000


BASE = f"http://localhost:{PORT}"


class Form(html.parser.HTMLParser):
    """The one form of a link's page: its method, action and fields."""

    def __init__(self):
        super().__init__()
        self.method, self.action, self.fields = None, None, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.method, self.action = attrs.get("method"), attrs.get("action")
        elif tag == "input":
            self.fields[attrs["name"]] = attrs.get("value", "")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def request(url, fields=None, cookie=None):
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    req = urllib.request.Request(url, data=data)
    if data is not None:
        req.add_header("Origin", BASE)  # what a browser sends with a form post
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        response = OPENER.open(req, timeout=10)
    except urllib.error.HTTPError as err:
        response = err
    return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()


def newest_link(outbox, to, path):
    """The link to `path` in the newest message to `to` (waiting for it to arrive)."""
    for _ in range(100):
        for file in sorted(outbox.glob("*.eml"), reverse=True):
            message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
            if message["To"] != to:
                continue
            text = message.get_body(preferencelist=("plain",)).get_content()
            found = re.search(r"https?://\S+token=\S+", text)
            if found and path in found.group(0):
                return found.group(0)
            break
        time.sleep(0.1)
    rc.fail(NAME, f"no {path} link to {to} in {outbox}")
    return None


def click(link, typed, cookie=None):
    """Opens `link` and submits its page's form with `typed` filled in."""
    status, headers, page = request(link)
    if status != 200 or not headers.get("content-type", "").startswith("text/html"):
        rc.fail(NAME, f"{link} opened {status} {headers.get('content-type')}: {page}")
    form = Form()
    form.feed(page)
    if form.method != "post":
        rc.fail(NAME, f"{link}: no form that posts: {page}")
    for name in typed:
        if name not in form.fields:
            rc.fail(NAME, f"{link}: the page asks for no {name}: {page}")
    target = urllib.parse.urljoin(link, form.action or "")
    status, headers, body = request(target, {**form.fields, **typed}, cookie)
    if status != 200:
        rc.fail(NAME, f"submitting {link}: {status} {body}")
    print(f"[{NAME}] ok: clicked {link.split('?')[0]}: {body}")
    return headers, json.loads(body)


def click_every_link(outbox):
    carol, password = "carol@example.com", "correct horse battery staple"
    request(f"{BASE}/auth/users", {"email": carol, "password": password})
    _, body = click(newest_link(outbox, carol, "/auth/confirmation"), {"password": password})
    if body.get("password_kept") is not True:
        rc.fail(NAME, f"the confirmation kept no password: {body}")
    request(f"{BASE}/auth/magic_link", {"email": carol})
    headers, _ = click(newest_link(outbox, carol, "/auth/sessions/magic"), {})
    cookie = headers.get("set-cookie", "").split(";")[0]
    status, _, me = request(f"{BASE}/me", cookie=cookie)
    if (status, me) != (200, carol):
        rc.fail(NAME, f"after the magic link, /me answered {status} {me}")
    carla = "carla@example.com"
    request(f"{BASE}/auth/email", {"new_email": carla}, cookie)
    _, body = click(newest_link(outbox, carla, "/auth/email/confirm"), {})
    if body.get("email") != carla:
        rc.fail(NAME, f"the email change answered {body}")
    request(f"{BASE}/auth/reset_password", {"email": carla})
    new_password = "another passphrase, long enough"
    click(newest_link(outbox, carla, "/auth/reset_password"), {"new_password": new_password})
    status, _, body = request(f"{BASE}/auth/sessions", {"email": carla, "password": new_password})
    if status != 200:
        rc.fail(NAME, f"the new password did not log in: {status} {body}")


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
            click_every_link(pathlib.Path(work) / "outbox")
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"[{NAME}] the README's quick start works as copied")


if __name__ == "__main__":
    main()
