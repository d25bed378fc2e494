"""Second factors in a real browser: examples/web_app.rs in Debian's headless Chromium,
driven by Selenium through Debian's chromedriver, with Chromium's WebDriver virtual
authenticator (CTAP2, internal, resident keys, user verification) standing in for the
person's device. The page is served on `localhost`, which WebAuthn counts as secure.

Register and confirm -> set up an authenticator app (the code computed here, RFC 6238
with Python's own HMAC) and see the recovery codes -> log out, log in with the password
and the code -> add a passkey, rename it -> log out, sign in with the passkey alone ->
log out, log in with the password and use the passkey as the second step -> remove the
passkey. A screenshot of every page goes to target/browser-screenshots/.

    python3 tests/e2e/second_factors_browser.py   # needs cargo, chromium, chromium-driver, selenium

Exits non-zero, saying what went wrong, on any failure.
"""

import base64
import hashlib
import hmac
import pathlib
import shutil
import struct
import sys
import tempfile
import time

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions
from selenium.webdriver.support.ui import WebDriverWait

import readme_console as rc
from browser import Browser, CHROMEDRIVER, CHROMIUM, free_port, newest_link, start_web_app

NAME = "second-factors-browser"
SHOTS = rc.ROOT / "target" / "browser-screenshots"
EMAIL = "grace@example.com"
PASSWORD = "correct horse battery staple"
KEY = base64.b64encode(bytes(range(32))).decode()


def check(condition, message):
    if not condition:
        rc.fail(NAME, message)


def totp(secret_base32, at=None):
    """RFC 6238: HMAC-SHA-1 of the 30-second step, 6 digits."""
    secret = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    step = int((time.time() if at is None else at) // 30)
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06}"


def fresh_code(secret, used):
    """A code of a time step not used yet (each step's code works once)."""
    while True:
        code = totp(secret)
        if code not in used:
            used.add(code)
            return code
        time.sleep(1)


def press_unless_gone(browser, element_id):
    """Clicks `element_id` while the login page still shows it: the autofill request the
    page made may already have been answered by the authenticator just attached, and the
    browser be on its way (either way the passkey signs in)."""
    found = browser.driver.find_elements(By.ID, element_id)
    if found and browser.path().startswith("/login"):
        try:
            found[0].click()
        except WebDriverException:
            pass


def wait_for_path(browser, wanted, seconds=15):
    try:
        WebDriverWait(browser.driver, seconds).until(lambda _: browser.path() == wanted)
    except Exception:
        rc.fail(NAME, f"expected {wanted}, at {browser.path()}: {browser.text('error')!r}")


def main():
    for tool in (CHROMIUM, CHROMEDRIVER):
        check(shutil.which(tool) or pathlib.Path(tool).exists(),
              f"{tool} is missing: apt-get install chromium chromium-driver")
    binary = rc.built_example(NAME, "web_app")
    port = free_port()
    base = f"http://localhost:{port}"
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        outbox = work / "outbox"
        log = open(work / "server.log", "wb")
        server = start_web_app(binary, port, work, log, "--second-factor-key", KEY)
        browser = None
        try:
            rc.wait_for_server(NAME, server, port)
            browser = Browser("2fa", base, work / "profile")
            run(browser, base, outbox)
        except SystemExit:
            print((work / "server.log").read_text(errors="replace"), file=sys.stderr)
            raise
        finally:
            if browser:
                browser.quit()
            server.terminate()
            server.wait(timeout=10)
    print(f"[{NAME}] second factors and passkeys work in Chromium; screenshots in {SHOTS}")


