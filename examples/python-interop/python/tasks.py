"""The Python side: a Celery app whose tasks the TypeScript web app hands work to.

Run its worker from this directory (see the example's README):

    python3 -m celery -A tasks worker -Q python --loglevel INFO

Broker and result backend come from CELERY_BROKER_URL and CELERY_RESULT_BACKEND, as in most
Celery deployments; both default to the local Redis, database 0. The TypeScript side must use the
same URLs.
"""
import os
import re

from celery import Celery

REDIS_URL = "redis://127.0.0.1:6379/0"

app = Celery(
    "python_interop",
    broker=os.environ.get("CELERY_BROKER_URL") or REDIS_URL,
    backend=os.environ.get("CELERY_RESULT_BACKEND") or os.environ.get("CELERY_BROKER_URL") or REDIS_URL,
)
app.conf.update(
    # celery-ts speaks JSON only (Celery's default since 4.0; said here so nobody turns on pickle).
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # These tasks live on the "python" queue; the celery-ts worker consumes "celery", the default.
    # The TypeScript declarations say the same: declareTask(..., { queue: "python" }).
    task_default_queue="python",
    # Store STARTED when a task starts, so GET /tasks/:id can tell queued from running.
    task_track_started=True,
    broker_connection_retry_on_startup=True,
)


@app.task(name="text.word_count")
def word_count(text):
    """How many words a text has: what a web app hands off rather than do in the request."""
    return len(re.findall(r"\w+(?:['’-]\w+)*", text))


@app.task(name="images.thumbnail_size")
def thumbnail_size(width, height, max_side=256):
    """The size of a thumbnail that fits in max_side x max_side, keeping the aspect ratio.

    Raises ValueError for a size that is not positive: a TypeScript caller sees a failure of
    type ValueError (module builtins), with this message.
    """
    if width <= 0 or height <= 0 or max_side <= 0:
        raise ValueError(
            f"an image is at least 1 x 1 pixels and a thumbnail at least 1 pixel wide, "
            f"got {width} x {height} with max_side {max_side}"
        )
    scale = min(1.0, max_side / max(width, height))
    return {"width": max(1, round(width * scale)), "height": max(1, round(height * scale))}
