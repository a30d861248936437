"""Webhook events kept on the web node's disk while the database cannot take them.

Bitrix24 never sends an event again, so an event the database could not
record during a restart or a failover would be lost. The webhook edge
(integrations.webhooks) keeps such a request here instead and answers 200;
only when the spool cannot take it either (no room, a disk error) is the
answer 503 with Retry-After.

Why files on the web node, and not Redis: the spool must work when the other
services do not. The embedded setup has no Redis, a Redis kept without
persistence would lose what it holds in the same incident, and a Redis
outage at the time of a database outage would leave nothing to keep events
in. A local disk is there whenever the web process is.

One file per event, maildir-style: written to `tmp/`, fsynced, then renamed
into `new/` (and the directory fsynced), so an event is either wholly kept or
not at all, and the web server's processes write side by side without a lock.
Each file is the request's path, query, content type, headers and body,
encrypted and authenticated with the key of the stored secrets
(conversations.encryption): a request holds channel tokens, which are never
stored in the clear.

Replay (`replay()`) runs the kept request through the same view that took it,
so it is verified and recorded the way a live one is: the recording's unique
keys make a replayed event count once, however often replay is cut short
between recording it and deleting its file. It runs
- in the web process that kept an event, in a background thread, as soon as
  the database answers again (integrations.recovery);
- in the task worker's sweep every minute, where the spool directory is
  shared with it (docker-compose.yml mounts one volume in both);
- at start-up: `manage.py replay_spool`, before the web server starts.
With several web nodes each keeps and replays its own spool; nothing needs a
shared file system. One replay at a time per directory (an flock): events are
replayed in the order they came.

A request the view refuses on replay (a forged token, a body it cannot read)
is dropped and logged, as it would have been refused live; one that fails for
another reason is moved to `failed/` and logged, never replayed in a loop.
"""

import base64
import contextlib
import fcntl
import io
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.urls import Resolver404, resolve
from django.utils import timezone

from conversations import encryption
from conversations.services import DATABASE_DOWN

logger = logging.getLogger(__name__)

# Set in a replayed request's environ: the webhook edge lets a database error
# through instead of keeping the request again.
REPLAY_KEY = "storebot.spool_replay"
FORMAT = 1
# Headers a channel's view may read (the secret header, the content type);
# cookies and credentials of a browser are never kept.
_DROPPED_HEADERS = {"HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION"}


@dataclass
class ReplayResult:
    replayed: int = 0
    refused: int = 0
    failed: int = 0
    pending: int = 0
    # The database failed again (or another replay holds the lock): files are left for the next run.
    stopped: bool = False


def directory() -> Path | None:
    return Path(settings.SPOOL_DIR) if settings.SPOOL_DIR else None


def keep(request) -> bool:
    """Keep a webhook request for replay; False when the spool cannot take it (then the caller answers 503)."""
    root = directory()
    if root is None:
        return False
    record = _encode(request)
    try:
        new, tmp = _ensure(root)
        if _size(new) + len(record) > settings.SPOOL_MAX_BYTES:
            logger.error("webhook spool %s is full (SPOOL_MAX_BYTES): the event is refused with 503", root)
            return False
        # Nanoseconds first: replay order is arrival order; pid and random
        # bits keep names apart across processes and within one.
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.event"
        _write_durably(tmp / name, record)
        os.rename(tmp / name, new / name)
        _fsync_directory(new)
    except OSError as exc:
        logger.error("webhook spool %s cannot take the event (%s): answered 503", root, exc)
        return False
    return True


def pending() -> int:
    root = directory()
    if root is None or not (root / "new").is_dir():
        return 0
    return sum(1 for entry in os.scandir(root / "new") if entry.name.endswith(".event"))


