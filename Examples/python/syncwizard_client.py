"""A minimal asyncio JSON-RPC 2.0 client for syncwizard: one process, Content-Length framing.

    client = await Client.start(["syncwizard", "--secret-store", "memory"])
    profile = await client.request("createProfile", {"name": "Head office"})
    await client.close()

Requests run concurrently in syncwizard: await the reply of a request before sending one that
depends on it. Standard library only.
"""
import asyncio
import itertools
import json
from typing import Any, Callable

Handler = Callable[[dict[str, Any]], None]


class RpcError(Exception):
    """An error reply: code, message (one sentence for a person), data ({kind, hint?, ...})."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(error.get("message", "error"))
        self.code: int = error.get("code", 0)
        self.message: str = error.get("message", "")
        self.data: dict[str, Any] = error.get("data") or {}
        self.kind: str = self.data.get("kind", "")
        self.hint: str | None = self.data.get("hint")


class Client:
    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.progress: dict[int, Handler] = {}   # request id -> its progress handler
        self.on_notification: Handler = lambda message: None   # signInCompleted, signInFailed, ...
        self.reader = asyncio.create_task(self.read_loop())

    @classmethod
    async def start(cls, command: list[str]) -> "Client":
        # stderr is left to the terminal: syncwizard logs there, never on stdout.
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(process)

    async def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await self.process.stdin.drain()

    async def request(self, method: str, params: dict[str, Any] | None = None,
                      on_progress: Handler | None = None) -> Any:
        """Sends a request and returns its result, or raises RpcError."""
        request_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        if on_progress:
            self.progress[request_id] = on_progress
        try:
            await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
            return await future
        except asyncio.CancelledError:
            # Our caller gave up: tell syncwizard, which answers -32800 (ignored by read_loop).
            await self.notify("$/cancelRequest", {"id": request_id})
            raise
        finally:
            self.pending.pop(request_id, None)
            self.progress.pop(request_id, None)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self.send({"jsonrpc": "2.0", "method": method, "params": params or {}})

    async def read_message(self) -> dict[str, Any] | None:
        length = None
        while True:   # header lines up to the blank line
            line = await self.process.stdout.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                if length is not None:
                    break
                continue
            name, _, value = line.decode("ascii").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return json.loads(await self.process.stdout.readexactly(length))

    async def read_loop(self) -> None:
        while (message := await self.read_message()) is not None:
            if "id" in message and ("result" in message or "error" in message):
                future = self.pending.get(message["id"])
                if future and not future.done():
                    if "error" in message:
                        future.set_exception(RpcError(message["error"]))
                    else:
                        future.set_result(message.get("result"))
            elif message.get("method") == "progress":
                handler = self.progress.get(message["params"].get("requestId"))
                if handler:
                    handler(message["params"])
            elif "method" in message:
                self.on_notification(message)
        for future in self.pending.values():   # syncwizard ended
            if not future.done():
                future.set_exception(ConnectionError("syncwizard exited"))

    async def close(self) -> int:
        """shutdown, then EOF: syncwizard exits with status 0."""
        try:
            await self.request("shutdown")
        except (RpcError, ConnectionError):
            pass
        self.process.stdin.close()
        await self.reader
        return await self.process.wait()
