"""Remote control and events from Python Celery, for interoperability tests.

Usage: control_client.py '<json command>', printing one JSON line:
  {"op": "broadcast", "method": m, "arguments": {...}, "destination": [...], "timeout": s,
   "clock": n}
      -> app.control.broadcast(m, reply=True, ...): the list of replies; with "clock", the
         mailbox's Lamport clock is first moved past n (so the request carries a later clock)
  {"op": "revoke", "id": task_id, "terminate": bool, "destination": [...]}
      -> app.control.revoke(...): null
  {"op": "batch", "commands": [...]}  -> the outcome of each, in order
  {"op": "events", "seconds": s, "hostnames": [...], "node_id": id, "until": [[host, type]]}
      -> the events an EventReceiver (what Flower uses) sees from these nodes, for s seconds or,
         with "until", until it has seen an event of each (hostname, type) pair (s the bound);
         its queue is celeryev.<node_id> when node_id is given
"""
import json
import socket
import sys
import time

from interop_app import app


def receive_events(seconds, hostnames, node_id=None, until=None):
    seen = []
    awaited = {tuple(pair) for pair in until} if until else None

    def on_event(event):
        if not hostnames or event.get("hostname") in hostnames:
            seen.append(event)
            if awaited is not None:
                awaited.discard((event.get("hostname"), event.get("type")))

    def done():
        return time.time() > deadline or awaited == set()

    deadline = time.time() + seconds
    with app.connection() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": on_event}, node_id=node_id)
        while not done():
            try:
                for _ in receiver.itercapture(limit=None, timeout=0.5, wakeup=False):
                    if done():
                        break
            except socket.timeout:
                continue
    return seen


def run(command):
    op = command["op"]
    if op == "batch":
        return [run(each) for each in command["commands"]]
    if op == "broadcast":
        if "clock" in command:
            # The mailbox has a Lamport clock of its own: its requests carry that one.
            app.control.mailbox.clock.adjust(command["clock"])
        out = app.control.broadcast(
            command["method"],
            arguments=command.get("arguments") or {},
            destination=command.get("destination"),
            reply=True,
            timeout=command.get("timeout", 1.0),
        )
    elif op == "revoke":
        out = app.control.revoke(
            command["id"],
            destination=command.get("destination"),
            terminate=command.get("terminate", False),
        )
    elif op == "events":
        out = receive_events(
            command["seconds"],
            command.get("hostnames"),
            command.get("node_id"),
            command.get("until"),
        )
    else:
        raise SystemExit(f"unknown op {op!r}")
    return out


def main():
    print(json.dumps(run(json.loads(sys.argv[1])), default=str))


if __name__ == "__main__":
    main()
