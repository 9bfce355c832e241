"""Tryton JSON-RPC over the hub's HTTP client: the `tryton` connector's only I/O.

Protocol facts (trytond 8.0, checked against the peer; see /work/shared/peers/tryton.md):

- Database calls go to ``POST <url>/<database>/rpc/`` with a body of **exactly** the three keys
  ``{"id", "method", "params"}``. With those, answers are ``{"id", "result"}`` or
  ``{"id", "error": [name, args]}`` with HTTP 200; any other key set switches trytond to a raw mode
  whose errors are HTML pages, so the envelope is never extended.
- Model methods take their positional arguments **plus the context as the last parameter** (422
  without it). The context comes from ``model.res.user.get_preferences`` (it carries ``company``,
  without which ``sale.sale.create`` fails on the company record rule).
- ``Decimal``, ``date``, ``datetime``, ``time``, ``timedelta`` and ``bytes`` travel as
  ``{"__class__": ..., ...}`` objects (``encode``/``decode`` below).
- Auth: ``common.db.login`` returns ``[user_id, token, ...]`` (an argon2 check, ~340 ms); later calls
  send ``Authorization: Session base64(login:user_id:token)``. A missing or expired session is HTTP
  401 with an empty body. Methods declared ``fresh_session`` (``account.invoice.post``) answer 401
  once the session has been idle longer than the server's ``[session] timeout``. A 401 is raised
  before the method runs, so logging in again and repeating the call once is always safe.

Sessions are cached per process by (url, database, user, password digest), so the hub does not pay
a login per operation and a rotated password starts a new session.

Errors follow connectors.errors: connection failures, 408/423/429/5xx, ConcurrencyException and
database-lock errors are transient; UserError/UserWarning become PermanentError carrying Tryton's
message; 401 after a fresh login (or a refused login) is AuthError; 403 (method not callable over
RPC) and other 4xx are permanent.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from connectors.base import HttpClient
from connectors.errors import AuthError, PermanentError, TransientError

LANGUAGE = "en"  # login language; messages (UserError texts) come back in it
EXCERPT_CHARS = 300  # characters of an unexpected response body quoted in an error
# A server-side exception that is not a Tryton one is reported as [str(exc), traceback]. These
# signatures mean the database was busy after trytond's own retries: worth trying again later.
_TRANSIENT_SERVER_ERROR = re.compile(
    r"OperationalError|database is locked|could not serialize access|deadlock detected", re.IGNORECASE
)


# --- Wire types ---------------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Python values to Tryton's JSON wire form (Decimal, date, datetime, ... as ``__class__`` objects)."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    return value


_DECODERS = {
    "Decimal": lambda d: Decimal(d["decimal"]),
    "date": lambda d: dt.date(d["year"], d["month"], d["day"]),
    "datetime": lambda d: dt.datetime(
        d["year"], d["month"], d["day"], d["hour"], d["minute"], d["second"], d["microsecond"]
    ),
    "time": lambda d: dt.time(d["hour"], d["minute"], d["second"], d["microsecond"]),
    "timedelta": lambda d: dt.timedelta(seconds=d["seconds"]),
    "bytes": lambda d: base64.b64decode(d["base64"]),
}


def _object_hook(obj: dict[str, Any]) -> Any:
    decoder = _DECODERS.get(obj.get("__class__"))  # type: ignore[arg-type]
    return decoder(obj) if decoder else obj


def decode(body: bytes) -> Any:
    """Tryton's JSON to Python values (Decimal, date, naive UTC datetime, ...)."""
    return json.loads(body, object_hook=_object_hook)


