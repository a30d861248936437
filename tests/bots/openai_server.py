"""A local OpenAI-compatible HTTP server for tests.

The real `openai` client talks real HTTP to it over 127.0.0.1, so tests see
what the client really sends, retries and raises. Replies are scripted in
order; every request is recorded.
"""

import json
import time
import uuid
from http.server import BaseHTTPRequestHandler

from tests.local_server import ScriptedServer

PATHS = {"/v1/chat/completions", "/chat/completions"}


class OpenAIServer(ScriptedServer):
    # Each recorded request: {"path": str, "headers": {lower-case name: value}, "body": parsed JSON}.

    @property
    def url(self) -> str:
        return f"{self.address}/v1"

    # Scripted replies, consumed one per request in the order given.

    def reply_text(self, text: str, *, prompt_tokens: int = 12, completion_tokens: int = 7) -> None:
        message = {"role": "assistant", "content": text}
        self.reply_json(_completion(message, "stop", prompt_tokens, completion_tokens))

    def reply_tool_call(
        self,
        name: str,
        arguments: dict | str,
        *,
        call_id: str = "",
        prompt_tokens: int = 12,
        completion_tokens: int = 7,
    ) -> None:
        """A tool call; a str is sent as the arguments verbatim (to script unreadable JSON)."""
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        call = {
            "id": call_id or f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": name, "arguments": raw},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        self.reply_json(_completion(message, "tool_calls", prompt_tokens, completion_tokens))

    def reply_error(self, status: int, message: str = "scripted error", *, code: str | None = None) -> None:
        body = {
            "error": {
                "message": message,
                "type": "server_error" if status >= 500 else "invalid_request_error",
                "code": code,
            }
        }
        self.reply_json(body, status=status)

    def reply_delay(self, seconds: float) -> None:
        """Answer only after `seconds`, to make the client time out."""
        self._push({"delay": seconds, "status": 200, "body": _completion({"role": "assistant", "content": "too late"})})

    def reply_json(self, body, *, status: int = 200) -> None:
        """Any JSON body with any status, for answers the helpers above do not cover."""
        self._push({"delay": 0, "status": status, "body": body})

    def _none_left(self) -> dict:
        # 418 is not retried by the client, so a test that scripted too few replies fails at once.
        return {"delay": 0, "status": 418, "body": {"error": {"message": "no scripted reply left", "code": None}}}

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                if self.path not in PATHS:
                    self._answer(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with server._lock:
                    server.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                reply = server._next_reply()
                if reply["delay"] and server._closing.wait(reply["delay"]):
                    return
                answer = reply["body"]
                if isinstance(answer, dict) and "choices" in answer and isinstance(body, dict) and body.get("model"):
                    answer = {**answer, "model": body["model"]}  # as real servers echo the requested model
                self._answer(reply["status"], answer)

            def _answer(self, status: int, body) -> None:
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a scripted delay)

            def log_message(self, format, *args):
                pass  # keep test output quiet

        return Handler


def _completion(
    message: dict, finish_reason: str = "stop", prompt_tokens: int = 12, completion_tokens: int = 7
) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "gpt-test",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
