# storebot: Django + gunicorn. The same image runs the web server (default
# command) and the task worker (`python manage.py qcluster`, see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The app runs as an unprivileged user. Its home directory is writable so
# gunicorn can create its control socket in ~/.gunicorn.
RUN useradd --create-home --uid 10001 --user-group app

WORKDIR /app

# Dependencies first, so code changes do not invalidate this layer.
COPY requirements.txt .
RUN pip install -r requirements.txt

# The code stays owned by root: the app user can read it, not change it.
COPY . .

# Settings read these (config/settings.py). DATA_DIR is the only directory the
# app writes to (SQLite file, generated secret key when SECRET_KEY is unset);
# static files live outside it so a volume mounted on DATA_DIR cannot hide them.
ENV DATA_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

# collectstatic needs settings, and settings need a SECRET_KEY (or they would
# write a generated one into the image): a throwaway key for this line only,
# never stored in an image layer's environment.
RUN SECRET_KEY=collectstatic-build-only-not-a-secret python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q /app \
    && mkdir -p "$DATA_DIR/spool" "$DATA_DIR/media" \
    && chown -R app:app "$DATA_DIR"

USER app

EXPOSE 8000

# No curl in slim images: python's urllib. A 503 from /health raises and fails
# the check. X-Forwarded-Proto keeps SECURE_SSL_REDIRECT from redirecting this
# plain-HTTP probe (gunicorn trusts the header from 127.0.0.1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8000/health', headers={'X-Forwarded-Proto': 'https'}), timeout=4)"]

# gunicorn's settings are in gunicorn.conf.py: 8 sync workers, or
# WEB_CONCURRENCY at run time (`docker run -e WEB_CONCURRENCY=4`), and
# GUNICORN_CMD_ARGS for anything else (`--threads 4` switches to gthread). Only
# the address is given here, every interface because the proxy is another
# container. The proxy is what clients should reach: a sync worker serves one
# connection at a time, so a slow client holds it (deploy/nginx.conf).
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
