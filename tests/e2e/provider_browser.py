"""Signing in with an OpenID Connect provider in a real browser: examples/web_app.rs in
Debian's headless Chromium (Selenium, Debian's chromedriver), against a real local provider
(npm's oauth2-mock-server, tests/oidc, started here with node; it signs in whoever comes,
with the claims this test sets).

Click "Sign in with ..." on the login page -> the provider -> back, logged in to a new
account with the provider's verified email -> the security page lists the identity. Then
an account registered with a password links the provider from its security page, and the
provider then logs it in. Screenshots go to target/browser-screenshots/.

    python3 tests/e2e/provider_browser.py   # needs cargo, node, chromium, chromium-driver, selenium

Exits non-zero, saying what went wrong, on any failure.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

from selenium.webdriver.common.by import By

import readme_console as rc
from browser import Browser, free_port, newest_link, start_web_app

NAME = "provider-browser"
PASSWORD = "correct horse battery staple"
OIDC = rc.ROOT / "tests" / "oidc"


def check(condition, message):
    if not condition:
        rc.fail(NAME, message)


class LocalProvider:
    def __init__(self):
        check((OIDC / "node_modules" / "oauth2-mock-server").exists(),
              "the local provider is not installed: npm install --prefix tests/oidc")
        self.process = subprocess.Popen(["node", "mock_provider.mjs"], cwd=OIDC,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.issuer = json.loads(self.process.stdout.readline())["issuer"]

    def claims(self, claims):
        self.process.stdin.write(json.dumps(claims) + "\n")
        self.process.stdin.flush()
        check(self.process.stdout.readline().strip() == "ok", "the provider took the claims")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def main():
    binary = rc.built_example(NAME, "web_app")
    provider = LocalProvider()
    port = free_port()
    base = f"http://localhost:{port}"
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        outbox = work / "outbox"
        log = open(work / "server.log", "wb")
        server = start_web_app(binary, port, work, log, "--oidc-issuer", provider.issuer, "--oidc-name", "Local ID")
        browser = None
        try:
            rc.wait_for_server(NAME, server, port)
            browser = Browser("oidc", base, work / "profile")
            run(browser, provider, outbox)
        except SystemExit:
            print((work / "server.log").read_text(errors="replace"), file=sys.stderr)
            raise
        finally:
            if browser:
                browser.quit()
            server.terminate()
            server.wait(timeout=10)
            provider.stop()
    print(f"[{NAME}] signing in with a provider works in Chromium")


def run(a, provider, outbox):
    # A new account, from the provider's verified email.
    provider.claims({"sub": "lin-1", "email": "lin@example.com", "email_verified": True})
    a.open("/login?next=%2Fprofile")
    a.shot("login-with-provider-button")
    a.click("provider-idp")
    check(a.path() == "/profile", f"after the provider: {a.path()} {a.text('error')!r}")
    check(a.text("profile-email") == "lin@example.com", f"profile: {a.text('profile-email')!r}")
    a.open("/security")
    emails = [e.text for e in a.driver.find_elements(By.CSS_SELECTOR, ".identity-email")]
    check(emails == ["lin@example.com"], f"identities listed: {emails}")
    a.shot("security-with-provider")
    a.click("logout")

    # An account with a password links the provider from its security page.
    a.open("/register")
    a.fill({"email": "max@example.com", "password": PASSWORD})
    a.click("submit")
    a.driver.get(newest_link(outbox, "max@example.com"))
    a.fill({"password": PASSWORD})
    a.click("submit")
    a.fill({"email": "max@example.com", "password": PASSWORD})
    a.click("submit")
    provider.claims({"sub": "max-at-idp", "email": "m@idp.example", "email_verified": False})
    a.open("/security")
    a.driver.find_element(By.CSS_SELECTOR, ".link-password").send_keys(PASSWORD)
    a.submit(a.driver.find_element(By.CSS_SELECTOR, "button.link-provider"))
    check(a.path() == "/security", f"after linking: {a.path()} {a.text('error')!r}")
    check("linked" in a.text("flash"), f"flash: {a.text('flash')!r}")
    a.click("logout")
    a.open("/login")
    a.click("provider-idp")
    a.open("/profile")
    check(a.text("profile-email") == "max@example.com", "the linked provider logs max in")
    a.shot("signed-in-with-linked-provider")


if __name__ == "__main__":
    main()
