"""A strict client for syncwizard's stdio transport, shared by the hardening programs.

Standard library only. It spawns the binary, reads stdout on a thread and parses it with a
*strict* framer: every byte must belong to an NDJSON line (`JSON\n`, no CR) or to a
`Content-Length: N\r\n\r\n` frame followed by N bytes of JSON. Anything else is recorded as a
protocol violation (the contract: stdout carries protocol bytes only).

JSON numbers are kept as their exact text (`Raw`), so ids such as 1e999999 or a 400-digit
integer can be compared byte for byte with what was sent.
"""

import atexit
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


_TEMPORARY = []


def temporary_directory(prefix):
    """A fresh directory, removed when the program ends (kept with SYNCWIZARD_KEEP_TEST_FILES)."""
    path = tempfile.mkdtemp(prefix=prefix)
    _TEMPORARY.append(path)
    return path


@atexit.register
def _remove_temporary():
    if os.environ.get("SYNCWIZARD_KEEP_TEST_FILES"):
        return
    for path in _TEMPORARY:
        shutil.rmtree(path, ignore_errors=True)


def binary_path():
    return os.environ.get("SYNCWIZARD_BINARY") or os.path.join(REPO, ".build", "debug", "syncwizard")


class Raw:
    """A JSON number as the exact text it was written with."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, Raw) and other.text == self.text

    def __hash__(self):
        return hash(("Raw", self.text))

    def __repr__(self):
        return self.text


def _reject_constant(name):
    raise ValueError("non-JSON constant %s" % name)


def loads_exact(data):
    """Parses JSON (bytes must be valid UTF-8) keeping numbers as Raw text."""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8")  # strict: invalid UTF-8 on stdout is a violation
    return json.loads(data, parse_int=Raw, parse_float=Raw, parse_constant=_reject_constant)


def plain(value):
    """Raw numbers back to Python numbers where that is exact enough (for display)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def to_python(value):
    """Raw numbers to int/float (for documents such as rpc.discover's, not for ids)."""
    if isinstance(value, Raw):
        try:
            return int(value.text)
        except ValueError:
            return float(value.text)
    if isinstance(value, list):
        return [to_python(v) for v in value]
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    return value


def int_of(value):
    if isinstance(value, Raw):
        try:
            return int(value.text)
        except ValueError:
            return None
    return None


def ndjson(body):
    return body + b"\n"


def content_length(body):
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def frame(body, framing):
    return ndjson(body) if framing == "ndjson" else content_length(body)


class Message:
    __slots__ = ("value", "framing", "raw", "at")

    def __init__(self, value, framing, raw):
        self.value = value
        self.framing = framing
        self.raw = raw
        self.at = time.monotonic()


