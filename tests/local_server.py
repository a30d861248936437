"""A local HTTP server on 127.0.0.1 with scripted replies, for tests of clients of outside APIs.

The real client talks real HTTP to it, so a test sees what the client really
sends, retries and raises. Subclasses build the handler (`_handler_class`) and
the base URL, and script replies with `_push`; the handler takes them in order
with `_next_reply` and records what it was sent in `requests`.
"""

import threading
from collections import deque
from http.server import ThreadingHTTPServer


class ScriptedServer:
    def __init__(self):
        self.requests: list[dict] = []
        self._replies: deque[dict] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._thread.start()
        return self

    def close(self) -> None:
        # Wake delayed handlers first so shutting down does not wait for them.
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _push(self, reply: dict) -> None:
        with self._lock:
            self._replies.append(self._complete(reply))

    def _complete(self, reply: dict) -> dict:
        """A scripted reply with its defaults filled in."""
        return reply

    def _next_reply(self) -> dict:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return self._none_left()

    def _none_left(self) -> dict:
        """The reply when the test scripted too few: one the client does not retry, so the test fails at once."""
        raise NotImplementedError

    def _handler_class(self):
        raise NotImplementedError
