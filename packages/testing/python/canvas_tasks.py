"""Tasks for the canvas interoperability tests (chains, groups, chords, links across languages).

CANVAS_LOG names a file each run of canvas.py_record appends a JSON line to.
"""
import json
import os

from interop_app import app


@app.task(name="canvas.py_add")
def py_add(a, b):
    return a + b


@app.task(name="canvas.py_tsum")
def py_tsum(values):
    return sum(values)


@app.task(name="canvas.py_fail")
def py_fail(message):
    raise ValueError(message)


@app.task(name="canvas.py_record")
def py_record(value):
    with open(os.environ["CANVAS_LOG"], "a") as log:
        log.write(json.dumps({"by": "python", "value": value}) + "\n")
    return value
