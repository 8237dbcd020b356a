#!/usr/bin/env python3
"""A map tile server for the tests: answers `/{z}/{x}/{y}.png` with a 256×256 PNG, a tint of
its own for every tile and a border, so that a screenshot shows the tiles' grid (no map data
exists on this closed network). Prints `tiles on http://127.0.0.1:PORT` once it listens, then
`tile Z/X/Y` for every tile served. Standard library only.
"""
import http.server
import re
import struct
import sys
import threading
import zlib

SIZE = 256


def png(z, x, y):
    tint = ((x * 67 + z * 13) % 96 + 150, (y * 89 + z * 29) % 96 + 150, 200)
    rows = []
    for row in range(SIZE):
        line = bytearray([0])
        for col in range(SIZE):
            edge = row in (0, SIZE - 1) or col in (0, SIZE - 1)
            line += bytes((90, 90, 90) if edge else tint)
        rows.append(bytes(line))

    def chunk(kind, data):
        body = kind + data
        return struct.pack("!I", len(data)) + body + struct.pack("!I", zlib.crc32(body))

    header = struct.pack("!IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


# Held while a line is printed.
PRINTING = threading.Lock()


class Tiles(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        m = re.fullmatch(r"/(\d+)/(\d+)/(\d+)\.png", self.path)
        if not m:
            self.send_error(404)
            return
        z, x, y = (int(g) for g in m.groups())
        body = png(z, x, y)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        # One write per line, under a lock: the server's threads print at once, and print()
        # writes the text and its newline apart, so lines could run together.
        with PRINTING:
            sys.stdout.write(f"tile {z}/{x}/{y}\n")
            sys.stdout.flush()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
print(f"tiles on http://127.0.0.1:{server.server_address[1]}", flush=True)
sys.stdout.flush()
server.serve_forever()
