"""Serve a fake provider's ASGI app on a listening socket inherited from the test.

    python -m tests.peers.serve_fake MODULE:APP FD [CERTFILE KEYFILE]

uvicorn's own ``--fd`` takes any inherited socket for a Unix socket, so TCP_NODELAY is never
set and every small answer waits for a delayed ACK (about 40 ms); here the socket is
rebuilt from its descriptor with its real family.
"""

from __future__ import annotations

import asyncio
import socket
import sys

import uvicorn


def main(argv: list[str]) -> None:
    app, fd = argv[0], int(argv[1])
    sock = socket.socket(fileno=fd)
    tls = {"ssl_certfile": argv[2], "ssl_keyfile": argv[3]} if len(argv) >= 4 else {}
    config = uvicorn.Config(app, log_level="warning", access_log=False, **tls)  # type: ignore[arg-type]
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main(sys.argv[1:])
