"""A real SMTP server for eyeward's tests (aiosmtpd, from PyPI).

    sink.py OUT_DIR PORT

Listens on 127.0.0.1:PORT and writes every message it accepts to OUT_DIR/<n>.eml, then its
envelope to OUT_DIR/<n>.json ({"from": ..., "to": [...], "at_ms": when it was accepted}; written
last, so a .json means the message is whole). Alert mail to a "gone@" address is refused for
good (550), as for a mailbox that no longer exists. Prints "smtp listening on PORT" once it
serves; stops on SIGTERM.
"""

import json
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller


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
        with open(base + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos, "at_ms": int(time.time() * 1000)}, f)
        return "250 OK"


def main():
    out, port = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"smtp listening on {port}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


main()
