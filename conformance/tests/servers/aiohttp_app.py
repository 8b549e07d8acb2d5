"""A small aiohttp service, shut down the way aiohttp's documentation teaches.

`web.run_app` handles SIGTERM and SIGINT itself: it stops accepting, waits
up to `shutdown_timeout` for the handlers in progress, runs the cleanup
hooks and exits. Nothing here knows about the conformance kit; app mode
checks it from outside:

    graceful-conformance app --port-env PORT --slow '/sleep?ms={ms}' \
        --probe /health/live -- python3 conformance/tests/servers/aiohttp_app.py

Routes: `GET /sleep?ms=N` answers `slept N` after N ms; `GET /health/live`
answers `live`. The port comes from `PORT` (default 8080), on 127.0.0.1.
"""

import asyncio
import os
import sys

from aiohttp import web


async def sleep(request: web.Request) -> web.Response:
    try:
        ms = int(request.query["ms"])
    except (KeyError, ValueError):
        return web.Response(status=400, text="ms must be a number")
    await asyncio.sleep(ms / 1000)
    return web.Response(text=f"slept {ms}")


async def live(_request: web.Request) -> web.Response:
    return web.Response(text="live")


async def close_resources(_app: web.Application) -> None:
    print("aiohttp_app: resources closed", file=sys.stderr, flush=True)


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    app = web.Application()
    app.add_routes([web.get("/sleep", sleep), web.get("/health/live", live)])
    app.on_cleanup.append(close_resources)
    web.run_app(app, host="127.0.0.1", port=port, shutdown_timeout=30, print=None)


if __name__ == "__main__":
    main()
