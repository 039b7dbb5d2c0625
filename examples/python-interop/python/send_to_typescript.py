"""Sends work to the TypeScript worker (src/tasks.ts) from Python, and prints what comes back.

Start the TypeScript side first (`pnpm start` in examples/python-interop), then, from this
directory:

    python3 send_to_typescript.py

Python needs no TypeScript code, only the task names: reports.summarize is implemented in
src/tasks.ts and registered by the celery-ts worker, which consumes the default "celery" queue.
"""
import json
import os
import sys

from celery import Celery
from celery.exceptions import TimeoutError as ResultTimeout

REDIS_URL = "redis://127.0.0.1:6379/0"

# A producer's app: same broker and result backend as the TypeScript worker, no tasks of its own.
app = Celery(
    "send_to_typescript",
    broker=os.environ.get("CELERY_BROKER_URL") or REDIS_URL,
    backend=os.environ.get("CELERY_RESULT_BACKEND") or os.environ.get("CELERY_BROKER_URL") or REDIS_URL,
)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])

TIMEOUT = 30  # seconds to wait for each result; is the TypeScript worker running?


def show(call, value):
    print(f"{call} -> {json.dumps(value, sort_keys=True)}")


def main():
    # 1. By name, with positional and keyword arguments. The TypeScript task declares its
    #    parameter names, so they bind as in Python: summarize(numbers, precision=1).
    numbers = [3, 1, 4, 1, 5, 9, 2, 6]
    result = app.send_task("reports.summarize", args=[numbers], kwargs={"precision": 1})
    show(
        f'send_task("reports.summarize", args=[{numbers}], kwargs={{"precision": 1}})',
        result.get(timeout=TIMEOUT),
    )

    # 2. .delay() on a signature: the same message, written as a call.
    result = app.signature("reports.summarize").delay([2.5, 7.5, 10])
    show('signature("reports.summarize").delay([2.5, 7.5, 10])', result.get(timeout=TIMEOUT))

    # 3. A TypeScript failure raises in Python. The task throws a TypeError for a list that is not
    #    all numbers; celery-ts stores errors named like Python's built-in exceptions with module
    #    "builtins", so .get() raises Python's own TypeError, and `except TypeError` catches it.
    bad = [1, "two", 3]
    result = app.send_task("reports.summarize", args=[bad])
    try:
        value = result.get(timeout=TIMEOUT)
    except TypeError as error:
        print(f'send_task("reports.summarize", args=[{bad}]) raised TypeError: {error}')
        # The traceback is the TypeScript stack; its second line says where the error was thrown.
        where = (result.traceback or "").strip().splitlines()[1:2]
        print(f"  {result.state}, thrown {where[0].strip() if where else 'in TypeScript'}")
    else:
        print(f"expected a TypeError, got {value!r}", file=sys.stderr)
        return 1

    # 4. The same for an error class of the TypeScript task's own: src/tasks.ts names it
    #    ValueError, so Python raises its ValueError for an empty list.
    result = app.signature("reports.summarize").delay([])
    try:
        value = result.get(timeout=TIMEOUT)
    except ValueError as error:
        print(f'signature("reports.summarize").delay([]) raised ValueError: {error}')
    else:
        print(f"expected a ValueError, got {value!r}", file=sys.stderr)
        return 1

    print("done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ResultTimeout:
        print(
            f"no result within {TIMEOUT} s: is the TypeScript worker running (pnpm start), "
            f"on the same Redis ({app.conf.broker_url})?",
            file=sys.stderr,
        )
        sys.exit(2)
