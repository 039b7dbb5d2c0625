"""Declares queues the way a Celery worker started with -Q declares them (Queues.__missing__:
a direct exchange of the queue's name, the name as routing key), under a global_keyprefix.

Usage: celery_declare.py <broker url> <global_keyprefix> <queue>...
"""
import sys

from celery import Celery

url, prefix, queues = sys.argv[1], sys.argv[2], sys.argv[3:]
app = Celery("declare", broker=url)
app.conf.broker_transport_options = {"global_keyprefix": prefix}
with app.connection_for_write() as connection:
    channel = connection.default_channel
    for name in queues:
        app.amqp.queues[name].bind(channel).declare()
print("declared")
