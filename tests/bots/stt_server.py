"""A local OpenAI-compatible transcription server for tests.

The transcriber talks real HTTP to it over 127.0.0.1 and the multipart body is
parsed for real, so tests see the exact fields, file and headers sent, and the
real retries and timeouts. Replies are scripted in order; every request is
recorded.
"""

import json
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler

from tests.local_server import ScriptedServer

PATHS = {"/v1/audio/transcriptions", "/audio/transcriptions"}


class STTServer(ScriptedServer):
    # Each recorded request: {"path": str, "headers": {lower-case name: value},
    # "fields": {name: str} (the non-file parts),
    # "file": {"name", "filename", "content_type", "data": bytes} or None}.

    @property
    def url(self) -> str:
        return f"{self.address}/v1"

    # Scripted replies, consumed one per request in the order given.

    def reply_text(self, text: str, **extra) -> None:
        """OpenAI's response_format=json answer; `extra` adds fields (duration, usage, model...)."""
        self.reply_json({"text": text, **extra})

    def reply_plain(self, text: str, *, content_type: str = "text/plain") -> None:
        """A bare-text answer, as whisper.cpp's server and some faster-whisper servers send."""
        self.reply_raw(text.encode(), content_type=content_type)

    def reply_error(
        self, status: int, message: str = "scripted error", *, code: str | None = None, retry_after: str = ""
    ) -> None:
        body = {
            "error": {
                "message": message,
                "type": "server_error" if status >= 500 else "invalid_request_error",
                "code": code,
            }
        }
        headers = {"Retry-After": retry_after} if retry_after else {}
        self._push({"status": status, "payload": json.dumps(body).encode(), "headers": headers})

    def reply_delay(self, seconds: float) -> None:
        """Answer only after `seconds`, to make the client time out."""
        self._push({"delay": seconds, "payload": json.dumps({"text": "слишком поздно"}).encode()})

    def reply_disconnect(self) -> None:
        """Close the connection without answering, as a crashing or restarting server does."""
        self._push({"disconnect": True})

    def reply_json(self, body, *, status: int = 200) -> None:
        """Any JSON body with any status, for answers the helpers above do not cover."""
        self._push({"status": status, "payload": json.dumps(body, ensure_ascii=False).encode()})

    def reply_raw(self, payload: bytes, *, content_type: str, status: int = 200) -> None:
        """Any bytes with any content type (broken JSON, an HTML page...)."""
        self._push({"status": status, "payload": payload, "content_type": content_type})

    def _complete(self, reply: dict) -> dict:
        return {"delay": 0, "status": 200, "content_type": "application/json", "headers": {}, **reply}

    def _none_left(self) -> dict:
        # 418 is not retried, so a test that scripted too few replies fails at once.
        body = json.dumps({"error": {"message": "no scripted reply left", "code": None}}).encode()
        return {"delay": 0, "status": 418, "payload": body, "content_type": "application/json", "headers": {}}

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path not in PATHS:
                    self._answer({"status": 404, "payload": b'{"error": {"message": "no route"}}', "headers": {}})
                    return
                fields, file = parse_multipart(self.headers.get("Content-Type", ""), raw)
                with server._lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "fields": fields,
                            "file": file,
                        }
                    )
                reply = server._next_reply()
                if reply.get("disconnect"):
                    self.close_connection = True
                    return  # nothing written: the client sees the connection drop
                if reply["delay"] and server._closing.wait(reply["delay"]):
                    return
                self._answer(reply)

            def _answer(self, reply: dict) -> None:
                payload = reply["payload"]
                try:
                    self.send_response(reply["status"])
                    self.send_header("Content-Type", reply.get("content_type", "application/json"))
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply["headers"].items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a scripted delay)

            def log_message(self, format, *args):
                pass  # keep test output quiet

        return Handler


def parse_multipart(content_type: str, body: bytes) -> tuple[dict, dict | None]:
    """The form fields and the uploaded file of a multipart/form-data body."""
    fields, file = {}, None
    if not content_type.startswith("multipart/form-data"):
        return fields, file
    message = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if part.get_filename() is not None:
            file = {
                "name": name,
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "data": data,
            }
        else:
            fields[name] = data.decode()
    return fields, file
