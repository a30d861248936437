"""Shared by the bench scripts: their PostgreSQL database, created when missing, and a meter of its statements."""

import time
from urllib.parse import unquote, urlsplit


def ensure_database(url: str) -> None:
    """Create the database of the URL if it does not exist yet."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    params = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "dbname": "postgres",
        "autocommit": True,
    }
    if parts.password:
        params["password"] = unquote(parts.password)
    with psycopg.connect(**params) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


class SqlMeter:
    """The statements of one call (a connection.execute_wrapper): how many, the ms in them, and the slowest
    (a lock waited for shows there)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.ms = 0.0
        self.slowest = (0.0, "")

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            ms = (time.perf_counter() - start) * 1000
            self.count += 1
            self.ms += ms
            if ms > self.slowest[0]:
                self.slowest = (ms, " ".join(sql.split()))
