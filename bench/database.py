"""Shared by the bench scripts: their PostgreSQL database, created when missing."""

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