class Server:
    """One syncwizard process over pipes."""

    def __init__(self, args=(), config_dir=None, env=None, binary=None, secret_store="memory"):
        self.config_dir = config_dir or temporary_directory("syncwizard-hardening-")
        self.binary = binary or binary_path()
        full_env = dict(os.environ)
        full_env["SYNCWIZARD_CONFIG_DIR"] = self.config_dir
        if env:
            full_env.update(env)
        argv = [self.binary]
        if secret_store:
            argv += ["--secret-store", secret_store]
        argv += list(args)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env, bufsize=0)
        self.messages = queue.Queue()
        self.violations = []
        self.stdout_bytes = bytearray()
        self.stderr_bytes = bytearray()
        self.stdout_closed = threading.Event()
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._out_thread = threading.Thread(target=self._read_stdout, daemon=True)
        self._err_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._out_thread.start()
        self._err_thread.start()
        self._ids = 0

    # -- reading -----------------------------------------------------------------------------

    def _read_stdout(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                if self._buf:
                    self.violations.append("stdout ended inside a frame: %r" % bytes(self._buf[:200]))
                self.stdout_closed.set()
                return
            with self._lock:
                self.stdout_bytes += chunk
            self._buf += chunk
            self._parse()

    def _read_stderr(self):
        fd = self.proc.stderr.fileno()
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                return
            with self._lock:
                self.stderr_bytes += chunk

    def _parse(self):
        prefix = b"Content-Length: "
        while self._buf:
            buf = self._buf
            if len(buf) < len(prefix) and prefix.startswith(bytes(buf)):
                return  # could still become a header
            if buf.startswith(prefix):
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > 64:
                        self._violate("an output header block without its blank line: %r" % bytes(buf[:80]))
                    return
                digits = bytes(buf[len(prefix):end])
                if not digits.isdigit() or (len(digits) > 1 and digits.startswith(b"0")):
                    self._violate("an output header other than 'Content-Length: N': %r" % bytes(buf[:end + 4]))
                    return
                n = int(digits)
                start = end + 4
                if len(buf) < start + n:
                    return
                body = bytes(buf[start:start + n])
                del self._buf[:start + n]
                self._message(body, "contentLength")
                continue
            nl = buf.find(b"\n")
            if nl < 0:
                return
            line = bytes(buf[:nl])
            del self._buf[:nl + 1]
            if not line or line.endswith(b"\r"):
                self._violate("an output line that is empty or ends with CR: %r" % line[:80])
                continue
            self._message(line, "ndjson")

    def _violate(self, what):
        self.violations.append(what)
        self._buf.clear()

    def _message(self, body, framing):
        try:
            value = loads_exact(body)
        except Exception as error:  # noqa: BLE001 - any parse failure is a violation
            self.violations.append("output that is not JSON (%s): %r" % (error, body[:120]))
            return
        problem = check_outgoing(value)
        if problem:
            self.violations.append("%s: %s" % (problem, body[:300]))
        self.messages.put(Message(value, framing, body))

    # -- writing -----------------------------------------------------------------------------

    def send(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def close_input(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def next_id(self, prefix="c"):
        self._ids += 1
        return "%s-%d" % (prefix, self._ids)

    def get(self, timeout):
        try:
            return self.messages.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def call(self, method, params=None, framing="ndjson", timeout=30, id_=None):
        """Sends one request and returns its reply (other messages that arrive meanwhile are
        returned too, as the second element)."""
        rid = id_ or self.next_id("call")
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(frame(json.dumps(msg).encode(), framing))
        others = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.get(deadline - time.monotonic())
            if m is None:
                raise TimeoutError("no reply to %s within %s s; stderr tail: %s" % (method, timeout, self.stderr_tail()))
            if isinstance(m.value, dict) and m.value.get("id") == rid and "method" not in m.value:
                return m.value, others
            others.append(m)

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=15):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stderr_text(self):
        with self._lock:
            return bytes(self.stderr_bytes).decode("utf-8", "replace")

    def stdout_text(self):
        with self._lock:
            return bytes(self.stdout_bytes).decode("utf-8", "replace")

    def stderr_tail(self, n=2000):
        return self.stderr_text()[-n:]


def check_outgoing(value):
    """Shape of everything the server may write: a response, a notification, or a batch reply."""
    if isinstance(value, list):
        if not value:
            return "an empty array on stdout"
        for element in value:
            problem = check_outgoing(element)
            if problem:
                return problem
            if "method" in element:
                return "a notification inside a batch reply"
        return None
    if not isinstance(value, dict):
        return "a non-object message on stdout"
    if value.get("jsonrpc") != "2.0":
        return "a message without jsonrpc 2.0"
    if "method" in value:
        if "id" in value:
            return "a server-to-client request (not in the contract)"
        return None
    if "id" not in value:
        return "a response without id"
    if ("result" in value) == ("error" in value):
        return "a response with both or neither of result and error"
    if "error" in value:
        error = value["error"]
        if not isinstance(error, dict) or not isinstance(error.get("code"), Raw) or int_of(error.get("code")) is None:
            return "an error without an integer code"
        if not isinstance(error.get("message"), str) or not error["message"]:
            return "an error without a message"
        data = error.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            return "an error without data.kind"
    return None
