"""Settings for storebot.

Every value comes from the environment (django-environ) and has an embedded
default, so the project runs with no environment at all: SQLite file,
local-memory cache, django-q2's ORM broker, DEBUG off. `.env.example` lists
every variable read here; a test keeps the two in step.
"""

import os
import secrets
from decimal import Decimal
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for developers; real deployments set the
# environment directly, and the process environment always wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# An empty value means "use the default" for paths and URLs: `DATA_DIR=` in a
# .env file must not turn into the current directory.
DATA_DIR = Path(env("DATA_DIR", default="") or BASE_DIR / "var")


def _secret_key() -> str:
    """SECRET_KEY from the environment, else a random one kept in DATA_DIR.

    A key generated once per installation is safer than a default committed
    to the repository, and survives restarts so sessions stay valid.
    """
    key = env("SECRET_KEY", default="")
    if key:
        return key
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Production hardening: off by default so the embedded setup and the compose
# stack work over plain HTTP; turn them on behind a TLS-terminating proxy.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Container and load-balancer probes call /health over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "config.admin_site.StoreAdminConfig",  # django.contrib.admin, named for the store
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and Redoc as static files of ours: /api/docs/ loads nothing from a CDN.
    "drf_spectacular_sidecar",
    "django_q",
    "catalog",
    "conversations",
    "bots",
    "integrations",
    "integrations.telegram",
    "orders",
    "inbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": env.db_url_config(env("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # The web server and the task worker write to one SQLite file: wait for
    # the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django binds its own queries' parameters on the client, and those are
    # never prepared. Without a threshold psycopg prepares nothing at all, and
    # the one statement that records each webhook event through the driver's
    # cursor (conversations.services._accept_upsert) would be planned every time.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="storebot"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }
else:
    # Django's default of 300 entries would drop the sweep's "already queued"
    # marks (one per message) and rate-limit buckets in a backlog.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 20000}}
    }

Q_CLUSTER = {
    "name": "storebot",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT_S", default=600),
    # retry must exceed timeout, or django-q2 runs a slow task twice.
    "retry": env.int("Q_TIMEOUT_S", default=600) + 60,
    "catch_up": False,
    "label": _("Task queue"),
}
if REDIS_URL:
    Q_CLUSTER["django_redis"] = "default"
else:
    Q_CLUSTER["orm"] = "default"
# /health answers 503 naming the worker when it has finished no task for this long
# (a heartbeat task runs every minute); 0: /health does not look at the worker.
Q_HEARTBEAT_MAX_AGE_S = env.int("Q_HEARTBEAT_MAX_AGE_S", default=120)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env("LANGUAGE_CODE", default="ru-ru")
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Europe/Moscow")
USE_I18N = True
# Our own Russian date formats first (config/formats/ru): Django's put the month in the nominative.
FORMAT_MODULE_PATH = ["config.formats"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default="") or DATA_DIR / "static")
# Uploaded files (the photos of return requests): customers' data, served only
# to staff through admin, never at a public URL.
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # Requests to queue a catalog import (POST /catalog/scrape), per caller; more get 429.
    "DEFAULT_THROTTLE_RATES": {"scrape": env("SCRAPE_API_RATE", default="6/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "storebot API",
    "DESCRIPTION": "Catalog search and service endpoints of the storebot assistant.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One enum for a marketplace account's three per-stream modes (auto / draft / off).
    "ENUM_NAME_OVERRIDES": {"MarketplaceModeEnum": "integrations.marketplaces.models.Mode"},
}

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # urllib3 logs request lines at DEBUG, and Bitrix24 webhook URLs and
        # OAuth refresh queries carry secrets in them.
        "urllib3": {"level": "WARNING"},
    },
}

# Search tuning. The trigram threshold is pg_trgm's word similarity above which
# a misspelt word still counts as a match ("кревтки" vs "креветки" is 0.75).
SEARCH_TRIGRAM_THRESHOLD = env.float("SEARCH_TRIGRAM_THRESHOLD", default=0.5)

