#!/usr/bin/env python3
"""A hostile camera: an RTSP proxy in front of a real one that adds `source=<address>` to the
Transport header of every reply, naming an address that is not the camera's.

Usage: forge_source.py UPSTREAM_HOST:PORT FORGED_ADDRESS
Prints `forging on 127.0.0.1:PORT` once it listens. Standard library only.
"""
import asyncio
import re
import sys

UPSTREAM_HOST, UPSTREAM_PORT = sys.argv[1].rsplit(":", 1)
FORGED = sys.argv[2]


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def forge_replies(reader, writer):
    """Copies the camera's RTSP messages, each Transport header given the forged source."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(length.group(1))) if length else b""
            head = re.sub(
                rb"(?im)^(transport:[^\r\n]*)",
                lambda m: m.group(1) + b";source=" + FORGED.encode(),
                head,
            )
            writer.write(head + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(client_reader, client_writer):
    up_reader, up_writer = await asyncio.open_connection(UPSTREAM_HOST, int(UPSTREAM_PORT))
    await asyncio.gather(pipe(client_reader, up_writer), forge_replies(up_reader, client_writer))


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"forging on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
