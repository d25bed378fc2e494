#!/usr/bin/env python3
"""
End-to-end integration test of the user authentication service (seed task 20).

Each function below queries one end-point of a running server with the
`requests` module and asserts the expected status code, reason phrase and
payload. Run against a started server; it prints nothing when everything is
correct. The server is `http://localhost:5000` unless the environment
variable `E2E_BASE_URL` names another one.
"""
import os
from urllib.parse import urlparse

import requests

BASE_URL = os.environ.get("E2E_BASE_URL", "http://localhost:5000").rstrip("/")


def register_user(email: str, password: str) -> None:
    """Register a new account, then check that the email cannot register twice."""
    data = {"email": email, "password": password}
    r = requests.post(BASE_URL + "/users", data=data)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"email": email, "message": "user created"}

    r = requests.post(BASE_URL + "/users", data=data)
    assert r.status_code == 400, r.text
    assert r.reason == "BAD REQUEST"
    assert r.json() == {"message": "email already registered"}


def log_in_wrong_password(email: str, password: str) -> None:
    """Check that logging in with a wrong password is refused with a 401."""
    data = {"email": email, "password": password}
    r = requests.post(BASE_URL + "/sessions", data=data)
    assert r.status_code == 401, r.text
    assert r.reason == "UNAUTHORIZED"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "session_id" not in r.cookies


def log_in(email: str, password: str) -> str:
    """Log in with the right credentials and return the new session ID."""
    data = {"email": email, "password": password}
    r = requests.post(BASE_URL + "/sessions", data=data)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"email": email, "message": "logged in"}
    session_id = r.cookies.get("session_id")
    assert session_id, r.headers
    return session_id


def profile_unlogged() -> None:
    """Check that the profile is refused with a 403 without a session."""
    r = requests.get(BASE_URL + "/profile")
    assert r.status_code == 403, r.text
    assert r.reason == "FORBIDDEN"


def profile_logged(session_id: str) -> None:
    """Check that the profile of the session's user is served."""
    r = requests.get(BASE_URL + "/profile", cookies={"session_id": session_id})
    assert r.status_code == 200, r.text
    assert r.json() == {"email": EMAIL}


def log_out(session_id: str) -> None:
    """Log out: the 302 to / is followed, and the session is over."""
    cookies = {"session_id": session_id}
    r = requests.delete(BASE_URL + "/sessions", cookies=cookies)
    assert len(r.history) == 1, r.history
    assert r.history[0].status_code == 302
    assert r.history[0].reason == "FOUND"
    location = urlparse(r.history[0].headers["Location"])
    base = urlparse(BASE_URL)
    assert (location.scheme, location.hostname, location.port) == \
        (base.scheme, base.hostname, base.port), location
    assert location.path == "/", location
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Bienvenue"}

    r = requests.get(BASE_URL + "/profile", cookies=cookies)
    assert r.status_code == 403, r.text
    r = requests.delete(BASE_URL + "/sessions", cookies=cookies,
                        allow_redirects=False)
    assert r.status_code == 403, r.text


def reset_password_token(email: str) -> str:
    """Ask for a password reset token and return it."""
    r = requests.post(BASE_URL + "/reset_password", data={"email": email})
    assert r.status_code == 200, r.text
    payload = r.json()
    assert set(payload) == {"email", "reset_token"}, payload
    assert payload["email"] == email
    assert payload["reset_token"]
    return payload["reset_token"]


def update_password(email: str, reset_token: str, new_password: str) -> None:
    """Set a new password with a reset token."""
    data = {
        "email": email,
        "reset_token": reset_token,
        "new_password": new_password,
    }
    r = requests.put(BASE_URL + "/reset_password", data=data)
    assert r.status_code == 200, r.text
    assert r.json() == {"email": email, "message": "Password updated"}


EMAIL = "guillaume@holberton.io"
PASSWD = "b4l0u"
NEW_PASSWD = "t4rt1fl3tt3"


if __name__ == "__main__":

    register_user(EMAIL, PASSWD)
    log_in_wrong_password(EMAIL, NEW_PASSWD)
    profile_unlogged()
    session_id = log_in(EMAIL, PASSWD)
    profile_logged(session_id)
    log_out(session_id)
    reset_token = reset_password_token(EMAIL)
    update_password(EMAIL, reset_token, NEW_PASSWD)
    log_in(EMAIL, NEW_PASSWD)
