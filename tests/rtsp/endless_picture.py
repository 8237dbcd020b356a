#!/usr/bin/env python3
"""A hostile camera: an RTSP server whose one picture never ends. After PLAY it sends pieces
of one H.264 keyframe (FU-A fragments, one RTP timestamp, never the last piece) over the
transport the client set up, interleaved on the RTSP connection or to the client's UDP port,
until the client closes the RTSP connection or LIMIT bytes have gone.

Usage: endless_picture.py HOST LIMIT_BYTES
Prints `endless picture on rtsp://HOST:PORT/live` once it listens, then, for each connection
that played, `cut off after N bytes` or `never cut off: N bytes sent`. Standard library only.
"""
import socket
import struct
import sys
import threading
import time

HOST = sys.argv[1]
LIMIT = int(sys.argv[2])
# A 320x240 baseline stream's parameter sets (made once with ffmpeg and x264).
SPROP = "Z0LAC9kBQfsBEAAAAwAQAAADAUDxQqSA,aMuDyyA="
PIECE = 1400


def sdp(host):
    return (
        f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=endless\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        f"a=fmtp:96 packetization-mode=1;profile-level-id=42c00b;sprop-parameter-sets={SPROP}\r\n"
        "a=control:trackID=0\r\n"
    )


def read_request(reader):
    """The next request's method and headers (lower-case names), or None at the end."""
    line = reader.readline()
    while line in (b"\r\n", b"\n"):
        line = reader.readline()
    if not line:
        return None
    method = line.split(b" ")[0].decode()
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    reader.read(int(headers.get("content-length", "0")))
    return method, headers


class Connection:
    def __init__(self, conn):
        self.conn = conn
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.udp = None  # (socket, client address) once set up over UDP

    def send(self, data):
        with self.lock:
            self.conn.sendall(data)

    def reply(self, cseq, extra="", body=""):
        head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        self.send((head + "\r\n" + body).encode())

    def serve(self):
        reader = self.conn.makefile("rb")
        host, port = self.conn.getsockname()[:2]
        session = "Session: 4711;timeout=60\r\n"
        try:
            while (request := read_request(reader)) is not None:
                method, headers = request
                cseq = headers.get("cseq", "0")
                if method == "DESCRIBE":
                    base = f"rtsp://{host}:{port}/live/"
                    self.reply(
                        cseq,
                        f"Content-Base: {base}\r\nContent-Type: application/sdp\r\n",
                        sdp(host),
                    )
                elif method == "SETUP":
                    transport = headers.get("transport", "")
                    if "client_port=" in transport:
                        client_port = int(transport.split("client_port=")[1].split("-")[0])
                        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        udp.bind((host, 0))
                        server_port = udp.getsockname()[1]
                        self.udp = (udp, (self.conn.getpeername()[0], client_port))
                        spec = (
                            f"RTP/AVP;unicast;client_port={client_port}-{client_port + 1};"
                            f"server_port={server_port}-{server_port + 1}"
                        )
                    else:
                        spec = "RTP/AVP/TCP;unicast;interleaved=0-1"
                    self.reply(cseq, f"Transport: {spec}\r\n{session}")
                elif method == "PLAY":
                    self.reply(cseq, f"{session}RTP-Info: url=rtsp://{host}:{port}/live/trackID=0;seq=1;rtptime=90000\r\n")
                    threading.Thread(target=self.play, daemon=True).start()
                elif method == "TEARDOWN":
                    self.reply(cseq, session)
                    break
                else:
                    self.reply(cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n")
        except OSError:
            pass
        finally:
            self.closed.set()

    def play(self):
        sent, seq = 0, 1
        try:
            while not self.closed.is_set() and sent < LIMIT:
                # FU-A of an IDR slice: the first piece starts it; none ends it.
                fu = bytes([0x7C, (0x80 if seq == 1 else 0x00) | 5])
                rtp = struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, 90000, 0x5EED) + fu
                packet = rtp + b"\x55" * PIECE
                if self.udp:
                    self.udp[0].sendto(packet, self.udp[1])
                else:
                    self.send(b"$\x00" + struct.pack("!H", len(packet)) + packet)
                sent += len(packet)
                seq += 1
                if seq % 64 == 0:
                    time.sleep(0.001)
        except OSError:
            pass
        if self.closed.wait(timeout=5) and sent < LIMIT:
            print(f"cut off after {sent} bytes", flush=True)
        else:
            print(f"never cut off: {sent} bytes sent", flush=True)


def main():
    listener = socket.create_server((HOST, 0))
    print(f"endless picture on rtsp://{HOST}:{listener.getsockname()[1]}/live", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=Connection(conn).serve, daemon=True).start()


main()
