#!/usr/bin/env python3
"""GETs over HTTP/3 with aioquic (PyPI), a QUIC and HTTP/3 stack independent of edgewise's.

Usage: h3_get.py HOST:PORT SERVER_NAME CA_FILE PATH [PATH ...]

Connects to HOST:PORT (one connection), verifying the certificate for SERVER_NAME against
CA_FILE, and GETs each PATH in turn with :authority SERVER_NAME:PORT. Prints one JSON object
per line per path: {"path", "heads": [{"status", "headers"}...] (interim responses first),
"body"}. Exits 1 on any failure, with the reason on stderr; every wait is bounded.
"""

import asyncio
import json
import sys

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration

TIMEOUT = 10


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.pending = {}

    def quic_event_received(self, event):
        for h3_event in self.h3.handle_event(event):
            if not isinstance(h3_event, (HeadersReceived, DataReceived)):
                continue
            entry = self.pending.get(h3_event.stream_id)
            if entry is None:
                continue
            future, heads, body = entry
            if isinstance(h3_event, HeadersReceived):
                headers = {k.decode(): v.decode() for k, v in h3_event.headers}
                heads.append({"status": int(headers.pop(":status")), "headers": headers})
            else:
                body.extend(h3_event.data)
            if h3_event.stream_ended and not future.done():
                future.set_result((heads, bytes(body)))

    async def get(self, authority, path):
        stream_id = self._quic.get_next_available_stream_id()
        future = asyncio.get_running_loop().create_future()
        self.pending[stream_id] = (future, [], bytearray())
        self.h3.send_headers(
            stream_id,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", path.encode()),
            ],
            end_stream=True,
        )
        self.transmit()
        return await asyncio.wait_for(future, TIMEOUT)


async def main(address, server_name, ca_file, paths):
    host, port = address.rsplit(":", 1)
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=server_name)
    config.load_verify_locations(ca_file)
    async with connect(host, int(port), configuration=config, create_protocol=Client) as client:
        await asyncio.wait_for(client.wait_connected(), TIMEOUT)
        for path in paths:
            heads, body = await client.get(f"{server_name}:{port}", path)
            print(json.dumps({"path": path, "heads": heads, "body": body.decode("latin-1")}))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
    except Exception as error:  # one line for the test to show
        print(f"h3_get.py: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