def run(a, base, outbox):
    used = set()
    a.open("/register")
    a.fill({"email": EMAIL, "password": PASSWORD})
    a.click("submit")
    a.driver.get(newest_link(outbox, EMAIL))
    a.fill({"password": PASSWORD})
    a.click("submit")
    a.fill({"email": EMAIL, "password": PASSWORD})
    a.click("submit")
    check(a.path() == "/", f"after the first login: {a.path()}")

    # An authenticator app: the secret from the page, the code computed here.
    a.open("/security")
    a.shot("security-empty")
    a.fill({"totp-password": PASSWORD})
    a.click("setup-totp")
    secret = a.text("totp-secret")
    check(len(secret) == 32, f"secret shown: {secret!r}")
    check(a.driver.find_elements(By.CSS_SELECTOR, "#qr svg"), "a QR code is shown")
    a.shot("totp-enrol")
    a.fill({"code": fresh_code(secret, used)})
    a.click("confirm-totp")
    codes = [li.text for li in a.driver.find_elements(By.CSS_SELECTOR, "#recovery-codes li")]
    check(len(codes) == 10, f"recovery codes shown: {codes}")
    a.shot("recovery-codes")

    # Log out; the password alone now leads to the second step.
    a.click("logout")
    a.open("/login")
    a.fill({"email": EMAIL, "password": PASSWORD})
    a.click("submit")
    check(a.path().startswith("/login/second-factor"), f"after the password: {a.path()}")
    check(a.driver.get_cookie("__Host-session_id") is None, "no session before the code")
    a.shot("second-step")
    a.fill({"code": "000000"})
    a.click("submit-code")
    check("wrong" in a.text("error"), f"wrong code: {a.text('error')!r}")
    a.fill({"code": fresh_code(secret, used)})
    a.click("submit-code")
    check(a.path() == "/", f"after the code: {a.path()}")
    check(a.driver.get_cookie("__Host-session_id") is not None, "a session after the code")

    # A passkey, on Chromium's virtual authenticator.
    options = VirtualAuthenticatorOptions()
    options.protocol = VirtualAuthenticatorOptions.Protocol.CTAP2
    options.transport = VirtualAuthenticatorOptions.Transport.INTERNAL
    options.has_resident_key = True
    options.has_user_verification = True
    options.is_user_verified = True
    a.driver.add_virtual_authenticator(options)
    a.open("/security")
    a.fill({"passkey-password": PASSWORD})
    a.driver.find_element(By.ID, "add-passkey").click()
    WebDriverWait(a.driver, 15).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "tr.passkey") or d.find_elements(By.ID, "error"))
    check(not a.text("error"), f"adding a passkey: {a.text('error')!r}")
    credentials = a.driver.get_credentials()
    check(len(credentials) == 1 and credentials[0].is_resident_credential,
          f"a discoverable credential on the authenticator: {credentials}")
    field = a.driver.find_element(By.CSS_SELECTOR, ".rename-field")
    field.clear()
    field.send_keys("laptop")
    a.submit(a.driver.find_element(By.CSS_SELECTOR, "button.rename-passkey"))
    names = [td.text for td in a.driver.find_elements(By.CSS_SELECTOR, "td.passkey-name")]
    check(names == ["laptop"], f"passkeys listed: {names}")
    a.shot("passkey-added")

    # Sign in with the passkey alone: no email, no password, no code. The login page asks
    # the browser at once (conditional UI: offered in the email field's autofill), and the
    # virtual authenticator answers it.
    a.click("logout")
    a.open("/login")
    wait_for_path(a, "/")
    a.open("/profile")
    check(a.text("profile-email") == EMAIL, f"signed in with the passkey: {a.path()}")
    a.shot("signed-in-with-passkey")

    # The same with the button, the authenticator detached before logging out (or the
    # login page the logout lands on would sign in again through the autofill) and
    # attached again once the page is shown.
    credential = a.driver.get_credentials()[0]
    a.driver.remove_virtual_authenticator()
    a.click("logout")
    a.open("/login?next=%2Fprofile")
    a.shot("login-with-passkey")
    a.driver.add_virtual_authenticator(options)
    a.driver.add_credential(credential)
    press_unless_gone(a, "passkey-login")
    wait_for_path(a, "/profile")
    check(a.text("profile-email") == EMAIL, "signed in with the passkey button")

    # The passkey as the second step of a password login (no authenticator attached while
    # the password is typed, so the autofill offers nothing).
    credential = a.driver.get_credentials()[0]
    a.driver.remove_virtual_authenticator()
    a.click("logout")
    a.open("/login?next=%2Fprofile")
    a.fill({"email": EMAIL, "password": PASSWORD})
    a.click("submit")
    check(a.path().startswith("/login/second-factor"), f"after the password: {a.path()}")
    check("passkey" in a.path(), f"the passkey is offered: {a.path()}")
    a.shot("second-step-with-passkey")
    a.driver.add_virtual_authenticator(options)
    a.driver.add_credential(credential)
    a.driver.find_element(By.ID, "use-passkey").click()
    wait_for_path(a, "/profile")
    check(a.text("profile-email") == EMAIL, "logged in after the passkey step")

    # Remove the passkey (the password confirms it).
    a.open("/security")
    a.driver.find_element(By.CSS_SELECTOR, ".remove-password").send_keys(PASSWORD)
    a.submit(a.driver.find_element(By.CSS_SELECTOR, "button.remove-passkey"))
    check("removed" in a.text("flash"), f"flash: {a.text('flash')!r}")
    check(a.driver.find_elements(By.ID, "no-passkeys"), "no passkey listed")
    a.shot("passkey-removed")

    # A recovery code works once.
    a.click("logout")
    a.open("/login")
    a.fill({"email": EMAIL, "password": PASSWORD})
    a.click("submit")
    a.fill({"recovery_code": codes[0]})
    a.click("submit-recovery")
    check(a.path() == "/", f"after a recovery code: {a.path()}")


if __name__ == "__main__":
    main()
