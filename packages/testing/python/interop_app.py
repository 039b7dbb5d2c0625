"""A Python Celery app for interoperability tests: the peer celery-ts must share queues with.

Configured from the environment, as Celery deployments usually are:
CELERY_BROKER_URL, CELERY_RESULT_BACKEND, CELERY_TASK_DEFAULT_QUEUE (default "celery": a test
that shares its database with others gives delay() a queue of its own), and INTEROP_LOG (a file
each run of interop.record appends "<n> python" to).
"""
import os
import time

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
    task_default_queue=os.environ.get("CELERY_TASK_DEFAULT_QUEUE") or "celery",
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


@app.task(name="interop.bind")
def bind(a, b, c=10):
    return [a, b, c]


@app.task(name="interop.identity")
def identity(value):
    return value


@app.task(bind=True, name="interop.header")
def header(self, name):
    """A header of this task's message (custom headers become request attributes)."""
    return getattr(self.request, name, None)


@app.task(name="interop.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="interop.trace_context", bind=True)
def trace_context(self):
    # Where opentelemetry-instrumentation-celery's getter reads the producer's context from:
    # attributes of task.request, which Celery fills from the message headers.
    return {key: getattr(self.request, key, None) for key in ("traceparent", "tracestate")}


import canvas_tasks  # noqa: E402,F401 (registers the canvas interop tasks on this app)
