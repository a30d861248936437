"""Fault drill: fuzzed webhook bodies against both channels.

    .venv/bin/python bench/drill_fuzz.py [--bodies 2000] [--seed 11]

Starts its own stack as processes (bench/stack.py's DrillStack: a private
PostgreSQL cluster and Redis, gunicorn with 8 sync workers, one qcluster at
nice 19, the fake Bitrix24 REST and Bot API; gunicorn is reached directly,
without the nginx of the deployment in front) and sends `--bodies` requests to
each channel's webhook (POST /b24/imbot/events, POST /tg/webhook), from a
seeded generator, over raw sockets (what a client library would refuse to
send goes out as well): random bytes; valid events truncated and with bytes
flipped; huge field counts in forms and in JSON; deep nesting; wrong types in
every field that matters; odd JSON numbers and strings (1e999, -0, huge ints,
lone surrogate and NUL escapes, invalid UTF-8); 5 MB and 50 MB bodies, with a
Content-Length and chunked; wrong content types, methods and paths; other
event kinds.

Two phases. First, 40% of the requests with a forged or missing token (a
wrong, cut or lengthened application token or secret header, none, an empty
one, one in the wrong place or of the wrong type, an unknown bot key in the
path): the rows of conversations, messages, received events, channel accounts
and portals, and the files in SPOOL_DIR, are counted before and after, and
must not change. Then the rest with the right token. It waits for the task
queue to drain (the worker answers what was taken in) and prints the counts
by status, per channel, phase and kind of body, the slowest requests and the
error lines of the services' logs. Targets: no 5xx; nothing stored for a
forged or missing token (and no 2xx for one). Exits 1 when one is missed; the
bodies that got a 5xx are written to the logs folder, which is then kept.
"""

import argparse
import contextlib
import json
import random
import re
import select
import socket
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.stack import DrillStack, Load, add_drill_arguments, drill_verdict, load_average, print_run, queue_length

MB = 1024 * 1024
FORGED_SHARE = 0.4
WARMUP = 5
ODD_NUMBERS = [
    "1e999",
    "-1e999",
    "-0",
    "-0.0",
    "1e308",
    "1e-400",
    "2.5e-3",
    "1.0",
    "123456789012345678901234567890",
    "9223372036854775808",
    "-9223372036854775809",
    "1" + "0" * 5000,
    "NaN",
    "Infinity",
    "-Infinity",
    "0x10",
    "01",
    "1E400",
]
ODD_STRINGS = [
    '"\\ud800"',
    '"\\udfff"',
    '"x\\ud83d"',
    '"\\udfff\\ud800"',
    '"\\u0000"',
    '"a\\u0000b"',
    '"' + "\\u0000" * 100 + '"',
    '"\\ud83d\\ude00"',
    '"\\\\u0000"',
    '""',
    '"' + "я" * 5000 + '"',
    '"\\u202e\\u200b\\ufeff"',
]
# Raw bytes inside a JSON string: invalid UTF-8, an overlong slash, a UTF-8-encoded surrogate.
ODD_BYTES = [b'"\xff\xfe"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\x00"', b'"\x1f"']
WRONG_VALUES = [None, True, False, "x", "", 1.5, [], {}, [1, 2], {"a": 1}, -1, 0, 10**40, "123"]
CONTENT_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/xml",
    "image/png",
    "application/json; charset=utf-16",
    "application/json; charset=latin-1",
    "APPLICATION/JSON",
    "application/json, text/plain",
    "multipart/form-data; boundary=fuzzboundary",
    None,
]
METHODS = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


class Spec:
    """One request: which channel and phase it is, its kind, and what goes on the wire."""

    def __init__(self, channel, phase, kind, body, *, content_type=None, headers=(), method="POST", path=None):
        self.channel, self.phase, self.kind = channel, phase, kind
        self.body, self.content_type, self.headers = body, content_type, list(headers)
        self.method, self.path = method, path
        self.chunked = False
        self.token = ""  # how the token or secret was given
        self.status: int | str = ""
        self.seconds = 0.0


# --- the raw client --------------------------------------------------------------


