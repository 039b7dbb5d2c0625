"""Runs kombu's own visibility-timeout restore (QoS.restore_visible) once, as a Python worker's
consumer loop does, against the keys under a global_keyprefix.

Usage: kombu_restore.py <broker url> <global_keyprefix> <visibility_timeout seconds>
"""
import sys

from kombu import Connection

url, prefix, visibility_timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
options = {"global_keyprefix": prefix, "visibility_timeout": visibility_timeout}
with Connection(url, transport_options=options) as connection:
    connection.default_channel.qos.restore_visible(num=1000)
print("restored")