# Tilda Store catalog sync (catalog/importers/tilda.py, `manage.py scrape`).
TILDA_API_URL = env("TILDA_API_URL", default="https://store.tildaapi.com/api/getproductslist/")
# One or several store parts (catalogs), comma-separated; `scrape --discover URL` finds them.
TILDA_STORE_PARTUID = env.list("TILDA_STORE_PARTUID", default=[])
TILDA_RECID = env("TILDA_RECID", default="")
TILDA_PAGE_SIZE = env.int("TILDA_PAGE_SIZE", default=100)
SCRAPER_FULL_INTERVAL_S = env.int("SCRAPER_FULL_INTERVAL_S", default=86400)
SCRAPER_PRICE_INTERVAL_S = env.int("SCRAPER_PRICE_INTERVAL_S", default=3600)
SCRAPER_TIMEOUT_S = env.float("SCRAPER_TIMEOUT_S", default=20.0)
SCRAPER_RETRIES = env.int("SCRAPER_RETRIES", default=4)
SCRAPER_BACKOFF_S = env.float("SCRAPER_BACKOFF_S", default=1.0)
# Pause between pages, to stay a polite client of the store's API.
SCRAPER_PAGE_DELAY_S = env.float("SCRAPER_PAGE_DELAY_S", default=0.2)
SCRAPER_MAX_PAGES = env.int("SCRAPER_MAX_PAGES", default=1000)
# A full run that sees fewer products than this share of the catalog is refused
# as suspicious (a broken store page, a wrong partuid) unless forced.
SCRAPER_MIN_RATIO = env.float("SCRAPER_MIN_RATIO", default=0.5)
# A run still "running" after this long is taken as dead (its worker was killed).
SCRAPER_STALE_AFTER_S = env.int("SCRAPER_STALE_AFTER_S", default=3 * 3600)

# Bearer token for machine calls to the service API (POST /catalog/scrape).
API_TOKEN = env("API_TOKEN", default="")

# Chat channels: the registry (integrations/registry.py) names each channel's
# sender; CHANNEL_SENDERS overrides it with dotted class paths of
# conversations.channels.ChannelSender subclasses, e.g.
# CHANNEL_SENDERS="telegram=conversations.channels.LocmemSender" ("*": every
# channel). A channel with no sender fails its replies visibly.
CHANNEL_REGISTRY = "integrations.registry.CHANNELS"
CHANNEL_SENDERS = env.dict("CHANNEL_SENDERS", default={})

# The assistant. These are what the AssistantSettings row that staff edit in
# admin (bots.models) falls back to wherever a field is left blank there.
# LLM_PROVIDER: "openai", "gigachat", "locmem", or empty / "none" (no LLM).
# Unset is not empty: unset (None here), a key chooses the provider, GIGACHAT_AUTH_KEY
# GigaChat, else OPENAI_API_KEY the OpenAI-compatible API (bots.llm.configured_provider).
# django-environ reads an empty value as unset, hence the look at os.environ.
LLM_PROVIDER = env("LLM_PROVIDER", default="").strip().lower() if "LLM_PROVIDER" in os.environ else None
LLM_ENABLED = env.bool("LLM_ENABLED", default=True)
LLM_TIMEOUT_S = env.float("LLM_TIMEOUT_S", default=30.0)
LLM_TEMPERATURE = env.float("LLM_TEMPERATURE", default=0.3)
LLM_MAX_PROMPT_TOKENS = env.int("LLM_MAX_PROMPT_TOKENS", default=6000)
LLM_MAX_TOOL_ROUNDS = env.int("LLM_MAX_TOOL_ROUNDS", default=3)
# What the model's provider charges, in roubles per 1,000 tokens, for the inbox's reports (0: not shown).
LLM_PRICE_PER_1K_PROMPT_TOKENS = Decimal(env("LLM_PRICE_PER_1K_PROMPT_TOKENS", default="0"))
LLM_PRICE_PER_1K_COMPLETION_TOKENS = Decimal(env("LLM_PRICE_PER_1K_COMPLETION_TOKENS", default="0"))
HISTORY_TTL_S = env.int("HISTORY_TTL_S", default=24 * 3600)
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="")
OPENAI_MODEL = env("OPENAI_MODEL", default="gpt-4o-mini")
GIGACHAT_AUTH_KEY = env("GIGACHAT_AUTH_KEY", default="")
GIGACHAT_SCOPE = env("GIGACHAT_SCOPE", default="GIGACHAT_API_PERS")
GIGACHAT_OAUTH_URL = env("GIGACHAT_OAUTH_URL", default="https://ngw.devices.sberbank.ru:9443/api/v2/oauth")
GIGACHAT_API_URL = env("GIGACHAT_API_URL", default="https://gigachat.devices.sberbank.ru/api/v1")
GIGACHAT_MODEL = env("GIGACHAT_MODEL", default="GigaChat")
# Path to a CA bundle for GigaChat's certificates (Russian Trusted Root CA); empty uses the system store.
GIGACHAT_CA_BUNDLE = env("GIGACHAT_CA_BUNDLE", default="")
STORE_NAME = env("STORE_NAME", default="Морской рынок")

