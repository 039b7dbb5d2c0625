"""Python Celery's side of `pnpm bench`: the same no-op task, on the broker and backend given."""
import os

from celery import Celery

app = Celery("bench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"])
app.conf.broker_transport_options = {"global_keyprefix": os.environ.get("BENCH_PREFIX", "")}
app.conf.worker_hijack_root_logger = True


@app.task(name="bench.noop")
def noop(n):
    return n
