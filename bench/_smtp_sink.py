"""An SMTP sink in its own process, for benchmarks: `python -m bench._smtp_sink PORT`.

aiosmtpd on 127.0.0.1:PORT accepts every message and keeps only a count, so the sink costs
the same for the baseline and the pipeline and does not share the benchmark's GIL. It
prints "ready" once listening, and on SIGTERM (or stdin closing) prints the number of
messages it accepted and exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session


class CountingHandler:
    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.accepted += 1
        return "250 OK"


async def serve(port: int) -> int:
    handler = CountingHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.localhost", data_size_limit=None),
        host="127.0.0.1",
        port=port,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    return handler.accepted


def main() -> int:
    port = int(sys.argv[1])
    accepted = asyncio.run(serve(port))
    print(f"accepted {accepted}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
