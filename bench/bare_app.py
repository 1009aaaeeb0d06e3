"""The ceilings: a bare Starlette app served like the fake, answering a fixed JSON body.

    python bench/bare_app.py PORT            the strict ceiling: the body's bytes built once, at
                                             import, and answered as they are (a fixed stub)
    python bench/bare_app.py PORT --json     the earlier ceiling: a JSONResponse of a dict, the
                                             body encoded on every request
    python bench/bare_app.py PORT --asgi     the floor: a raw ASGI app sending the same bytes, no
                                             Starlette (uvicorn's share of a request, alone)

Neither reads the request's body.
"""

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BODY = {"id": "task-unified-1757165031-uyujaw3d", "object": "video.generation.task", "status": "pending", "progress": 0}
# As JSONResponse encodes it, so that both ceilings send the same bytes.
ENCODED = json.dumps(BODY, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


async def prebuilt(request):
    return Response(ENCODED, media_type="application/json")


async def encoded(request):
    return JSONResponse(BODY)


def make_app(endpoint) -> Starlette:
    return Starlette(
        routes=[
            Route("/", endpoint),
            Route("/v1/videos/generations", endpoint, methods=["POST"]),
            Route("/v1/tasks/{task_id}", endpoint),
        ]
    )


app = make_app(prebuilt)
json_app = make_app(encoded)
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", str(len(ENCODED)).encode()), (b"content-type", b"application/json")],
}
ANSWER = {"type": "http.response.body", "body": ENCODED}


async def floor(scope, receive, send):
    if scope["type"] == "http":
        await send(START)
        await send(ANSWER)


if __name__ == "__main__":
    chosen = json_app if "--json" in sys.argv[2:] else floor if "--asgi" in sys.argv[2:] else app
    uvicorn.run(chosen, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
