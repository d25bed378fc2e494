"""examples/web_app.rs in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver (nothing is downloaded).

Register -> confirm through the link in the development outbox -> visit a guarded page,
get sent to the login page and come back via `next` (logging in with "remember me") ->
check the session cookie in the browser's own jar -> change the password -> a second
browser logs in -> the first sees that session in its list and ends it -> the second is
sent to the login page -> log out with the plain form. A screenshot of every page goes
to target/browser-screenshots/ for a person to look at.

    python3 tests/e2e/browser.py      # needs cargo, chromium, chromium-driver, selenium

Exits non-zero, saying what went wrong, on any failure.
"""

import email
import email.policy
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import readme_console as rc

NAME = "browser"
SHOTS = rc.ROOT / "target" / "browser-screenshots"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase, long enough"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


def check(condition, message):
    if not condition:
        rc.fail(NAME, message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def left_behind(element):
    """True once `element` belongs to a page the browser has left. Chromium reports that
    either as a stale element or, when asked in the middle of the navigation, as an
    inspector error about a node outside the document; both mean the same."""
    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise


class Browser:
    """One headless Chromium with a profile (and so a cookie jar) of its own."""

    def __init__(self, label, base, profile):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--window-size=1000,900", f"--user-data-dir={profile}"]:
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.label = label
        self.base = base
        self.shots = 0

    def open(self, path):
        self.driver.get(self.base + path)

    def submit(self, element):
        """Clicks a form's button and waits for the page it leads to."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, 15).until(lambda _: left_behind(page))

    def path(self):
        return self.driver.current_url[len(self.base):]

    def fill(self, fields):
        for field, value in fields.items():
            element = self.driver.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)

    def click(self, element_id):
        """Clicks a button (and waits for the next page) or ticks a checkbox."""
        element = self.driver.find_element(By.ID, element_id)
        if element.get_attribute("type") == "checkbox":
            element.click()
        else:
            self.submit(element)

    def text(self, element_id):
        found = self.driver.find_elements(By.ID, element_id)
        return found[0].text if found else ""

    def shot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = SHOTS / f"{self.label}-{self.shots:02}-{name}.png"
        self.driver.save_screenshot(str(path))
        shown = self.path().split("token=")[0]  # the link's token stays out of the log
        print(f"[{NAME}] {self.label}: {name} ({shown}) -> {path.name}", flush=True)

    def quit(self):
        self.driver.quit()


def start_web_app(binary, port, work, log, *extra):
    """examples/web_app.rs on `port` (as http://localhost:<port>), its database and outbox
    in `work`, its log to `log`, with `extra` arguments."""
    base = f"http://localhost:{port}"
    return subprocess.Popen(
        [binary, "--bind", f"127.0.0.1:{port}", "--public-url", base,
         "--database-url", f"sqlite://{work}/app.db?mode=rwc", "--outbox", str(work / "outbox"),
         "--bcrypt-cost", "4", *extra],
        cwd=work, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": "warn", "NO_COLOR": "1"},
    )


def newest_link(outbox, to, prefix=""):
    """The link in the newest message to `to`, read as MIME by Python's email package; with
    `prefix`, waits until the newest link starts with it (a requested link arrives a moment
    after the answer: the worker answers such requests after a random delay)."""
    for _ in range(100):
        messages = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        for path in reversed(messages):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == to:
                text = message.get_body(preferencelist=("plain",)).get_content()
                found = re.search(r"https?://\S+token=\S+", text)
                if found and found.group(0).startswith(prefix):
                    return found.group(0)
                if found:
                    break
        time.sleep(0.1)
    rc.fail(NAME, f"no link to {to} in {outbox}")
    return None


def main():
    for tool in (CHROMIUM, CHROMEDRIVER):
        check(shutil.which(tool) or pathlib.Path(tool).exists(),
              f"{tool} is missing: apt-get install chromium chromium-driver")
    binary = rc.built_example(NAME, "web_app")
    shutil.rmtree(SHOTS, ignore_errors=True)
    port = free_port()
    base = f"http://localhost:{port}"
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        outbox = work / "outbox"
        log = open(work / "server.log", "wb")
        server = start_web_app(binary, port, work, log)
        browsers = []
        try:
            rc.wait_for_server(NAME, server, port)
            a = Browser("a", base, work / "profile-a")
            browsers.append(a)
            run(a, base, outbox, work)
            insecure_cookie_is_explained(port, work / "server.log")
        finally:
            for browser in browsers:
                browser.quit()
            server.terminate()
            server.wait(timeout=10)
    print(f"[{NAME}] the web app works in Chromium; screenshots in {SHOTS}")


def insecure_cookie_is_explained(port, log):
    """Served over plain http under another name than localhost, the Secure cookie would
    be dropped by browsers: the app says so in its log, once."""
    for _ in range(2):
        request = (f"GET /login HTTP/1.1\r\nHost: app.example:{port}\r\n"
                   "Connection: close\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(request)
            while s.recv(4096):
                pass
    time.sleep(0.2)
    text = log.read_text(errors="replace")
    warnings = text.count("browsers drop this Secure session cookie")
    check(warnings == 1, f"the insecure-cookie warning appeared {warnings} times:\n{text}")
    check("app.example" in text, "the warning names the host")


def run(a, base, outbox, work):
    a.open("/")
    a.shot("home")

    # Register; the confirmation link is in the outbox.
    a.open("/register")
    a.fill({"email": EMAIL, "password": PASSWORD})
    a.shot("register")
    a.click("submit")
    check(a.path() == "/login", f"after registering: {a.path()}")
    check("Check your email" in a.text("flash"), f"flash: {a.text('flash')!r}")
    a.shot("registered")

    # Not confirmed yet: the login says so, on the form.
    a.fill({"email": EMAIL, "password": PASSWORD})
    a.click("submit")
    check("Confirm your email" in a.text("error"), f"error: {a.text('error')!r}")
    a.shot("unconfirmed")

    link = newest_link(outbox, EMAIL)
    check(link.startswith(base + "/confirm?token="), f"link: {link}")
    a.driver.get(link)
    # The confirmation keeps the password only when it is given again (whoever registered
    # an address first must not keep a password its owner never chose).
    a.fill({"password": PASSWORD})
    a.shot("confirm-page")
    a.click("submit")
    check("confirmed" in a.text("flash"), f"flash: {a.text('flash')!r}")
    check(a.path() == "/login", f"after confirming with the password: {a.path()}")

    # A guarded page sends the browser to the login page and back.
    a.open("/sessions")
    check(a.path() == "/login?next=%2Fsessions", f"guarded page: {a.path()}")
    a.shot("login")
    a.fill({"email": EMAIL, "password": PASSWORD})
    a.click("remember_me")
    a.click("submit")
    check(a.path() == "/sessions", f"back via next: {a.path()}")
    a.shot("sessions-after-login")

    # The session cookie, as the browser keeps it.
    cookie = a.driver.get_cookie("__Host-session_id")
    check(cookie is not None, f"cookies: {a.driver.get_cookies()}")
    check(cookie["httpOnly"] is True, f"HttpOnly: {cookie}")
    check(cookie.get("sameSite") == "Lax", f"SameSite: {cookie}")
    check(cookie["secure"] is True, f"Secure (localhost counts as secure): {cookie}")
    check(cookie["path"] == "/" and "domain" in cookie, f"path: {cookie}")
    check("expiry" in cookie, f"remember me makes it persistent: {cookie}")

    # Change the password.
    a.open("/profile")
    a.fill({"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    a.click("change-password")
    check("password is changed" in a.text("flash"), f"flash: {a.text('flash')!r}")
    a.shot("password-changed")

    # A second browser logs in with the new password.
    b = Browser("b", base, work / "profile-b")
    try:
        b.open("/login")
        b.fill({"email": EMAIL, "password": NEW_PASSWORD})
        b.click("submit")
        check(b.path() == "/", f"b after login: {b.path()}")
        b.open("/profile")
        check(b.text("profile-email") == EMAIL, "b sees the profile")
        b.shot("profile")

        # The first sees both sessions and ends the other one.
        a.open("/sessions")
        rows = a.driver.find_elements(By.CSS_SELECTOR, "tr.session")
        check(len(rows) == 2, f"sessions listed: {len(rows)}")
        a.shot("two-sessions")
        a.submit(a.driver.find_element(By.CSS_SELECTOR, "button.end-session"))
        check("has ended" in a.text("flash"), f"flash: {a.text('flash')!r}")
        check(len(a.driver.find_elements(By.CSS_SELECTOR, "tr.session")) == 1, "one left")
        a.shot("one-session")

        # The ended browser is sent to the login page.
        b.open("/profile")
        check(b.path().startswith("/login?next="), f"b after being ended: {b.path()}")
        b.shot("sent-to-login")
    finally:
        b.quit()

    # Log out with the plain form.
    a.open("/profile")
    a.click("logout")
    check(a.path() == "/login", f"after logout: {a.path()}")
    check("logged out" in a.text("flash"), f"flash: {a.text('flash')!r}")
    a.shot("logged-out")
    a.open("/profile")
    check(a.path().startswith("/login"), f"profile after logout: {a.path()}")

    # Log in with a magic link.
    a.open("/magic")
    a.fill({"email": EMAIL})
    a.click("submit")
    check("link is on its way" in a.text("flash"), f"flash: {a.text('flash')!r}")
    link = newest_link(outbox, EMAIL, base + "/magic/login?token=")
    check(link.startswith(base + "/magic/login?token="), f"magic link: {link}")
    a.driver.get(link)
    a.shot("magic-link")
    a.click("submit")
    check(a.path() == "/profile", f"after the magic link: {a.path()}")

    # Change the email: a link to the new address makes the change.
    new_email = "ada.lovelace@example.com"
    a.fill({"new_email": new_email})
    a.click("change-email")
    check("Check the new address" in a.text("flash"), f"flash: {a.text('flash')!r}")
    a.driver.get(newest_link(outbox, new_email))
    a.click("submit")
    check(a.text("profile-email") == new_email, f"profile: {a.text('profile-email')!r}")
    a.shot("email-changed")
    a.click("logout")

    # Forgot the password: a reset link, a new password, a login with it.
    a.open("/forgot")
    a.fill({"email": new_email})
    a.click("submit")
    link = newest_link(outbox, new_email, base + "/reset?token=")
    check(link.startswith(base + "/reset?token="), f"reset link: {link}")
    a.driver.get(link)
    third = "yet another passphrase, quite long"
    a.fill({"new_password": third})
    a.shot("reset")
    a.click("submit")
    check("password is changed" in a.text("flash"), f"flash: {a.text('flash')!r}")
    a.fill({"email": new_email, "password": third})
    a.click("submit")
    check(a.path() == "/", f"after logging in with the reset password: {a.path()}")

    # Delete the account; its login is gone.
    a.open("/profile")
    a.fill({"delete_password": third})
    a.click("delete-account")
    check("account is deleted" in a.text("flash"), f"flash: {a.text('flash')!r}")
    a.open("/login")
    a.fill({"email": new_email, "password": third})
    a.click("submit")
    check("Wrong email or password" in a.text("error"), f"error: {a.text('error')!r}")
    a.shot("deleted")


if __name__ == "__main__":
    main()
