"""sse-starlette under uvicorn: the ASGI baseline of bench/alternatives.py.

The smallest app that does what Relay's streams do, written the way the
sse-starlette documentation suggests: every connection gets an `asyncio.Queue`
of its own, `EventSourceResponse` pings it, and publishing means putting the
event into every subscriber's queue of a channel.

    uvicorn bench.apps.starlette_app:app --port 8001

Routes: `GET /events?channel=C` (the stream; the first event leaves at once),
`POST /publish?channel=C` (the body, as text, becomes one event's data; the
answer says how many queues got it) and `GET /healthz` (open streams).
BENCH_PING_SECONDS sets the ping interval (default 15).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PING = float(os.environ.get("BENCH_PING_SECONDS", "15"))
channels: dict[str, set[asyncio.Queue[str]]] = {}


async def events(request: Request) -> EventSourceResponse:
    channel = request.query_params.get("channel", "default")
    queue: asyncio.Queue[str] = asyncio.Queue()
    subscribers = channels.setdefault(channel, set())
    subscribers.add(queue)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(comment="hello", retry=2000)  # first bytes at once, as Relay sends
            while True:
                yield ServerSentEvent(data=await queue.get())
        finally:
            subscribers.discard(queue)

    return EventSourceResponse(stream(), ping=PING, headers={"Cache-Control": "no-cache",
                                                             "X-Accel-Buffering": "no"})


async def publish(request: Request) -> JSONResponse:
    channel = request.query_params.get("channel", "default")
    data = (await request.body()).decode()
    subscribers = list(channels.get(channel, ()))
    for queue in subscribers:
        queue.put_nowait(data)
    return JSONResponse({"delivered": len(subscribers)})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "streams": sum(len(s) for s in channels.values())})


app = Starlette(routes=[
    Route("/events", events),
    Route("/publish", publish, methods=["POST"]),
    Route("/healthz", health),
])