def replay() -> ReplayResult:
    """Run every kept request through its view, oldest first, until none is left or the database fails again."""
    result = ReplayResult()
    root = directory()
    if root is None or not (root / "new").is_dir():
        return result
    with _replay_lock(root) as locked:
        if not locked:
            result.pending, result.stopped = pending(), True
            return result
        for path in sorted(p for p in (root / "new").iterdir() if p.name.endswith(".event")):
            outcome = _replay_one(root, path)
            if outcome == "database down":
                result.stopped = True
                break
            setattr(result, outcome, getattr(result, outcome) + 1)
        _clear_abandoned(root / "tmp")
    result.pending = pending()
    if result.replayed or result.refused or result.failed:
        logger.info(
            "webhook spool: %s events replayed, %s refused, %s failed, %s left",
            result.replayed,
            result.refused,
            result.failed,
            result.pending,
        )
    return result


def _replay_one(root: Path, path: Path) -> str:
    try:
        record = _decode(path.read_bytes())
        request = _request(record)
        match = resolve(record["path"])
    except FileNotFoundError:
        return "replayed"  # taken by a replay that did not hold the lock (a lock broken by hand)
    except (InvalidToken, ValueError, KeyError, TypeError, Resolver404) as exc:
        _set_aside(root, path, f"unreadable ({type(exc).__name__})")
        return "failed"
    try:
        response = match.func(request, *match.args, **match.kwargs)
    except DATABASE_DOWN:
        return "database down"
    except Exception:
        logger.exception("webhook spool: replaying %s raised", path.name)
        _set_aside(root, path, "raised on replay")
        return "failed"
    status = response.status_code
    if 200 <= status < 300:
        path.unlink(missing_ok=True)
        return "replayed"
    if 400 <= status < 500:
        logger.warning("webhook spool: %s for %s refused on replay (%s); dropped", path.name, record["path"], status)
        path.unlink(missing_ok=True)
        return "refused"
    _set_aside(root, path, f"answered {status} on replay")
    return "failed"


# --- the file format ---------------------------------------------------------


def _encode(request) -> bytes:
    meta = request.META
    headers = {
        key: value
        for key, value in meta.items()
        if key.startswith("HTTP_") and key not in _DROPPED_HEADERS and isinstance(value, str)
    }
    record = {
        "format": FORMAT,
        "received_at": timezone.now().isoformat(),
        "path": request.path_info,
        "query": meta.get("QUERY_STRING", ""),
        "content_type": meta.get("CONTENT_TYPE", ""),
        "remote_addr": meta.get("REMOTE_ADDR", ""),
        "headers": headers,
        "body": base64.b64encode(request.body).decode("ascii"),
    }
    return encryption.fernet().encrypt(json.dumps(record).encode())


def _decode(data: bytes) -> dict:
    record = json.loads(encryption.fernet().decrypt(data))
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError("unknown spool record format")
    return record


def _request(record: dict) -> WSGIRequest:
    body = base64.b64decode(record["body"])
    environ = {
        **{key: str(value) for key, value in dict(record["headers"]).items() if key.startswith("HTTP_")},
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": str(record["path"]),
        "QUERY_STRING": str(record["query"]),
        "CONTENT_TYPE": str(record["content_type"]),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": str(record.get("remote_addr", "")),
        "SERVER_NAME": "spool",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "https",
        REPLAY_KEY: True,
    }
    return WSGIRequest(environ)


# --- the files ---------------------------------------------------------------


def _ensure(root: Path) -> tuple[Path, Path]:
    new, tmp = root / "new", root / "tmp"
    for folder in (new, tmp):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return new, tmp


def _size(folder: Path) -> int:
    total = 0
    for entry in os.scandir(folder):
        with contextlib.suppress(FileNotFoundError):
            total += entry.stat().st_size
    return total


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# A file still in tmp/ this long after it was begun was never renamed into
# new/: its process died mid-write, before the event was acknowledged.
ABANDONED_AFTER_S = 3600


def _clear_abandoned(tmp: Path) -> None:
    if not tmp.is_dir():
        return
    cutoff = time.time() - ABANDONED_AFTER_S
    for entry in os.scandir(tmp):
        with contextlib.suppress(FileNotFoundError):
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)


def _set_aside(root: Path, path: Path, why: str) -> None:
    failed = root / "failed"
    failed.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, failed / path.name)
    logger.error("webhook spool: %s %s; moved to %s", path.name, why, failed)


@contextlib.contextmanager
def _replay_lock(root: Path):
    with open(root / "replay.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