def send(port: int, spec: Spec, timeout: float = 60.0) -> None:
    """One request on a connection of its own; its status (or the error that came instead) and time on `spec`.

    The body goes out in pieces, and sending stops as soon as the server
    answers (a 413 before the body was read)."""
    t = time.perf_counter()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as exc:
        spec.status, spec.seconds = type(exc).__name__, time.perf_counter() - t
        return
    try:
        lines = [f"{spec.method} {spec.path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
        if spec.content_type is not None:
            lines.append(b"Content-Type: " + spec.content_type.encode("latin-1"))
        lines += [name + b": " + value for name, value in spec.headers]
        body = spec.body or b""
        if spec.chunked:
            lines.append(b"Transfer-Encoding: chunked")
            step = 64 * 1024
            body = b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step]) for i in range(0, len(body), step)
            )
            body += b"0\r\n\r\n"
        elif spec.body is not None or spec.method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: %d" % len(body))
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        view, sent = memoryview(body), 0
        while sent < len(view):
            readable, writable, _ = select.select([sock], [sock], [], timeout)
            if readable:
                break  # answered before the whole body was sent
            if not writable:
                raise TimeoutError
            try:
                sent += sock.send(view[sent : sent + 256 * 1024])
            except (BrokenPipeError, ConnectionResetError):
                break
        spec.status = _read_status(sock)
    except (OSError, ValueError) as exc:
        spec.status = type(exc).__name__
    finally:
        sock.close()
        spec.seconds = time.perf_counter() - t


def _read_status(sock: socket.socket) -> int | str:
    data = b""
    try:
        while b"\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                return "closed without an answer" if not data else "a broken answer"
            data += piece
    except ConnectionResetError:
        if b"\r\n" not in data:
            return "reset without an answer"
    parts = data.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[1].isdigit():
        return "a broken answer"
    status = int(parts[1])
    # The rest of the answer, until the server closes (Connection: close), so the server is not cut off.
    with contextlib.suppress(OSError):
        while sock.recv(65536):
            pass
    return status


# --- what the generator builds on ------------------------------------------------


def set_path(obj, path, value):
    """obj with obj[path...] = value (made where missing); a copy."""
    obj = json.loads(json.dumps(obj))
    node = obj
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return obj


def with_raw(obj, path, raw: bytes) -> bytes:
    """obj as JSON with the value at `path` replaced by raw JSON text (what json.dumps cannot write)."""
    marker = "@@FUZZ@@"
    text = json.dumps(set_path(obj, path, marker), ensure_ascii=False).encode()
    return text.replace(json.dumps(marker).encode(), raw)


def mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 12)):
        if not data:
            break
        op = rng.random()
        i = rng.randrange(len(data))
        if op < 0.5:
            data[i] = rng.randrange(256)
        elif op < 0.7:
            data[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op < 0.85:
            del data[i : i + rng.randint(1, 8)]
        else:
            j = rng.randrange(len(data))
            data[i:i] = data[j : j + rng.randint(1, 64)]
    return bytes(data)


def random_body(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 2, 7, 64, 512, 4096, 65536])
    kind = rng.random()
    if kind < 0.5:
        return rng.randbytes(size)
    if kind < 0.75:
        return bytes(rng.randrange(32, 127) for _ in range(size))
    tokens = ["{", "}", "[", "]", ",", ":", '"', "1", "-", "e", "null", "true", "=", "&", "%", "[]", "\\u", "\x00"]
    return "".join(rng.choice(tokens) for _ in range(size // 2)).encode()


def deep_json(rng: random.Random) -> bytes:
    depth = rng.choice([17, 33, 64, 1000, 100_000])
    if rng.random() < 0.5:
        return b'{"update_id": 1, "message": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    return b'{"a": ' + b"[" * depth + b"]" * depth + b"}"


def many_json(rng: random.Random, base: dict) -> bytes:
    n = rng.choice([4999, 5001, 6000, 50_000])
    if rng.random() < 0.5:
        return json.dumps({**base, "extra": {f"k{i}": i for i in range(n)}}).encode()
    return json.dumps({**base, "extra": [0] * (n * 10)}).encode()


def multipart(fields: list[tuple[str, str]]) -> bytes:
    parts = [f'--fuzzboundary\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields]
    return b"".join(parts) + b"--fuzzboundary--\r\n"


# --- Telegram ------------------------------------------------------------------


class TelegramFuzz:
    name = "telegram"
    kinds = [
        "valid update",
        "other update kind",
        "random bytes",
        "truncated",
        "bytes flipped",
        "huge field count",
        "deep nesting",
        "wrong type",
        "odd number",
        "odd string",
        "invalid UTF-8",
        "wrong content type",
        "wrong method",
        "odd path",
    ]
    fields = [
        ("update_id",),
        ("message",),
        ("message", "chat"),
        ("message", "chat", "id"),
        ("message", "chat", "type"),
        ("message", "from"),
        ("message", "from", "id"),
        ("message", "from", "first_name"),
        ("message", "text"),
        ("message", "message_id"),
        ("message", "date"),
        ("message", "entities"),
        ("message", "reply_to_message"),
        ("message", "photo"),
        ("message", "voice"),
        ("message", "caption"),
        ("message", "new_chat_members"),
        ("callback_query",),
        ("edited_message",),
        ("my_chat_member",),
    ]

    def __init__(self, stack: DrillStack, first: int):
        self.channel = stack.channels["telegram"]
        self.secret = self.channel.secret
        self.next = first

    def update(self) -> dict:
        self.next += 1
        return json.loads(self.channel.build(self.next, 1)[0])

    def other_kind(self, rng: random.Random) -> dict:
        base = self.update()
        message, person = base["message"], base["message"]["from"]
        kind = rng.choice(
            ["callback", "start", "help", "edited", "group", "channel", "member", "photo", "voice", "doc"]
        )
        if kind == "callback":
            data = rng.choice(["operator", "suggest:0", "x" * 64, "", "🐟"])
            return {
                "update_id": base["update_id"],
                "callback_query": {"id": str(base["update_id"]), "from": person, "message": message, "data": data},
            }
        if kind in ("start", "help"):
            message["text"] = f"/{kind}"
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(kind) + 1}]
        elif kind == "edited":
            return {"update_id": base["update_id"], "edited_message": message}
        elif kind == "group":
            message["chat"] = {"id": -100_000_000_000 - base["update_id"] % 1000, "type": "supergroup", "title": "g"}
        elif kind == "channel":
            return {"update_id": base["update_id"], "channel_post": message}
        elif kind == "member":
            status = rng.choice(["kicked", "member", "left"])
            return {
                "update_id": base["update_id"],
                "my_chat_member": {
                    "chat": message["chat"],
                    "from": person,
                    "date": message["date"],
                    "old_chat_member": {"user": person, "status": "member"},
                    "new_chat_member": {"user": person, "status": status},
                },
            }
        elif kind == "photo":
            del message["text"]
            message["photo"] = [{"file_id": "AgAC", "file_unique_id": "AQAD", "width": 90, "height": 90}]
            message["caption"] = rng.choice(["", "что это?", "x" * 1024])
        elif kind == "voice":
            del message["text"]
            message["voice"] = {"file_id": "AwAC", "file_unique_id": "AgAD", "duration": rng.choice([1, 600])}
        else:
            del message["text"]
            message["document"] = {"file_id": "BQAC", "file_unique_id": "AgAE", "file_name": "a.pdf"}
        return base

    def secret_headers(self, rng: random.Random, forged: bool) -> tuple[str, list]:
        name = b"X-Telegram-Bot-Api-Secret-Token"
        if not forged:
            return "right secret", [(name, self.secret.encode())]
        how = rng.choice(["missing", "empty", "random", "cut", "lengthened", "upper", "latin-1", "twice", "other name"])
        value = {
            "empty": b"",
            "random": rng.randbytes(24).hex().encode(),
            "cut": self.secret[:-1].encode(),
            "lengthened": (self.secret + "x").encode(),
            "upper": self.secret.upper().encode() if self.secret.upper() != self.secret else b"X",
            "latin-1": b"\xff\xfe" + self.secret.encode()[2:],
        }.get(how)
        if how == "missing":
            return "no secret header", []
        if how == "twice":
            return "secret header twice (wrong, right)", [(name, b"wrong"), (name, self.secret.encode())]
        if how == "other name":
            return "secret in another header", [(b"X-Telegram-Secret", self.secret.encode())]
        return f"secret {how}", [(name, value)]

    def spec(self, rng: random.Random, forged: bool) -> Spec:
        token_kind, headers = self.secret_headers(rng, forged)
        kind = rng.choice(self.kinds)
        path, method, content_type = "/tg/webhook", "POST", "application/json"
        base = self.update()
        if kind == "valid update":
            body = json.dumps(base, ensure_ascii=False).encode()
        elif kind == "other update kind":
            body = json.dumps(self.other_kind(rng), ensure_ascii=False).encode()
        elif kind == "random bytes":
            body = random_body(rng)
        elif kind == "truncated":
            full = json.dumps(base, ensure_ascii=False).encode()
            body = full[: rng.randrange(len(full))]
        elif kind == "bytes flipped":
            body = mutate(rng, json.dumps(base, ensure_ascii=False).encode())
        elif kind == "huge field count":
            body = many_json(rng, base)
        elif kind == "deep nesting":
            body = deep_json(rng)
        elif kind == "wrong type":
            field = rng.choice(self.fields)
            body = json.dumps(set_path(base, field, rng.choice(WRONG_VALUES))).encode()
            kind = f"wrong type: {'.'.join(field)}"
        elif kind == "odd number":
            field = rng.choice([f for f in self.fields if f[-1] in ("update_id", "id", "message_id", "date")])
            body = with_raw(base, field, rng.choice(ODD_NUMBERS).encode())
        elif kind == "odd string":
            field = rng.choice([("message", "text"), ("message", "from", "first_name"), ("message", "chat", "type")])
            body = with_raw(base, field, rng.choice(ODD_STRINGS).encode())
        elif kind == "invalid UTF-8":
            body = with_raw(base, ("message", "text"), rng.choice(ODD_BYTES))
        elif kind == "wrong content type":
            content_type = rng.choice(CONTENT_TYPES)
            text = json.dumps(base, ensure_ascii=False)
            if content_type and "utf-16" in content_type:
                body = text.encode("utf-16")
            elif content_type and content_type.startswith("multipart"):
                body = multipart([("update", text)])
            elif content_type == "application/xml":
                body = b"<?xml version='1.0'?><update><update_id>1</update_id></update>"
            else:
                body = text.encode()
            kind = f"content type {content_type}"
        elif kind == "wrong method":
            method = rng.choice(METHODS)
            body = json.dumps(base).encode() if method != "HEAD" else None
        else:
            path = rng.choice(
                [
                    f"/tg/{rng.randbytes(8).hex()}/webhook",
                    "/tg/" + "k" * 5000 + "/webhook",
                    "/tg/%00/webhook",
                    "/tg/%D0%BA%D0%BB%D1%8E%D1%87/webhook",
                    "/tg/webhook?secret=1&" + "a=1&" * 1000,
                    "/tg//webhook",
                    "/tg/webhook/",
                    "/tg/default/webhook",
                ]
            )
            body = json.dumps(base).encode()
            kind = "odd path"
        spec = Spec(self.name, "forged" if forged else "valid", kind, body, content_type=content_type, method=method)
        spec.path = path
        spec.headers = headers
        spec.token = token_kind
        return spec

    def big(self, forged: bool, body50: bytes) -> list[Spec]:
        headers = [] if forged else self.secret_headers(random.Random(1), False)[1]
        base = self.update()
        five = json.dumps(set_path(base, ("message", "text"), "я" * (5 * MB // 2))).encode()
        under = json.dumps(set_path(base, ("message", "text"), "x" * (MB - 600))).encode()
        specs = [
            Spec(self.name, "", "5 MB body", five, content_type="application/json"),
            Spec(self.name, "", "5 MB body, chunked", five, content_type="application/json"),
            Spec(self.name, "", "50 MB body", body50, content_type="application/json"),
            Spec(self.name, "", "just under 1 MB", under, content_type="application/json"),
        ]
        specs[1].chunked = True
        for spec in specs:
            spec.phase, spec.path, spec.headers = ("forged" if forged else "valid"), "/tg/webhook", headers
            spec.token = "no secret header" if forged else "right secret"
        return specs


# --- Bitrix24 ------------------------------------------------------------------


class Bitrix24Fuzz:
    name = "bitrix24"
    kinds = [
        "valid event",
        "other event",
        "random bytes",
        "truncated",
        "bytes flipped",
        "bad percent-encoding",
        "huge field count",
        "deep nesting",
        "wrong type",
        "odd value",
        "JSON event",
        "JSON odd number",
        "JSON odd string",
        "JSON deep or huge",
        "wrong content type",
        "wrong method",
    ]
    odd_values = [
        "1e999",
        "-0",
        "99999999999999999999999999",
        "-1",
        "0",
        "",
        "abc",
        "1.5",
        " 1",
        "٣",
        "1" * 5000,
        "chat",
        "chat1e999",
        "%00",
        "%ED%A0%80",
        "%FF",
        "%",
        "%zz",
        "+",
        "x" * 200_000,
    ]
    odd_fields = [
        "data[PARAMS][MESSAGE_ID]",
        "data[PARAMS][DIALOG_ID]",
        "data[PARAMS][FROM_USER_ID]",
        "data[PARAMS][TO_CHAT_ID]",
        "data[PARAMS][MESSAGE]",
        "data[PARAMS][CHAT_TYPE]",
        "data[USER][ID]",
        "data[USER][NAME]",
        "auth[member_id]",
        "auth[domain]",
        "event",
        "ts",
    ]
    events = [
        "ONIMBOTJOINCHAT",
        "ONIMBOTMESSAGEUPDATE",
        "ONIMBOTMESSAGEDELETE",
        "ONIMBOTDELETE",
        "ONIMCOMMANDADD",
        "ONAPPINSTALL",
        "ONAPPUNINSTALL",
        "onimbotmessageadd",
        "",
        "X" * 10_000,
    ]

    def __init__(self, stack: DrillStack, first: int):
        self.channel = stack.channels["bitrix24"]
        self.token = self.channel.token
        self.next = first

    def pairs(self, token) -> list[tuple[str, str]]:
        """A valid ONIMBOTMESSAGEADD's fields, with `token` as its application token (None: none at all)."""
        self.next += 1
        pairs = parse_qsl(self.channel.build(self.next, 1)[0].decode(), keep_blank_values=True)
        out = []
        for key, value in pairs:
            if key.endswith("[application_token]"):
                if token is None:
                    continue
                value = token
            out.append((key, value))
        return out

    def forged_token(self, rng: random.Random) -> tuple[str, object]:
        how = rng.choice(["missing", "empty", "random", "cut", "lengthened", "upper", "array", "only in data[BOT]"])
        value = {
            "empty": "",
            "random": rng.randbytes(16).hex(),
            "cut": self.token[:-1],
            "lengthened": self.token + "0",
            "upper": self.token.upper() if self.token.upper() != self.token else "X",
        }.get(how, None)
        return f"token {how}", (how, value)

    def body_pairs(self, token_spec) -> list[tuple[str, str]]:
        how, value = token_spec
        if how == "right":
            return self.pairs(self.token)
        if how == "missing":
            return self.pairs(None)
        if how == "array":
            return [(k, v) for k, v in self.pairs(None)] + [("auth[application_token][]", self.token)]
        if how == "only in data[BOT]":
            pairs = self.pairs(self.token)
            return [(k, v) for k, v in pairs if k != "auth[application_token]"]
        return self.pairs(value)

    def spec(self, rng: random.Random, forged: bool) -> Spec:
        token_kind, token_spec = self.forged_token(rng) if forged else ("right token", ("right", None))
        kind = rng.choice(self.kinds)
        method, content_type = "POST", "application/x-www-form-urlencoded"
        pairs = self.body_pairs(token_spec)
        form = urlencode(pairs).encode()
        if kind == "valid event":
            body = form
        elif kind == "other event":
            event = rng.choice(self.events)
            body = urlencode([(k, event if k == "event" else v) for k, v in pairs]).encode()
            kind = f"event {event[:24] or '(empty)'}"
        elif kind == "random bytes":
            body = random_body(rng)
        elif kind == "truncated":
            body = form[: rng.randrange(len(form))]
        elif kind == "bytes flipped":
            body = mutate(rng, form)
        elif kind == "bad percent-encoding":
            i = rng.randrange(len(form))
            body = (
                form[:i]
                + rng.choice([b"%", b"%z", b"%zz", b"%ff%fe", b"%C0%AF", b"%ED%A0%80", b"%00", b"%u0041"])
                + form[i:]
            )
        elif kind == "huge field count":
            n = rng.choice([1999, 2001, 5000, 100_000])
            extra = "&".join(f"data[X][{i}]=1" if i % 2 else "a[]=1" for i in range(n))
            body = form + b"&" + extra.encode()
            kind = f"huge field count ({n} more)"
        elif kind == "deep nesting":
            depth = rng.choice([17, 64, 1000, 20_000])
            body = form + b"&data[PARAMS]" + b"[a]" * depth + b"=1"
        elif kind == "wrong type":
            field = rng.choice(
                [
                    "data",
                    "data[PARAMS]",
                    "data[USER]",
                    "data[BOT]",
                    "auth",
                    "data[PARAMS][MESSAGE]",
                    "data[PARAMS][DIALOG_ID]",
                    "data[PARAMS][MESSAGE_ID]",
                    "data[PARAMS][FILES]",
                    "event",
                ]
            )
            shape = rng.choice(["scalar", "array", "object"])
            kept = [(k, v) for k, v in pairs if not (k == field or k.startswith(field + "["))]
            if field == "auth" and not forged:
                kept += [("auth[application_token]", self.token)]  # the token stays: only `auth`'s other fields go
            added = {
                "scalar": [(field, "x")],
                "array": [(field + "[]", "a"), (field + "[]", "b")],
                "object": [(field + "[x]", "1")],
            }[shape]
            body = urlencode(kept + added).encode()
            kind = f"wrong type: {field} as {shape}"
        elif kind == "odd value":
            field = rng.choice(self.odd_fields)
            value = rng.choice(self.odd_values)
            encoded = value if value.startswith("%") or value == "+" else quote(value)
            body = "&".join(f"{quote(k)}={encoded if k == field else quote(v)}" for k, v in pairs).encode()
            kind = f"odd value in {field}"
        elif kind.startswith("JSON"):
            content_type = "application/json"
            nested = php_nest(pairs)
            if kind == "JSON event":
                body = json.dumps(nested, ensure_ascii=False).encode()
            elif kind == "JSON odd number":
                field = rng.choice(
                    [
                        ("data", "PARAMS", "MESSAGE_ID"),
                        ("data", "PARAMS", "DIALOG_ID"),
                        ("ts",),
                        ("data", "PARAMS", "FROM_USER_ID"),
                    ]
                )
                body = with_raw(nested, field, rng.choice(ODD_NUMBERS).encode())
            elif kind == "JSON odd string":
                field = rng.choice([("data", "PARAMS", "MESSAGE"), ("data", "USER", "NAME"), ("auth", "member_id")])
                raw = rng.choice([s.encode() for s in ODD_STRINGS] + ODD_BYTES)
                body = with_raw(nested, field, raw)
            else:
                body = deep_json(rng) if rng.random() < 0.5 else many_json(rng, nested)
        elif kind == "wrong content type":
            content_type = rng.choice(CONTENT_TYPES)
            if content_type and content_type.startswith("multipart"):
                body = multipart(pairs)
            elif content_type and "utf-16" in content_type:
                body = form.decode().encode("utf-16")
            elif content_type and "json" in content_type.lower():
                body = form  # a form body said to be JSON
            else:
                body = form
            kind = f"content type {content_type}"
        else:
            method = rng.choice(METHODS)
            body = form if method != "HEAD" else None
        spec = Spec(self.name, "forged" if forged else "valid", kind, body, content_type=content_type, method=method)
        spec.path = "/b24/imbot/events"
        spec.token = token_kind
        return spec

    def big(self, forged: bool, body50: bytes) -> list[Spec]:
        token_spec = ("missing", None) if forged else ("right", None)
        pairs = self.body_pairs(token_spec)
        five = urlencode([(k, "я" * (5 * MB // 6) if k == "data[PARAMS][MESSAGE]" else v) for k, v in pairs]).encode()
        under = urlencode(
            [(k, "x" * (MB - 6000) if k == "data[PARAMS][MESSAGE]" else v) for k, v in self.body_pairs(token_spec)]
        ).encode()
        form = "application/x-www-form-urlencoded"
        specs = [
            Spec(self.name, "", "5 MB body", five, content_type=form),
            Spec(self.name, "", "5 MB body, chunked", five, content_type=form),
            Spec(self.name, "", "50 MB body", body50, content_type=form),
            Spec(self.name, "", "just under 1 MB", under, content_type=form),
        ]
        specs[1].chunked = True
        for spec in specs:
            spec.phase, spec.path = ("forged" if forged else "valid"), "/b24/imbot/events"
            spec.token = "token missing" if forged else "right token"
        return specs


def php_nest(pairs: list[tuple[str, str]]) -> dict:
    """Form fields with PHP-style keys as the nested object a JSON event would be."""
    root: dict = {}
    for key, value in pairs:
        head, bracket, rest = key.partition("[")
        path = [head] + (rest[:-1].split("][") if bracket and rest.endswith("]") else [])
        node = root
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return root


# --- the stored rows -------------------------------------------------------------


TABLES = [
    "conversations_conversation",
    "conversations_message",
    "conversations_receivedevent",
    "conversations_channelaccount",
    "integrations_portal",
]


def stored(stack: DrillStack) -> dict[str, int]:
    conn = stack.db()
    found = {}
    for table in TABLES:
        if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is not None:
            found[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    found["files in SPOOL_DIR"] = stack.spooled_files()
    return found


def run_specs(port: int, specs: list[Spec], concurrency: int) -> float:
    t = time.perf_counter()
    done = [0]
    lock = threading.Lock()

    def one(spec):
        send(port, spec)
        with lock:
            done[0] += 1

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, specs))
    return time.perf_counter() - t


def print_counts(specs: list[Spec]) -> None:
    for channel in ("bitrix24", "telegram"):
        for phase in ("forged", "valid"):
            mine = [s for s in specs if s.channel == channel and s.phase == phase]
            if not mine:
                continue
            total = Counter(str(s.status) for s in mine)
            print(
                f"\n  {channel}, {'forged or missing token' if phase == 'forged' else 'right token'}: "
                f"{len(mine)} requests, by status {dict(sorted(total.items()))}"
            )
            by_kind: dict[str, Counter] = defaultdict(Counter)
            for s in mine:
                by_kind[s.kind.split(":")[0].split(" (")[0] if s.kind.startswith(("wrong type", "huge")) else s.kind][
                    str(s.status)
                ] += 1
            for kind, counts in sorted(by_kind.items()):
                print(
                    f"    {kind[:44]:<46}{sum(counts.values()):>5}  "
                    + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
                )
            if phase == "forged":
                by_token: dict[str, Counter] = defaultdict(Counter)
                for s in mine:
                    by_token[s.token][str(s.status)] += 1
                print(
                    "    by token: "
                    + "; ".join(
                        f"{t}: " + ", ".join(f"{k}×{v}" for k, v in sorted(c.items()))
                        for t, c in sorted(by_token.items())
                    )
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bodies", type=int, default=2000, help="requests to each channel (2000)")
    parser.add_argument("--seed", type=int, default=11, help="the generator's seed (11)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (4)")
    add_drill_arguments(parser, drain_timeout=90, portals=False)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    first_fuzz = 1000  # event numbers of the fuzzed bodies start here; the fakes know dialogs up to 2 per body
    with DrillStack("fuzz", events=first_fuzz + 3 * args.bodies + 100, qclusters=1) as stack:
        stack.keep_logs = args.keep_logs
        stack.start_web()
        stack.start_workers()
        print(stack.describe())
        warm = Load(stack.port, stack.events_of(0, WARMUP), concurrency=1, processes=1).result()
        print_run(f"warm-up: {2 * WARMUP} valid events one at a time", warm)
        # Their replies first: the rows counted around phase 1 are then the forged requests' alone.
        warm_dialogs = stack.dialogs(r.key for r in warm["results"] if r.status == 200)
        stack.wait_answered(warm_dialogs, 60, since=time.time())
        fuzzers = [Bitrix24Fuzz(stack, first_fuzz), TelegramFuzz(stack, first_fuzz + args.bodies + 50)]
        body50 = random.Random(args.seed).randbytes(50 * MB)

        forged_n = int(args.bodies * FORGED_SHARE)
        forged = []
        for fuzzer in fuzzers:
            big = fuzzer.big(True, body50)
            forged += big + [fuzzer.spec(rng, True) for _ in range(forged_n - len(big))]
        rng.shuffle(forged)
        before = stored(stack)
        print(f"\nphase 1: {len(forged)} requests with a forged or missing token ({load_average()})")
        took = run_specs(stack.port, forged, args.concurrency)
        time.sleep(2)  # anything the worker would do with one (there should be nothing)
        after = stored(stack)
        changed = {k: (before[k], after[k]) for k in before if before[k] != after.get(k)}
        print(f"  sent in {took:.1f} s; stored before/after: {before} / {after}")

        valid = []
        for fuzzer in fuzzers:
            big = fuzzer.big(False, body50)
            valid += big + [fuzzer.spec(rng, False) for _ in range(args.bodies - forged_n - len(big))]
        rng.shuffle(valid)
        print(f"\nphase 2: {len(valid)} fuzzed requests with the right token ({load_average()})")
        took = run_specs(stack.port, valid, args.concurrency)
        print(f"  sent in {took:.1f} s; stored now: {stored(stack)}")
        del body50

        t = time.time()
        quiet_since = None
        while time.time() - t < args.drain_timeout:
            stack.services.supervise()
            waiting = queue_length(stack.redis_url)
            if waiting == 0:
                quiet_since = quiet_since or time.time()
                if time.time() - quiet_since >= 3:
                    break
            else:
                quiet_since = None
            time.sleep(0.5)
        print(f"  the task queue drained in {time.time() - t:.1f} s ({queue_length(stack.redis_url)} left)")
        conn = stack.db()
        replies = dict(
            conn.execute(
                "SELECT coalesce(nullif(delivery_state, ''), '-'), count(*) FROM conversations_message"
                " WHERE author = 'bot' GROUP BY 1"
            ).fetchall()
        )
        failed_answers = conn.execute(
            "SELECT count(*) FROM conversations_message WHERE author = 'customer' AND answer_failures > 0"
        ).fetchone()[0]
        fakes = {name: stack.counts(name) for name in stack.channels}
        not_sent = conn.execute(
            "SELECT m.delivery_state, left(m.delivery_error, 80), count(*),"
            " array_agg(DISTINCT left(c.external_id, 40)) FROM conversations_message m"
            " JOIN conversations_conversation c ON c.id = m.conversation_id"
            " WHERE m.author = 'bot' AND m.delivery_state <> 'sent' GROUP BY 1, 2"
        ).fetchall()
        print(
            f"  bot replies by state {replies}; customer messages whose answering raised: {failed_answers}; "
            f"sends the fakes refused: { {n: dict(c['refused']) for n, c in fakes.items() if c['refused']} }"
        )
        for state, error, count, dialogs in not_sent:
            print(f"    bot replies {state or '-'} ×{count}: {error or '(no error)'}; dialogs {dialogs[:5]!r}")

        every = forged + valid
        print("\ncounts by status (the kind of body, then the statuses):")
        print_counts(every)
        slowest = sorted(every, key=lambda s: s.seconds, reverse=True)[:6]
        print("\n  slowest: " + "; ".join(f"{s.channel} {s.kind[:40]} {s.seconds:.2f} s ({s.status})" for s in slowest))

        server_errors = [s for s in every if isinstance(s.status, int) and s.status >= 500]
        no_status = [s for s in every if not isinstance(s.status, int)]
        forged_2xx = [s for s in forged if isinstance(s.status, int) and 200 <= s.status < 300]
        if server_errors:
            for n, s in enumerate(server_errors[:20]):
                (stack.logdir / f"fuzz-5xx-{n}-{s.channel}.bin").write_bytes(s.body or b"")
            kinds = Counter(f"{s.channel} {s.phase} {s.kind} ({s.status})" for s in server_errors)
            print("\n  5xx: " + "; ".join(f"{k} ×{v}" for k, v in kinds.most_common()))
            raised = Counter(
                line.strip()
                for name in stack.services.procs
                for line in stack.services.tail(name, 10**9).splitlines()
                if re.match(r"^\w+(\.\w+)*(Error|Exception): ", line.strip())
            )
            print("  raised: " + "; ".join(f"{k[:160]} ×{v}" for k, v in raised.most_common(5)))
            print(f"  their bodies are in {stack.logdir}/fuzz-5xx-*.bin")
        if no_status:
            print("  without a status: " + "; ".join(f"{s.channel} {s.kind} ({s.status})" for s in no_status[:12]))
        print("\nerror lines in the services' logs:")
        if not stack.print_trouble(limit=10):
            print("  none")

        rows = []
        for channel in ("bitrix24", "telegram"):
            mine = [s for s in every if s.channel == channel]
            errors = [s for s in server_errors if s.channel == channel]
            rows.append(
                (
                    channel,
                    "0 × 5xx",
                    f"{len(errors)} of {len(mine)}"
                    + (f" ({dict(Counter(s.status for s in errors))})" if errors else ""),
                    not errors,
                )
            )
            unanswered = [s for s in no_status if s.channel == channel]
            rows.append(
                (
                    channel,
                    "answered with a status",
                    f"{len(mine) - len(unanswered)} of {len(mine)}"
                    + (f" ({dict(Counter(s.kind for s in unanswered))})" if unanswered else ""),
                    None,
                )
            )
            wrong = [s for s in forged_2xx if s.channel == channel]
            rows.append(
                (
                    channel,
                    "forged or missing token: no 2xx",
                    f"{len(wrong)} of {sum(1 for s in forged if s.channel == channel)}",
                    not wrong,
                )
            )
        rows.append(
            (
                "both",
                "forged or missing token: nothing stored",
                f"changed: {changed}" if changed else "no row, no spool file",
                not changed,
            )
        )
        return drill_verdict(
            stack,
            f"fuzz drill: {len(every)} requests, seed {args.seed} ({load_average()})",
            rows,
        )


if __name__ == "__main__":
    sys.exit(main())
