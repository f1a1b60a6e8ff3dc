"""A benchmark peer: the smallest stdio JSON-RPC server on python-lsp-jsonrpc.

Content-Length framing in and out, the way python-lsp-server itself is wired: a
JsonRpcStreamReader on stdin, a JsonRpcStreamWriter on stdout, an Endpoint with a
MethodDispatcher. `ping` answers {} synchronously. Exits when stdin ends.
"""
import sys

from pylsp_jsonrpc.dispatchers import MethodDispatcher
from pylsp_jsonrpc.endpoint import Endpoint
from pylsp_jsonrpc.streams import JsonRpcStreamReader, JsonRpcStreamWriter


class PingServer(MethodDispatcher):
    def m_ping(self, **_params):
        return {}


def main() -> int:
    reader = JsonRpcStreamReader(sys.stdin.buffer)
    writer = JsonRpcStreamWriter(sys.stdout.buffer)
    endpoint = Endpoint(PingServer(), writer.write)
    reader.listen(endpoint.consume)
    endpoint.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
