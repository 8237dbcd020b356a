"""A real SMTP server for eyeward's tests (aiosmtpd, from PyPI).

    sink.py OUT_DIR PORT [--tls|--implicit-tls CERT KEY USER PASSWORD]

Listens on 127.0.0.1:PORT and writes every message it accepts to OUT_DIR/<n>.eml, then its
envelope to OUT_DIR/<n>.json ({"from": ..., "to": [...], "at_ms": when it was accepted}; written
last, and whole at once by a rename, so a .json means the message is whole). Alert mail to a "gone@" address is refused for
good (550), as for a mailbox that no longer exists. With --tls, clients must STARTTLS (with
that certificate) and then log in; with --implicit-tls, speak TLS from the start. Prints "smtp listening on PORT" once it
serves; stops on SIGTERM.
"""

import json
import os
import signal
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = len([f for f in os.listdir(out) if f.endswith(".json")])

    async def handle_DATA(self, server, session, envelope):
        # A mailbox that is gone, as a real server says for good: alerts to "gone@..." bounce.
        if any(r.startswith("gone@") for r in envelope.rcpt_tos) and b"Motion" in envelope.original_content:
            return "550 5.1.1 mailbox unavailable"
        self.count += 1
        base = os.path.join(self.out, f"{self.count:05}")
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        # Written aside and renamed: a reader never finds a .json half-written.
        with open(base + ".json.tmp", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos, "at_ms": int(time.time() * 1000)}, f)
        os.replace(base + ".json.tmp", base + ".json")
        return "250 OK"


class Password:
    """AUTH with one user and password."""

    def __init__(self, user, password):
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == self.user and auth_data.password == self.password
        )
        return AuthResult(success=ok)


def main():
    out, port = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    options = {}
    # --tls / --implicit-tls CERT KEY USER PASSWORD: STARTTLS required (or TLS from the first
    # byte), then AUTH required.
    if len(sys.argv) == 8 and sys.argv[3] in ("--tls", "--implicit-tls"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        login = {"authenticator": Password(sys.argv[6], sys.argv[7]), "auth_required": True}
        if sys.argv[3] == "--tls":
            options = {"tls_context": context, "require_starttls": True, **login}
        else:
            # aiosmtpd only counts STARTTLS as TLS when it offers AUTH; here the whole
            # connection is TLS.
            options = {"ssl_context": context, "auth_require_tls": False, **login}
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print(f"smtp listening on {port}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


main()
