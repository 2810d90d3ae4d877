"""python-socketio against the echo server: every transport, JSON, binary and acks.

Prints one JSON line per transport set with what it saw; the node test checks it.
"""
import json
import sys
import threading

import socketio

url = sys.argv[1]
for transports in (["websocket"], ["polling"], ["polling", "websocket"]):
    sio = socketio.Client()
    got = {}
    back = threading.Event()

    @sio.on("auth")
    def on_auth(a):
        got["auth"] = a

    @sio.on("message-back")
    def on_back(*args):
        got["back"] = [a.hex() if isinstance(a, bytes) else a for a in args]
        back.set()

    sio.connect(url, transports=transports, auth={"token": "py"}, wait_timeout=5)
    sio.emit("message", ({"a": 1}, b"\x01\x02"))
    ack = sio.call("message-with-ack", (1, "two"), timeout=5)
    back.wait(5)
    print(json.dumps({
        "transports": transports,
        "final": sio.transport(),
        "auth": got.get("auth"),
        "back": got.get("back"),
        "ack": list(ack) if isinstance(ack, tuple) else ack,
    }), flush=True)
    sio.disconnect()