# Speech to text for voice messages (bots/stt): "" (off: the customer is asked
# to write), "openai" (any OpenAI-compatible /audio/transcriptions: OpenAI,
# faster-whisper servers, whisper.cpp's server, vLLM) or "locmem" (tests).
STT_PROVIDER = env("STT_PROVIDER", default="")
STT_BASE_URL = env("STT_BASE_URL", default="https://api.openai.com/v1")
STT_MODEL = env("STT_MODEL", default="whisper-1")
STT_API_KEY = env("STT_API_KEY", default="") or OPENAI_API_KEY
STT_LANGUAGE = env("STT_LANGUAGE", default="ru")
STT_TIMEOUT_S = env.float("STT_TIMEOUT_S", default=60.0)
# Pause before the one retry of a failed transcription (5xx, 429, a lost connection).
STT_RETRY_BACKOFF_S = env.float("STT_RETRY_BACKOFF_S", default=1.0)
# Longer recordings are not transcribed: the customer is asked to write instead.
STT_MAX_SECONDS = env.int("STT_MAX_SECONDS", default=300)
# Telegram's getFile serves at most 20 MB; other channels are held to the same.
STT_MAX_BYTES = env.int("STT_MAX_BYTES", default=20 * 1024 * 1024)

# Fernet key for secrets stored in the database (Bitrix24 tokens); empty derives
# one from SECRET_KEY. To make one:
#   python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY", default="")

# Where this service is reachable from outside (Bitrix24 posts events there).
PUBLIC_URL = env("PUBLIC_URL", default="http://127.0.0.1:8000")

# Bitrix24 chat bot (integrations/bitrix24). Either an inbound webhook...
B24_WEBHOOK_URL = env("B24_WEBHOOK_URL", default="")
B24_APPLICATION_TOKEN = env("B24_APPLICATION_TOKEN", default="")
# ...or an OAuth application installed on portals.
B24_DOMAIN = env("B24_DOMAIN", default="")
B24_CLIENT_ID = env("B24_CLIENT_ID", default="")
B24_CLIENT_SECRET = env("B24_CLIENT_SECRET", default="")
B24_OAUTH_TOKEN_URL = env("B24_OAUTH_TOKEN_URL", default="https://oauth.bitrix.info/oauth/token/")
B24_IMBOT_ID = env("B24_IMBOT_ID", default="")
B24_IMBOT_CODE = env("B24_IMBOT_CODE", default="storebot")
B24_IMBOT_CLIENT_ID = env("B24_IMBOT_CLIENT_ID", default="")
B24_IMBOT_NAME = env("B24_IMBOT_NAME", default="Консультант магазина")
B24_OPERATOR_QUEUE_ID = env("B24_OPERATOR_QUEUE_ID", default="")
B24_OPERATOR_DIALOG_ID = env("B24_OPERATOR_DIALOG_ID", default="")
B24_TIMEOUT_S = env.float("B24_TIMEOUT_S", default=10.0)
# Bitrix24 allows about 2 requests a second per portal with bursts; the limit
# is kept in the cache so every web and worker process shares it.
B24_RATE_LIMIT_PER_S = env.float("B24_RATE_LIMIT_PER_S", default=2.0)
B24_RATE_LIMIT_BURST = env.int("B24_RATE_LIMIT_BURST", default=50)
# Orders pushed to Bitrix24 CRM (orders/push.py) as deals, through the chat bot's
# webhook or OAuth portal; off, orders stay in our database only.
B24_CRM_ORDERS = env.bool("B24_CRM_ORDERS", default=False)
# The application token of an outgoing webhook sending ONCRMDEALUPDATE to
# PUBLIC_URL/b24/crm/events (webhook mode); empty: only the chat bot's tokens are accepted.
B24_CRM_EVENTS_TOKEN = env("B24_CRM_EVENTS_TOKEN", default="")
# The product catalog kept in Bitrix24 (integrations/bitrix24/catalog.py), imported from the
# orders' portal every B24_CATALOG_INTERVAL_S when on; `manage.py b24_import_catalog` runs it now.
B24_CATALOG_IMPORT = env.bool("B24_CATALOG_IMPORT", default=False)
B24_CATALOG_INTERVAL_S = env.int("B24_CATALOG_INTERVAL_S", default=3600)
# The catalog's iblock; empty: the CRM product catalog that catalog.catalog.list names.
B24_CATALOG_IBLOCK_ID = env("B24_CATALOG_IBLOCK_ID", default="")
# Warehouses whose stock counts (catalog.storeproduct.list), comma-separated; empty: the products' own quantity.
B24_CATALOG_STORE_IDS = env.list("B24_CATALOG_STORE_IDS", default=[])

