"""A Python Celery app for interoperability tests: the peer celery-ts must share queues with.

Configured from the environment, as Celery deployments usually are:
CELERY_BROKER_URL, CELERY_RESULT_BACKEND, and INTEROP_LOG (a file each run of
interop.record appends "<n> python" to).
"""
import os

from celery import Celery

app = Celery(
    "interop",
    broker=os.environ["CELERY_BROKER_URL"],
    backend=os.environ.get("CELERY_RESULT_BACKEND") or None,
)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


@app.task(name="interop.add")
def add(a, b):
    return a + b


@app.task(name="interop.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="interop.echo")
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@app.task(name="interop.record")
def record(n):
    with open(os.environ["INTEROP_LOG"], "a") as log:
        log.write(f"{n} python\n")
    return n * 2