def jsonable(value: Any) -> Any:
    """Decoded Tryton values to plain JSON: Decimal as a string, dates ISO, datetimes ISO with ``Z``.

    trytond runs with TZ=UTC and stores naive UTC timestamps, so the ``Z`` is a fact, not a guess.
    """
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="microseconds") + "Z"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def nest(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``read`` row with dotted fields to nested records.

    ``read([id], ["party.name", "lines.product.code"])`` answers ``{"party": 3, "party.": {"id": 3,
    "name": ...}, "lines": [..], "lines.": [{"id": .., "product.": {...}}]}``; this returns
    ``{"party": {"id": 3, "name": ...}, "lines": [{"id": .., "product": {...}}]}``.
    """
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.endswith("."):
            name = key[:-1]
            if isinstance(value, list):
                out[name] = [nest(item) for item in value]
            elif isinstance(value, Mapping):
                out[name] = nest(value)
            else:
                out[name] = value
        elif f"{key}." not in row:
            out[key] = value
    return out


# --- Sessions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    user_id: int
    token: str
    context: dict[str, Any]

    def header(self, login: str) -> str:
        raw = f"{login}:{self.user_id}:{self.token}".encode()
        return "Session " + base64.b64encode(raw).decode()


_SessionKey = tuple[str, str, str, str]  # url, database, user, password digest
_sessions: dict[_SessionKey, Session] = {}
_login_locks: dict[_SessionKey, threading.Lock] = {}
_sessions_lock = threading.Lock()  # guards the two dicts, never held during I/O


def _login_lock(key: _SessionKey) -> threading.Lock:
    with _sessions_lock:
        return _login_locks.setdefault(key, threading.Lock())


def sessions_clear() -> None:
    """Forget every cached session (tests; a process that must log in again)."""
    with _sessions_lock:
        _sessions.clear()


# --- Client ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A successful call: the decoded result and the server's clock (HTTP ``Date``), if it sent one."""

    result: Any
    server_time: dt.datetime | None


class TrytonClient:
    """One Tryton database as one user. Thread-safe; sessions are shared through the process cache."""

    def __init__(
        self,
        http: HttpClient,
        *,
        url: str,
        database: str,
        username: str,
        password: str,
        company: int | None = None,
    ):
        self.http = http
        self.base_url = url.rstrip("/")
        self.database = database
        self.username = username
        self._password = password
        self.company = company
        self.rpc_url = f"{self.base_url}/{quote(database, safe='')}/rpc/"
        digest = hashlib.sha256(password.encode()).hexdigest()
        self._key = (self.base_url, database, username, digest)
        # Per call, not in the shared session: two connections may use one user in two companies.
        self._company = {"company": company} if company is not None else {}

    @classmethod
    def from_context(cls, ctx: Any) -> TrytonClient:
        """The client for an OperationContext: config url/database/username/company, secret = password."""
        config = ctx.config
        if not ctx.secret:
            raise AuthError("no password is stored for this Tryton connection")
        return cls(
            ctx.client,
            url=str(config.url),
            database=config.database,
            username=config.username,
            password=ctx.secret,
            company=config.company,
        )

    # -- calls --

    def call(self, method: str, *params: Any, context: Mapping[str, Any] | None = None) -> Any:
        """Call a model or wizard method; the session context (plus ``context``) is appended last."""
        return self.call_answer(method, *params, context=context).result

    def call_answer(self, method: str, *params: Any, context: Mapping[str, Any] | None = None) -> Answer:
        """As ``call``, also returning the server's clock. Re-logs in once on HTTP 401."""
        session = self.session()
        for attempt in (1, 2):
            full_context = {**session.context, **self._company, **(context or {})}
            status, headers, body = self._post(
                method, [*params, full_context], authorization=session.header(self.username)
            )
            if status == 401 and attempt == 1:
                # Expired, logged out, or a fresh_session method after idling: nothing ran.
                session = self.session(renew=session)
                continue
            if status == 401:
                raise AuthError(
                    f"Tryton refused a fresh session for {self.username!r} on {method} (HTTP 401)",
                    status_code=401,
                )
            return Answer(result=self._result(method, status, headers, body), server_time=_date(headers))
        raise AssertionError("unreachable")

    def session(self, *, renew: Session | None = None) -> Session:
        """The cached session, logging in when there is none (or when ``renew`` is the cached one)."""
        # One login at a time per key: concurrent callers wait for it instead of each making their
        # own (an argon2 check each, and trytond rate-limits failed logins).
        with _login_lock(self._key):
            with _sessions_lock:
                cached = _sessions.get(self._key)
            if cached is not None and cached != renew:
                return cached
            session = self._login()
            with _sessions_lock:
                _sessions[self._key] = session
            return session

    def logout(self) -> None:
        """End the cached session on the server (the cache keeps it: the next call meets a 401)."""
        with _sessions_lock:
            cached = _sessions.get(self._key)
        if cached is not None:
            status, headers, body = self._post(
                "common.db.logout", [], authorization=cached.header(self.username)
            )
            if status != 401:
                self._result("common.db.logout", status, headers, body)

    # -- internals --

    def _login(self) -> Session:
        status, headers, body = self._post(
            "common.db.login", [self.username, {"password": self._password}, LANGUAGE]
        )
        if status == 401:
            raise AuthError(
                f"Tryton refused the login of {self.username!r} on database {self.database!r}",
                status_code=401,
            )
        result = self._result("common.db.login", status, headers, body)
        if not isinstance(result, list) or len(result) < 2:
            raise PermanentError(f"unexpected login answer from Tryton: {str(result)[:EXCERPT_CHARS]}")
        user_id, token = int(result[0]), str(result[1])
        provisional = Session(user_id=user_id, token=token, context={})
        status, headers, body = self._post(
            "model.res.user.get_preferences", [True, {}], authorization=provisional.header(self.username)
        )
        if status == 401:
            raise AuthError("Tryton refused the session it had just issued (HTTP 401)", status_code=401)
        preferences = self._result("model.res.user.get_preferences", status, headers, body)
        context = dict(preferences or {})
        # The locale and the group list are for the desktop client; every call would carry them.
        kept = {key: value for key, value in context.items() if key not in ("locale", "groups")}
        return Session(user_id=user_id, token=token, context=kept)

    def _post(
        self, method: str, params: list[Any], *, authorization: str | None = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        body = json.dumps({"id": 0, "method": method, "params": encode(params)}, separators=(",", ":"))
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        try:
            status, response_headers, response_body, _ms = self.http.request(
                "POST", self.rpc_url, headers=headers, body=body.encode()
            )
        except TransientError as exc:
            raise TransientError(f"Tryton at {self.base_url} is unreachable: {exc.detail}") from None
        return status, response_headers, response_body

    def _result(self, method: str, status: int, headers: Mapping[str, str], body: bytes) -> Any:
        if status != 200:
            _raise_for_status(method, status, headers, body, self)
        try:
            answer = decode(body)
        except (ValueError, KeyError, TypeError):
            raise TransientError(
                f"Tryton answered {method} with something that is not JSON-RPC: "
                f"{body[:EXCERPT_CHARS].decode('utf-8', 'replace')!r}"
            ) from None
        if not isinstance(answer, dict):
            raise PermanentError(f"unexpected answer to {method}: {str(answer)[:EXCERPT_CHARS]}")
        if "error" in answer:
            raise _error(method, answer["error"])
        return answer.get("result")


def _date(headers: Mapping[str, str]) -> dt.datetime | None:
    value = next((v for k, v in headers.items() if k.lower() == "date"), None)
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _raise_for_status(
    method: str, status: int, headers: Mapping[str, str], body: bytes, client: TrytonClient
) -> None:
    excerpt = re.sub(r"<[^>]+>|\s+", " ", body[:EXCERPT_CHARS].decode("utf-8", "replace")).strip()
    detail = f"Tryton answered {method} with HTTP {status}" + (f": {excerpt}" if excerpt else "")
    if status in (408, 423, 429) or status >= 500:
        raise TransientError(detail, retry_after=_retry_after(headers), status_code=status)
    if status == 401:
        raise AuthError(detail, status_code=status)
    if status == 403:
        raise PermanentError(
            f"Tryton refused {method} (HTTP 403: not callable over RPC, or access denied)", status_code=403
        )
    if status == 404:
        raise PermanentError(
            f"Tryton has no database {client.database!r} at {client.base_url} (HTTP 404)", status_code=404
        )
    raise PermanentError(detail, status_code=status)


def _error(method: str, error: Any) -> Exception:
    """The taxonomy's exception for a JSON-RPC ``error`` member.

    Tryton exceptions arrive as ``[name, args]``: UserError ``(message, description, domain)``,
    UserWarning ``(name, message, description)``, ConcurrencyException ``message``,
    LoginException ``(name, message, type)``; RateLimitException has no arguments. Any other server
    exception arrives as ``[str(exception), traceback]``.
    """
    parts = list(error) if isinstance(error, list | tuple) else [error]
    name = parts[0] if parts else ""
    args = parts[1] if len(parts) > 1 else None
    if name == "UserError":
        message, description = _arg(args, 0), _arg(args, 1)
        text = message + (f" ({description})" if description else "")
        return PermanentError(f"Tryton refused {method}: {text}")
    if name == "UserWarning":
        return PermanentError(
            f"Tryton asks to confirm a warning on {method}: {_arg(args, 1)} (warning {_arg(args, 0)!r})"
        )
    if name == "ConcurrencyException":
        return TransientError(f"Tryton: the record changed meanwhile during {method}: {args}")
    if name == "RateLimitException" or not parts:
        return TransientError(f"Tryton rate-limited {method}", status_code=429)
    if name == "LoginException":
        return AuthError(f"Tryton wants more login parameters ({_arg(args, 0)}): {_arg(args, 1)}")
    text = f"{name} {args or ''}"
    if _TRANSIENT_SERVER_ERROR.search(text):
        return TransientError(f"Tryton server error on {method}: {str(name)[:EXCERPT_CHARS]}")
    return PermanentError(f"Tryton server error on {method}: {str(name)[:EXCERPT_CHARS]}")


def _arg(args: Any, index: int) -> str:
    if isinstance(args, list | tuple) and len(args) > index and args[index] is not None:
        return str(args[index])
    return "" if index else str(args or "")
