"""Runs one Celery client call for an interoperability test and prints the outcome as JSON.

Usage: interop_client.py '<json command>', where the command is
  {"op": "delay", "task": name, "args": [...]}                       -> task.delay(*args)
  {"op": "apply_async", "task": name, "args": [...], "kwargs": {...},
   "countdown": s, "expires": s, "queue": q,
   "time_limit": s, "soft_time_limit": s}                             -> send_task(...)
  {"op": "get", "id": task_id, "timeout": s}                         -> AsyncResult(id).get()
"delay" and "apply_async" also wait for the result when "timeout" is given. With "traceparent"
(a W3C trace context), a before_task_publish handler puts it into the message headers, where
opentelemetry-instrumentation-celery's propagator injects the producer span's context.
"""
import json
import sys

import celery.exceptions
from celery.signals import before_task_publish

from interop_app import app

# Celery's exceptions a test checks that Python code can catch (`except celery.exceptions.X`).
CELERY_EXCEPTIONS = (
    "TimeLimitExceeded",
    "SoftTimeLimitExceeded",
    "NotRegistered",
    "MaxRetriesExceededError",
    "Retry",
    "Reject",
    "Ignore",
    "InvalidTaskError",
    "TaskRevokedError",
)


def outcome(result, timeout):
    try:
        value = result.get(timeout=timeout)
        return {"id": result.id, "status": result.status, "result": value}
    except Exception as error:  # the test asserts on what a Python user would see
        return {
            "id": result.id,
            "status": result.status,
            "exc_type": type(error).__name__,
            "exc_message": str(error),
            "exc_module": type(error).__module__,
            "exc_args": list(error.args),
            "caught_as": [
                name for name in CELERY_EXCEPTIONS
                if isinstance(error, getattr(celery.exceptions, name))
            ],
        }


def main():
    command = json.loads(sys.argv[1])
    op = command["op"]
    if "traceparent" in command:
        def inject(headers=None, **_):
            headers["traceparent"] = command["traceparent"]

        before_task_publish.connect(inject, weak=False)
    if op == "get":
        result = app.AsyncResult(command["id"])
    elif op == "delay":
        result = app.signature(command["task"]).delay(*command.get("args", []))
    elif op == "apply_async":
        keys = ("countdown", "expires", "queue", "time_limit", "soft_time_limit", "headers")
        options = {k: command[k] for k in keys if k in command}
        result = app.send_task(
            command["task"], args=command.get("args", []), kwargs=command.get("kwargs", {}), **options
        )
    else:
        raise SystemExit(f"unknown op {op!r}")
    timeout = command.get("timeout")
    print(json.dumps(outcome(result, timeout) if timeout is not None else {"id": result.id}))


if __name__ == "__main__":
    main()
