"""Crossdock settings, read from environment variables only (see README, "Configuration").

With no ``DATABASE_URL`` set, Crossdock runs on its *embedded default*: a SQLite file and kombu's
filesystem broker under ``CROSSDOCK_VAR_DIR`` (``./var``), with real worker processes. Production and
the test suite set ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis, or RabbitMQ plus
``CROSSDOCK_REDIS_URL``: see docs/subsystems/brokers.md).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue as KombuQueue

from hub.core.env import env_bool, env_int, env_list, env_rate, env_secret, env_str
from hub.core.queues import ROUTES, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CROSSDOCK_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DATABASE_URL = env_secret("DATABASE_URL")
# Embedded default: no database server configured. Quick look only; never for production.
EMBEDDED = DATABASE_URL is None
if EMBEDDED:
    VAR_DIR.mkdir(parents=True, exist_ok=True)


def _embedded_secret(filename: str, make: callable) -> str:  # type: ignore[valid-type]
    """A secret kept in ``VAR_DIR`` so the embedded default survives restarts without configuration."""
    path = VAR_DIR / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", EMBEDDED)

SECRET_KEY = env_secret("SECRET_KEY")
if SECRET_KEY is None:
    if not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set (production mode)")
    SECRET_KEY = _embedded_secret("secret_key", lambda: secrets.token_urlsafe(50))
elif len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY is shorter than 32 characters")

# Fernet keys, comma-separated; the first encrypts, all decrypt (rotation: prepend the new key).
_encryption_keys = env_secret("CROSSDOCK_ENCRYPTION_KEY")
if _encryption_keys is None:
    if not EMBEDDED:
        raise ImproperlyConfigured(
            "CROSSDOCK_ENCRYPTION_KEY must be set when DATABASE_URL is set; make one with "
            '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
        )
    _encryption_keys = _embedded_secret("encryption_key", lambda: Fernet.generate_key().decode())
CROSSDOCK_ENCRYPTION_KEYS = [key.strip() for key in _encryption_keys.split(",")]
for _index, _key in enumerate(CROSSDOCK_ENCRYPTION_KEYS):
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            f"CROSSDOCK_ENCRYPTION_KEY item {_index + 1} is not a Fernet key (32 url-safe base64 bytes)"
        ) from None

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "canonical",
    "hub.core",
    "hub.connections",
    "hub.inbox",
    "hub.outbox",
    "hub.deadletters",
    "hub.mappings",
    "hub.ledger",
    "hub.workflows",
    "hub.api",
    "hub.ops",
    "reconciliation",
    # The top layer: the demo drives every app below it.
    "hub.demo",
]

MIDDLEWARE = [
    "hub.core.correlation.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hub.urls"
WSGI_APPLICATION = "hub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The ops console's admin overrides (admin/index.html) must win over django.contrib.admin's
        # own, which comes first in INSTALLED_APPS, so its folder is named here too, not only found
        # as an app directory.
        "DIRS": [BASE_DIR / "hub" / "ops" / "templates"],
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

# --- Database -------------------------------------------------------------------------------------
if EMBEDDED:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "crossdock.sqlite3",
            # Several processes (web, worker, beat) share the file: wait for the write lock (seconds).
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }
else:
    try:
        _db = dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("CROSSDOCK_DB_CONN_MAX_AGE", 60, minimum=0)
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL cannot be parsed: {exc}") from None
    if _db.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgres:// URL (got engine {_db.get('ENGINE')!r}); "
            "unset it to use the embedded SQLite default"
        )
    if not _db.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL names no database")
    _db["CONN_HEALTH_CHECKS"] = True
    DATABASES = {"default": _db}

# DEBUG pages show settings, SQL and tracebacks to whoever triggers an error: on a database server
# (a deployment, or a shared one) DEBUG is refused unless the override says it is a developer's own.
_allow_debug_with_database = env_bool("CROSSDOCK_ALLOW_DEBUG_WITH_DATABASE", False)
if DEBUG and not EMBEDDED and not _allow_debug_with_database:
    raise ImproperlyConfigured(
        f"DEBUG={env_str('DEBUG')} with a database server (DATABASE_URL) is refused: debug pages show "
        "settings, SQL and tracebacks to anyone. Unset DEBUG for production; on a development database of "
        "your own, set CROSSDOCK_ALLOW_DEBUG_WITH_DATABASE=1 as well."
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite (embedded default only) cannot build the two NULLS NOT DISTINCT unique constraints; the
# services that rely on them also look up before writing, and SQLite serializes writers anyway.
SILENCED_SYSTEM_CHECKS = ["models.W047"] if EMBEDDED else []

# --- Broker, cache, Celery ------------------------------------------------------------------------
_BROKER_SCHEMES = {"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem"}
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL")
if CELERY_BROKER_URL is None:
    CELERY_BROKER_URL = "filesystem://localhost//"  # a host keeps kombu from warning on every connect
_broker_scheme = urlsplit(CELERY_BROKER_URL).scheme
if _broker_scheme not in _BROKER_SCHEMES:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL has scheme {_broker_scheme!r}; use one of {sorted(_BROKER_SCHEMES)}"
    )
BROKER_IS_FILESYSTEM = _broker_scheme == "filesystem"
BROKER_IS_REDIS = _broker_scheme in {"redis", "rediss"}
if BROKER_IS_FILESYSTEM:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Producers and consumers share one folder; messages are files.
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
elif BROKER_IS_REDIS:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Seconds a reserved, unacknowledged message waits before Redis redelivers it. Longer than any
        # task's hard time limit, so a slow task is not run twice; work that must wait longer lives in
        # the database (next_attempt_at) and is woken by beat, never by a long countdown.
        "visibility_timeout": env_int("CROSSDOCK_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=60),
    }
else:
    # RabbitMQ redelivers an unacknowledged message when the consumer's channel closes (a dead worker),
    # not after a timeout; its consumer_timeout (rabbitmq.conf, default 30 min) must stay longer than
    # any task's hard time limit. See docs/subsystems/brokers.md.
    CELERY_BROKER_TRANSPORT_OPTIONS = {}

# Redis beside the broker: the cache, wake-up flags, rate-limit counters and breaker state (and task
# results) live there. With a Redis broker it defaults to the broker URL (Crossdock's keys carry
# CROSSDOCK_CACHE_PREFIX); with RabbitMQ it must be given. Only the embedded default runs without it.
CROSSDOCK_REDIS_URL = env_secret("CROSSDOCK_REDIS_URL")
if CROSSDOCK_REDIS_URL is None and BROKER_IS_REDIS:
    CROSSDOCK_REDIS_URL = CELERY_BROKER_URL
if CROSSDOCK_REDIS_URL is None and not EMBEDDED:
    raise ImproperlyConfigured(
        f"CROSSDOCK_REDIS_URL must be set when CELERY_BROKER_URL is not Redis ({_broker_scheme}://): "
        "the cache, wake-up flags and rate limits live in Redis"
    )
if CROSSDOCK_REDIS_URL is not None and urlsplit(CROSSDOCK_REDIS_URL).scheme not in {"redis", "rediss"}:
    raise ImproperlyConfigured("CROSSDOCK_REDIS_URL must be a redis:// or rediss:// URL")

CELERY_RESULT_BACKEND = env_secret("CELERY_RESULT_BACKEND")
if CELERY_RESULT_BACKEND is None:
    CELERY_RESULT_BACKEND = CROSSDOCK_REDIS_URL  # None (no results) on the embedded default
CELERY_RESULT_EXPIRES = 3600  # seconds
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = Queue.DEFAULT.value
# Declaring every queue makes a plain `celery worker` consume all of them; `-Q` narrows a worker.
CELERY_TASK_QUEUES = tuple(KombuQueue(queue.value, routing_key=queue.value) for queue in Queue)
CELERY_TASK_ROUTES = {pattern: {"queue": queue.value} for pattern, queue in ROUTES.items()}
CELERY_TASK_SOFT_TIME_LIMIT = 60  # seconds; tasks that need longer say so in their decorator
CELERY_TASK_TIME_LIMIT = 120  # seconds
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = True  # Flower's live view
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

if CROSSDOCK_REDIS_URL is not None:
    CACHES = {
        "default": {
            "BACKEND": "hub.core.cache.ReusingRedisCache",
            "LOCATION": CROSSDOCK_REDIS_URL,
            "KEY_PREFIX": env_str("CROSSDOCK_CACHE_PREFIX", "crossdock"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    # Embedded default: a cache shared by the web processes through files.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- API ------------------------------------------------------------------------------------------
# Reverse proxies in front of Crossdock that append to X-Forwarded-For. 0 (default): the socket address
# is the caller, so a forged X-Forwarded-For cannot dodge a rate limit or a login lockout; n: the n-th
# address from the right. Used by the API throttles and django-axes (hub.api.v1.throttling.client_ip).
CROSSDOCK_NUM_PROXIES = env_int("CROSSDOCK_NUM_PROXIES", 0, minimum=0, maximum=10)
CROSSDOCK_API_RATE = env_rate("CROSSDOCK_API_RATE", "1200/min")
CROSSDOCK_PAGE_SIZE = env_int("CROSSDOCK_PAGE_SIZE", 50, minimum=1, maximum=1000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hub.api.v1.authentication.ApiKeyAuthentication",
        "hub.api.v1.authentication.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["hub.api.v1.permissions.IsApiClient"],
    "DEFAULT_THROTTLE_CLASSES": ["hub.api.v1.throttling.ApiClientRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "hub.api.v1.pagination.Pagination",
    "PAGE_SIZE": CROSSDOCK_PAGE_SIZE,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hub.api.v1.problems.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": CROSSDOCK_NUM_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Crossdock API",
    "DESCRIPTION": "Logistics integration hub: canonical orders, shipments, invoices and their events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hub.api.v1.schema.add_problem_responses",
    ],
}

# --- Web ------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = (
    VAR_DIR / "static" if EMBEDDED else Path(env_str("CROSSDOCK_STATIC_ROOT", str(VAR_DIR / "static")))
)
LOGIN_URL = "admin:login"
# Messages live in the server-side session, not a cookie: the admin shows a new API key once as a message.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- HTTPS ----------------------------------------------------------------------------------------
# CROSSDOCK_HTTPS=1: served over HTTPS by a TLS-terminating proxy that sets X-Forwarded-Proto (and
# drops a client's own). Turns on HSTS, secure cookies and the HTTP -> HTTPS redirect in one place.
CROSSDOCK_HTTPS = env_bool("CROSSDOCK_HTTPS", False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("CROSSDOCK_BEHIND_TLS_PROXY", CROSSDOCK_HTTPS) else None
)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = CROSSDOCK_HTTPS or env_bool(
    "CROSSDOCK_SECURE_COOKIES", not DEBUG and not EMBEDDED
)
SECURE_SSL_REDIRECT = CROSSDOCK_HTTPS
# Load balancers and `./crossdock up` probe /health/ over plain HTTP: it answers, never redirects.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
# Seconds browsers remember to use HTTPS only (one year by default; shorten while trying HTTPS out).
SECURE_HSTS_SECONDS = env_int("CROSSDOCK_HSTS_SECONDS", 31_536_000, minimum=0) if CROSSDOCK_HTTPS else 0

# --- Admin login ----------------------------------------------------------------------------------
# django-axes locks a username from one address after CROSSDOCK_LOGIN_FAILURE_LIMIT failed logins, for
# CROSSDOCK_LOGIN_COOLOFF_MINUTES; the right password is refused meanwhile. Attempts live in the
# database (axes' database handler); `manage.py axes_reset_username NAME` unlocks at once.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("CROSSDOCK_LOGIN_FAILURE_LIMIT", 5, minimum=1)  # failed logins
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CROSSDOCK_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful login clears the failures counted so far
AXES_CLIENT_IP_CALLABLE = "hub.api.v1.throttling.client_ip"  # honours CROSSDOCK_NUM_PROXIES
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "hub.core.correlation.CorrelationIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [cid=%(correlation_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["correlation"]},
    },
    "root": {"handlers": ["console"], "level": env_str("CROSSDOCK_LOG_LEVEL", "INFO")},
}

# --- Pipeline -------------------------------------------------------------------------------------
# Outbound URLs resolving to any non-global address (private, loopback, link-local, carrier-grade
# NAT, ...) are refused unless this is set (SSRF guard, docs/subsystems/network.md).
CROSSDOCK_ALLOW_PRIVATE_NETWORKS = env_bool("CROSSDOCK_ALLOW_PRIVATE_NETWORKS", EMBEDDED)
# Outbound HTTP caps: the largest response body read (bytes; larger answers are refused) and the
# longest one request may take from connect to its last body byte (seconds; a server trickling bytes
# is cut off). Never shorter than the calling client's own read timeout.
CROSSDOCK_HTTP_MAX_RESPONSE_BYTES = env_int(
    "CROSSDOCK_HTTP_MAX_RESPONSE_BYTES", 10_485_760, minimum=1024
)  # bytes (10 MiB)
CROSSDOCK_HTTP_TOTAL_TIMEOUT_S = env_int("CROSSDOCK_HTTP_TOTAL_TIMEOUT_S", 60, minimum=1)  # seconds
# Directory (a path; made absolute) under which every connection's drop_folder must lie; symbolic
# links below it are refused, at save and at each scan (docs/subsystems/network.md).
CROSSDOCK_DROP_ROOT = str(Path(env_str("CROSSDOCK_DROP_ROOT", str(VAR_DIR / "drop"))).resolve())
CROSSDOCK_INBOUND_MAX_BYTES = env_int(
    "CROSSDOCK_INBOUND_MAX_BYTES", 1_048_576, minimum=1024
)  # bytes per message
CROSSDOCK_INBOUND_RATE = env_rate("CROSSDOCK_INBOUND_RATE", "600000/min")  # per API client, inbound endpoint
# Django's own body limit answers 400; keep it above the inbound limit so the inbound view answers 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, CROSSDOCK_INBOUND_MAX_BYTES + 1)
# Seconds a claimed inbound batch / delivery batch stays claimed without a renewal. The worker
# holding it renews it every third of that (hub.core.lease), so this bounds how long a dead worker's
# claim waits for the sweeper, not how long honest work may take.
CROSSDOCK_INBOX_LEASE_S = env_int("CROSSDOCK_INBOX_LEASE_S", 30, minimum=1)
CROSSDOCK_DELIVERY_LEASE_S = env_int("CROSSDOCK_DELIVERY_LEASE_S", 30, minimum=1)
# Crashes (an unexpected error while processing, or a claim whose lease expired: a killed worker)
# after which an inbound message is dead-lettered as poison and never claimed again. Count of crashes.
CROSSDOCK_INBOX_POISON_AFTER = env_int("CROSSDOCK_INBOX_POISON_AFTER", 3, minimum=1)
# Circuit breaker per outbound connection (hub/outbox/breaker.py), on the failure rate over a sliding
# window; a connection's config.breaker_<name> overrides each one. It opens when the last WINDOW_S
# seconds hold at least MIN_CALLS sends and FAILURE_PERCENT % or more of them failed; stays open
# OPEN_S seconds; then lets PROBES sends through and closes or reopens on their answers. Above 50 %
# by default: a receiver failing half its requests is flaky, not down, and is left to the back-off.
CROSSDOCK_BREAKER_WINDOW_S = env_int("CROSSDOCK_BREAKER_WINDOW_S", 30, minimum=1, maximum=3600)  # seconds
CROSSDOCK_BREAKER_MIN_CALLS = env_int("CROSSDOCK_BREAKER_MIN_CALLS", 20, minimum=1)  # sends in the window
CROSSDOCK_BREAKER_FAILURE_PERCENT = env_int(
    "CROSSDOCK_BREAKER_FAILURE_PERCENT", 75, minimum=1, maximum=100
)  # % of the window's sends
CROSSDOCK_BREAKER_OPEN_S = env_int("CROSSDOCK_BREAKER_OPEN_S", 30, minimum=1, maximum=3600)  # seconds
CROSSDOCK_BREAKER_PROBES = env_int(
    "CROSSDOCK_BREAKER_PROBES", 3, minimum=1, maximum=100
)  # sends when half-open
if env_str("CROSSDOCK_BREAKER_THRESHOLD") is not None:
    # It counted consecutive failures; the breaker now works on a failure rate. Refuse rather than ignore it.
    raise ImproperlyConfigured(
        "CROSSDOCK_BREAKER_THRESHOLD is no longer read: the circuit breaker opens on a failure rate; set "
        "CROSSDOCK_BREAKER_MIN_CALLS and CROSSDOCK_BREAKER_FAILURE_PERCENT instead"
    )