# Orders (orders/): in roubles. Below the minimum (ORDER_MIN_TOTAL for delivery,
# ORDER_PICKUP_MIN_TOTAL for pickup) an order is refused; delivery costs
# ORDER_DELIVERY_COST unless the goods come to ORDER_FREE_DELIVERY_FROM (0:
# never free); pickup is free. The defaults are the demo store's FAQ.
ORDER_MIN_TOTAL = Decimal(env("ORDER_MIN_TOTAL", default="1500"))
ORDER_PICKUP_MIN_TOTAL = Decimal(env("ORDER_PICKUP_MIN_TOTAL", default="0"))
ORDER_DELIVERY_COST = Decimal(env("ORDER_DELIVERY_COST", default="390"))
ORDER_FREE_DELIVERY_FROM = Decimal(env("ORDER_FREE_DELIVERY_FROM", default="5000"))
# A basket left in a dialog is kept this long after its last change.
ORDER_BASKET_TTL_S = env.int("ORDER_BASKET_TTL_S", default=7 * 86400)
# A push to Bitrix24 that fails is retried with backoff this many times, then shown as failed.
ORDER_PUSH_MAX_ATTEMPTS = env.int("ORDER_PUSH_MAX_ATTEMPTS", default=8)
# Deal stages are also pulled this often (events can be missed), looking this far back.
ORDER_CRM_PULL_INTERVAL_S = env.int("ORDER_CRM_PULL_INTERVAL_S", default=300)
ORDER_CRM_PULL_WINDOW_S = env.int("ORDER_CRM_PULL_WINDOW_S", default=86400)
# A photo a customer sends for a return request (orders/returns.py) is kept up to this size.
RETURN_PHOTO_MAX_BYTES = env.int("RETURN_PHOTO_MAX_BYTES", default=10 * 1024 * 1024)

# Telegram bot (integrations/telegram): the default account; more bots are
# channel accounts in admin. TELEGRAM_API_URL may point at a self-hosted Bot API server.
TELEGRAM_BOT_TOKEN = env("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_WEBHOOK_SECRET = env("TELEGRAM_WEBHOOK_SECRET", default="")
TELEGRAM_OPERATOR_CHAT_ID = env("TELEGRAM_OPERATOR_CHAT_ID", default="")
TELEGRAM_API_URL = env("TELEGRAM_API_URL", default="") or "https://api.telegram.org"
TELEGRAM_TIMEOUT_S = env.float("TELEGRAM_TIMEOUT_S", default=10.0)
# Telegram allows about one message a second in a chat and 30 a second per bot.
TELEGRAM_RATE_PER_CHAT_PER_S = env.float("TELEGRAM_RATE_PER_CHAT_PER_S", default=1.0)
TELEGRAM_RATE_PER_BOT_PER_S = env.float("TELEGRAM_RATE_PER_BOT_PER_S", default=25.0)

# Marketplaces (integrations/marketplaces): accounts, keys and API addresses are set in admin.
# What a first poll finds older than this many days is recorded for staff, not answered by the bot.
MARKETPLACE_BACKLOG_DAYS = env.int("MARKETPLACE_BACKLOG_DAYS", default=14)

# Webhooks of every channel: a larger body is refused with 413.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
# While the database cannot take an event, the webhook keeps it here (on the
# web node's own disk) and answers 200; replayed once the database is back
# (integrations.spool).
SPOOL_DIR = env("SPOOL_DIR", default="") or str(DATA_DIR / "spool")
# Past this much kept, an event gets 503 with Retry-After instead (0: no spool).
SPOOL_MAX_BYTES = env.int("SPOOL_MAX_BYTES", default=256 * 1024 * 1024)
# The web process that kept an event (or could not queue a task) catches up
# in a background thread the moment the database (or queue) answers again.
OUTAGE_CATCH_UP_THREAD = env.bool("OUTAGE_CATCH_UP_THREAD", default=True)

# Replies: a failed send is retried with backoff this many times; a customer
# message left without a reply this long is picked up again by the sweep.
REPLY_MAX_ATTEMPTS = env.int("REPLY_MAX_ATTEMPTS", default=5)
REPLY_SWEEP_AFTER_S = env.int("REPLY_SWEEP_AFTER_S", default=60)
# Answering a message that raises (not a failed send) is tried this many times,
# with backoff; then the dialog goes to an operator.
ANSWER_MAX_ATTEMPTS = env.int("ANSWER_MAX_ATTEMPTS", default=3)
# A send a worker started is not started again by another for this long: past
# it, the worker is taken as dead between sending and saving. Longer than a
# channel's slowest send (a multi-part Telegram answer with its retries).
REPLY_SEND_LEASE_S = env.int("REPLY_SEND_LEASE_S", default=180)
