"""A WebSocket echo server built on Python's `websockets` package, which squall's tests
use as a target this project did not write (tests/external.rs).

It listens on 127.0.0.1 on a port the OS picks, prints that port on stdout (one line),
and sends every message back to its sender. It stops when its stdin closes, so it
cannot outlive the test that started it, or when killed.

    python3 -m pip install websockets
    python3 tests/data/echo_server.py
"""

import asyncio
import sys

from websockets.exceptions import ConnectionClosed

try:
    from websockets.asyncio.server import serve  # websockets 13 and later
except ImportError:  # pragma: no cover - older releases
    from websockets import serve


async def echo(websocket, *_path):
    try:
        async for message in websocket:
            await websocket.send(message)
    except ConnectionClosed:
        # squall resets connections on purpose; that is not this server's error.
        pass


async def main():
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)


if __name__ == "__main__":
    asyncio.run(main())
