"""Runs one Celery client call for an interoperability test and prints the outcome as JSON.

Usage: interop_client.py '<json command>', where the command is
  {"op": "delay", "task": name, "args": [...]}                       -> task.delay(*args)
  {"op": "apply_async", "task": name, "args": [...], "kwargs": {...},
   "countdown": s, "expires": s, "queue": q}                          -> send_task(...)
  {"op": "get", "id": task_id, "timeout": s}                         -> AsyncResult(id).get()
"delay" and "apply_async" also wait for the result when "timeout" is given.
"""
import json
import sys

from interop_app import app


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
        }


def main():
    command = json.loads(sys.argv[1])
    op = command["op"]
    if op == "get":
        result = app.AsyncResult(command["id"])
    elif op == "delay":
        result = app.signature(command["task"]).delay(*command.get("args", []))
    elif op == "apply_async":
        options = {k: command[k] for k in ("countdown", "expires", "queue") if k in command}
        result = app.send_task(
            command["task"], args=command.get("args", []), kwargs=command.get("kwargs", {}), **options
        )
    else:
        raise SystemExit(f"unknown op {op!r}")
    timeout = command.get("timeout")
    print(json.dumps(outcome(result, timeout) if timeout is not None else {"id": result.id}))


if __name__ == "__main__":
    main()
