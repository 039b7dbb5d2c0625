"""What kombu and py-amqp (Celery's AMQP stack) see of what celery-ts declares and publishes.

Usage: kombu_probe.py '<json command>'; prints one JSON line.
  {"op": "declare", "url": u, "entities": [...]}   declares as kombu does; {"ok": true} or {"error": "..."}
      entity: {"kind": "queue", "name": n, "max_priority": p?, "queue_arguments": {...}?}
            | {"kind": "broadcast", "name": n}      (kombu.common.Broadcast; its own queue is deleted again)
  {"op": "get", "url": u, "queue": q}              basic_get: body, headers, properties, delivery_info
  {"op": "publish", "url": u, "queue": q, "headers": {...}, "body": s}
      publishes with Python values that JSON cannot say: {"__none_pair__": 1} -> [None, None], etc.
"""
import datetime
import decimal
import json
import sys

from kombu import Connection, Exchange, Queue
from kombu.common import Broadcast


def to_json(value):
    if isinstance(value, datetime.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": bytes(value).hex()}
    if isinstance(value, decimal.Decimal):
        return {"__decimal__": str(value)}
    raise TypeError(repr(value))


def python_values(headers):
    """Headers with the Python-only values the test asks for."""
    special = {
        "__datetime__": lambda v: datetime.datetime.fromisoformat(v),
        "__decimal__": decimal.Decimal,
        "__bytes__": bytes.fromhex,
    }
    out = {}
    for key, value in headers.items():
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in special:
            kind = next(iter(value))
            out[key] = special[kind](value[kind])
        else:
            out[key] = value
    return out


def main():
    command = json.loads(sys.argv[1])
    op = command["op"]
    with Connection(command["url"]) as conn:
        channel = conn.default_channel
        if op == "declare":
            try:
                for entity in command["entities"]:
                    kind = entity["kind"]
                    if kind == "queue":
                        queue = Queue(
                            entity["name"],
                            Exchange(entity["name"]),
                            entity["name"],
                            max_priority=entity.get("max_priority"),
                            queue_arguments=entity.get("queue_arguments"),
                        )
                        queue(channel).declare()
                    elif kind == "broadcast":
                        queue = Broadcast(entity["name"])(channel)
                        queue.declare()
                        queue.delete()
                print(json.dumps({"ok": True}))
            except Exception as error:  # the test asserts on what kombu says
                print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        elif op == "get":
            message = channel.basic_get(command["queue"], no_ack=True)
            if message is None:
                print(json.dumps(None))
                return
            properties = dict(message.properties)
            headers = properties.pop("application_headers", {})
            print(json.dumps({
                "body": message.body.decode("utf-8") if isinstance(message.body, bytes) else message.body,
                "headers": headers,
                "properties": properties,
                "delivery_info": {k: message.delivery_info[k] for k in ("exchange", "routing_key")},
            }, default=to_json))
        elif op == "publish":
            producer = conn.Producer(channel)
            producer.publish(
                command["body"],
                exchange="",
                routing_key=command["queue"],
                headers=python_values(command.get("headers", {})),
                content_type="application/json",
                content_encoding="utf-8",
                serializer=None,
                correlation_id=command.get("correlation_id"),
            )
            print(json.dumps({"ok": True}))
        else:
            raise SystemExit(f"unknown op {op!r}")


if __name__ == "__main__":
    main()
