"""A plain SMTP server that accepts and counts, in its own process, for the benchmark:

    python -m tests.peers.smtp_sink --port 0

prints ``{"port": …, "pid": …}`` once listening and runs until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
from typing import Any

from aiosmtpd.controller import Controller


class Counting:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    if port == 0:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
