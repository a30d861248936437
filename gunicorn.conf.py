"""gunicorn's settings for storebot: the one place they are set.

gunicorn reads ./gunicorn.conf.py from its working directory; the Dockerfile,
docker-compose.yml, the Makefile and deploy/README.md's systemd unit also name it
with --config and give only the address (--bind; `make run` also fewer workers).
The command line and GUNICORN_CMD_ARGS override anything here, e.g.
GUNICORN_CMD_ARGS="--threads 4" for gthread workers.

gunicorn runs behind a buffering proxy (deploy/nginx.conf). A sync worker serves
one connection at a time and gunicorn has no header or body timeout of its own:
20 connections sending a header line every 5 s kept every worker busy until the
worker timeout killed it (bench/drill_slowloris.py shows both set-ups). The proxy
reads whole requests before it passes them on and takes whole responses off the
worker, so the limits below are a second line for a request the proxy let through.
"""

import os

wsgi_app = "config.wsgi:application"

# Loopback: on a host without Docker only the proxy beside it should reach
# gunicorn. The container binds 0.0.0.0:8000 on the command line instead.
bind = ["127.0.0.1:8000"]

# Sync workers, about four per core: requests are short and mostly wait on
# PostgreSQL and Redis, and on 2 cores 8 sync workers acknowledged the most
# webhook events in bench/webhook.py (gthread's threads contend for one GIL per
# process and did worse). Set WEB_CONCURRENCY for another machine; gunicorn itself
# reads the same variable, this only changes its default of 1.
workers = int(os.environ.get("WEB_CONCURRENCY") or 8)

# A worker silent this long is killed: the longest legitimate request is the
# admin's CSV import (up to 20 MB, catalog/forms.py), about 5 s per 10 MB on
# SQLite and more on a loaded PostgreSQL, so the default 30 s is too close.
# deploy/nginx.conf waits a little longer (proxy_read_timeout) so that this
# timeout, logged as WORKER TIMEOUT, is the one that decides.
timeout = 60
# On SIGTERM (a deploy, `docker compose stop`) the requests in hand may finish
# for this long; docker-compose.yml's stop_grace_period for web is longer.
graceful_timeout = 30
# Sync workers close every connection after its response and ignore this; with
# gthread workers an idle keep-alive connection holds a thread, so keep it short.
keepalive = 2

# The same bounds as the proxy's large_client_header_buffers (4 × 8k): a request
# line or a header field up to 8 KB; 50 fields is over twice what a browser sends.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 50

# Who may set the scheme (X-Forwarded-Proto) for gunicorn: the proxy on the same
# host. Under Docker the proxy's address is not fixed; there Django's
# USE_X_FORWARDED_PROTO reads the header, and clients reach gunicorn only through
# the proxy, which sets it itself (web's port is not published, docker-compose.yml).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = "-"
# Workers' heartbeat files in memory when there is /dev/shm: on a container's
# disk-backed overlay filesystem a slow write can make a busy worker look silent.
# gunicorn makes its files there with mkstemp, as it would in /tmp.
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None
