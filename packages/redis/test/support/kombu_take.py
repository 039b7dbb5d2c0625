"""A kombu consumer that dies holding a message: publishes one message through the queue's
exchange, as Celery names it (routed by the _kombu.binding.<queue> table), takes it with
basic_get (kombu records it in unacked / unacked_index), and exits without acknowledging or
restoring it.

Usage: kombu_take.py <broker url> <global_keyprefix> <queue>
"""
import json
import os
import sys

from kombu import Connection, Exchange, Producer

url, prefix, queue = sys.argv[1], sys.argv[2], sys.argv[3]
connection = Connection(url, transport_options={"global_keyprefix": prefix})
channel = connection.channel()
producer = Producer(channel, exchange=Exchange(queue, type="direct"), auto_declare=False)
producer.publish({"hello": "kombu"}, routing_key=queue, serializer="json")
message = channel.basic_get(queue)
print(json.dumps({"delivery_tag": message.delivery_tag, "delivery_info": message.delivery_info}))
sys.stdout.flush()
os._exit(0)  # a crash: no ack, no restore at shutdown
