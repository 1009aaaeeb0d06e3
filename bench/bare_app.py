"""The ceiling: a bare Starlette app that answers a fixed JSON body, served like the fake.

python bench/bare_app.py PORT
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

BODY = {"id": "task-unified-1757165031-uyujaw3d", "object": "video.generation.task", "status": "pending", "progress": 0}


async def fixed(request):
    return JSONResponse(BODY)


app = Starlette(
    routes=[
        Route("/", fixed),
        Route("/v1/videos/generations", fixed, methods=["POST"]),
        Route("/v1/tasks/{task_id}", fixed),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
