"""Builds a canvas in Python, applies it and prints the outcome as JSON (canvas interop tests).

Usage: canvas_client.py '<json command>' with
  {"expr": "<python expression>", "py_queue": q, "ts_queue": q, "timeout": s}
or {"script": "<python statements that set result>", ...} for what no expression builds.
The expression sees Celery's canvas (signature, chain, group, chord, chunks) and two helpers:
py("add", 1, 2) is a signature of canvas.py_add routed to py_queue, ts("add", 3) one of
canvas.ts_add routed to ts_queue; append .si-style immutability with py_i / ts_i.
Or {"restore": group_id, "timeout": s}: GroupResult.restore(id).get().
"""
import json
import sys

from celery import chain, chord, chunks, group, signature  # noqa: F401 (used by expressions)
from celery.result import GroupResult

from interop_app import app


def main():
    command = json.loads(sys.argv[1])
    timeout = command.get("timeout", 30)
    if "restore" in command:
        restored = GroupResult.restore(command["restore"], app=app)
        print(json.dumps({"ids": [r.id for r in restored.results],
                          "result": restored.get(timeout=timeout)}))
        return

    def py(name, *args, **options):
        return signature(f"canvas.py_{name}", args, queue=command["py_queue"], app=app, **options)

    def ts(name, *args, **options):
        return signature(f"canvas.ts_{name}", args, queue=command["ts_queue"], app=app, **options)

    def py_i(name, *args, **options):
        return py(name, *args, immutable=True, **options)

    def ts_i(name, *args, **options):
        return ts(name, *args, immutable=True, **options)

    names = {**globals(), "app": app, "py": py, "ts": ts, "py_i": py_i, "ts_i": ts_i}
    if "script" in command:
        # Statements that leave the result to wait for in `result` (test input, as expr).
        exec(command["script"], names)
        result = names["result"]
    else:
        canvas = eval(command["expr"], names)  # test input, written by the test itself
        result = canvas.apply_async(**command.get("apply_options", {}))
    outcome = {"id": result.id}
    if command.get("save"):
        result.save()
    try:
        outcome["result"] = result.get(timeout=timeout)
        outcome["status"] = getattr(result, "status", None)
    except Exception as error:  # the test asserts on what a Python user would see
        outcome["exc_type"] = type(error).__name__
        outcome["exc_message"] = str(error)
    if command.get("parents"):
        parents, node = [], result.parent
        while node is not None:
            parents.append(node.id)
            node = node.parent
        outcome["parents"] = parents
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
