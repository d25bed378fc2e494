"""A real SMTP server for the mail tests (aiosmtpd), on loopback.

Every message it accepts is written to DIR as <nanoseconds>-<random>.eml, exactly as
received, after two headers naming the envelope (X-Envelope-From, X-Envelope-To).
Prints "READY" once it accepts connections, then serves until killed.

    python3 smtp_server.py --port 2525 --dir /tmp/mail [--auth user:pass]
        [--starttls CERT KEY | --smtps CERT KEY]
"""

import argparse
import os
import ssl
import sys
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class WriteToDir:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{uuid.uuid4().hex}"
        partial = os.path.join(self.directory, name + ".part")
        head = (
            f"X-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Envelope-To: {','.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        with open(partial, "wb") as f:
            f.write(head + envelope.original_content)
        os.rename(partial, os.path.join(self.directory, name + ".eml"))
        return "250 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--auth")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    options = {}
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            # handled=False: aiosmtpd itself answers "535" to a failed attempt.
            return AuthResult(success=ok, handled=False)

        options.update(
            authenticator=authenticate, auth_required=True, auth_require_tls=False
        )
    if args.starttls or args.smtps:
        cert, key = args.starttls or args.smtps
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if args.starttls:
            options.update(tls_context=context, require_starttls=True)
        else:
            options.update(ssl_context=context)

    controller = Controller(
        WriteToDir(args.dir), hostname="127.0.0.1", port=args.port, **options
    )
    controller.start()
    print("READY", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
