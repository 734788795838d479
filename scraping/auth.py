"""Credentials added in the downloader: OAuth2 tokens and API keys.

Reddit's Data API needs a token and Openverse gives registered applications larger limits
with one: the application's id and secret buy a bearer token from a token endpoint
(HTTP basic auth for Reddit, form fields for Openverse), the token goes on every API
request, and a new one is fetched when it expires or the API answers 401 (application-only
OAuth2, the client credentials grant). Pixabay takes a plain key instead, as the `key`
parameter of each API URL (`ApiKey`).

The secrets, the tokens and the key are never written anywhere:

- `CredentialsMiddleware` (middlewares.py) puts the token (in the `Authorization` header)
  or the key (in the URL's query) on a request in the downloader, after the scheduler, and
  takes it off again as soon as the answer (or an error) comes back, before retries and
  redirects copy the request and before the spider sees the answer. A request Scrapy
  queues on disk (JOBDIR) therefore never carries one, and neither does one sent to any
  host but the API's. The spiders' page URLs have no key in them.
- The token request goes through `engine.download_async`, which never touches the
  scheduler, so the secret is not queued on disk either.
- Failure messages (the log, the terminal, `summary.json`) give the endpoint's status and
  at most a short `error` code, never its body, and are scrubbed of every known secret;
  `Redactor` blanks them in any log record that would still contain one (a download
  error that quotes a keyed URL, for one).
- Nothing is put in settings (beyond what the user set there), stats, `spider.state` or
  the manifest.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus, unquote_plus, urlencode, urlsplit, urlunsplit

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from cgan.scraping.ratelimit import RateLimited, Stopping
from cgan.scraping.transport import API_PAGE, unreachable

if TYPE_CHECKING:
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

# Request.meta keys (booleans and ints only: meta is pickled into JOBDIR).
AUTHORISED = "cgan_oauth"  # an API request that gets the source's token
AUTH_GENERATION = "cgan_oauth_generation"  # which token it was sent with
AUTH_RETRIED = "cgan_oauth_retried"  # already sent again after a 401
KEYED = "cgan_api_key"  # an API request that gets the source's key in its query

_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token: no spaces, no newlines
MAX_TOKEN_CHARS = 8192
MAX_ANSWER_BYTES = 64 * 1024
DEFAULT_LIFETIME = 3600.0  # when the answer gives no usable expires_in
MAX_LIFETIME = 30 * 86400.0
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,40}")


class AuthError(IgnoreRequest):
    """The source cannot get or use a token; the message is one line without secrets."""


# --- credentials ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientCredentials:
    """A registered application's id and secret (the secret is left out of repr)."""

    client_id: str
    secret: str = field(repr=False)


def _setting_or_env(settings: BaseSettings, name: str) -> str:
    return str(settings.get(name) or os.environ.get(name) or "").strip()


def client_credentials(
    settings: BaseSettings, id_name: str, secret_name: str
) -> ClientCredentials | None:
    """The id and secret from the settings or the environment; None when neither is set.

    ValueError (naming the variables, never quoting their values) when only one is set
    or a value could not be sent in a header.
    """
    client_id, secret = _setting_or_env(settings, id_name), _setting_or_env(settings, secret_name)
    if not client_id and not secret:
        return None
    if not client_id or not secret:
        missing, given = (id_name, secret_name) if not client_id else (secret_name, id_name)
        raise ValueError(f"{given} is set but {missing} is not; set both or neither")
    for name, value in ((id_name, client_id), (secret_name, secret)):
        if len(value) > 512 or not value.isprintable() or " " in value or ":" in value:
            raise ValueError(f"{name} is not usable: printable, no spaces or ':', 512 at most")
    return ClientCredentials(client_id, secret)


@dataclass(frozen=True)
class OAuthClient:
    """How one source gets its token and where the token may go."""

    source: str
    token_url: str
    credentials: ClientCredentials
    api_host: str  # host[:port] of the API: the only place the token is ever sent
    basic_auth: bool  # Reddit: id and secret as HTTP basic auth; Openverse: form fields
    scheme: str = "Bearer"  # the Authorization scheme word (Reddit writes "bearer")
    user_agent: str | None = None
    names: tuple[str, str] = ("client id", "client secret")  # for messages

    @property
    def token_host(self) -> str:
        return urlsplit(self.token_url).netloc.rpartition("@")[2]

    def _basic(self) -> str:
        pair = f"{self.credentials.client_id}:{self.credentials.secret}"
        return base64.b64encode(pair.encode()).decode("ascii")

    def secrets(self) -> list[str]:
        """Every form the secret could take in a request: for Redactor."""
        return [self.credentials.secret, self._basic()]

    def token_request(self) -> Request:
        """The POST that buys a token (client credentials grant)."""
        form = {"grant_type": "client_credentials"}
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if self.basic_auth:
            headers["Authorization"] = f"Basic {self._basic()}"
        else:
            form["client_id"] = self.credentials.client_id
            form["client_secret"] = self.credentials.secret
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        return Request(
            self.token_url,
            method="POST",
            body=urlencode(form),
            headers=headers,
            dont_filter=True,
            meta={
                API_PAGE: True,  # the URL is a setting: scheme check only
                "dont_obey_robotstxt": True,  # an API endpoint, governed by its terms
                "dont_redirect": True,  # never replay the secret to another address
                "download_maxsize": MAX_ANSWER_BYTES,
                "give_up_log_level": "DEBUG",
            },
        )


@dataclass(frozen=True)
class ApiKey:
    """A key the API takes as a query parameter (Pixabay's `?key=`), and where it may go.

    The spider's page URLs never hold it: `CredentialsMiddleware` adds it in the downloader
    (`add_to`) to requests marked KEYED for the API's own host, and takes it off again
    (`remove_from`) when the answer comes back.
    """

    source: str
    value: str = field(repr=False)
    api_host: str  # host[:port] of the API: the only place the key is ever sent
    param: str = "key"

    def secrets(self) -> list[str]:
        """Every form the key could take in a URL: for Redactor."""
        return list(dict.fromkeys([self.value, quote_plus(self.value), quote(self.value, "")]))

    def scrub(self, text: str) -> str:
        """`text` with every form of the key blanked (short keys too, unlike Redactor)."""
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text

    def add_to(self, url: str) -> str:
        """`url` with the key as the last query parameter (and no other copy of it)."""
        parts = urlsplit(self.remove_from(url))
        pair = urlencode({self.param: self.value})
        return urlunsplit(parts._replace(query=f"{parts.query}&{pair}" if parts.query else pair))

    def remove_from(self, url: str) -> str:
        """`url` without a `param=<the key>` pair in its query; anything else stays as it is."""
        parts = urlsplit(url)
        if not parts.query:
            return url
        pairs = parts.query.split("&")
        kept = [pair for pair in pairs if not self._is_key(pair)]
        if len(kept) == len(pairs):
            return url
        return urlunsplit(parts._replace(query="&".join(kept)))

    def _is_key(self, pair: str) -> bool:
        name, _, value = pair.partition("=")
        return unquote_plus(name) == self.param and unquote_plus(value) == self.value


# --- reading the token endpoint's answer ----------------------------------------------------


def _code(value: object) -> str:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if _CODE.fullmatch(text) else ""


def token_lifetime(value: object) -> float | None:
    """`expires_in` in seconds, clamped to [1 s, 30 days]; None when absent or absurd."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) <= 20:
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return None
    return min(max(float(value), 1.0), MAX_LIFETIME)


def read_token_answer(status: int, body: bytes) -> tuple[str, float | None]:
    """The token and its lifetime from a token endpoint's answer.

    AuthError says what is wrong with a refusal or a malformed answer, quoting at most
    its status and a short `error` code: the body may contain anything.
    """
    data: object = None
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        data = json.loads(body)
    error = _code(data.get("error")) if isinstance(data, dict) else ""
    if status in (400, 401, 403):
        raise AuthError(f"refused the credentials (HTTP {status}{', ' + error if error else ''})")
    if status != 200:
        raise AuthError(f"answered HTTP {status}")
    if not isinstance(data, dict):
        raise AuthError("answered something that is not a JSON object")
    if "error" in data:
        raise AuthError(f"refused the credentials ({error or 'unknown error'})")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError("answered without an access_token")
    if len(token) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
        raise AuthError("answered an access_token that is not a usable bearer token")
    token_type = data.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise AuthError(f"answered a token of type {_code(token_type) or '?'!r}, not bearer")
    return token, token_lifetime(data.get("expires_in"))


# --- the token of one source ----------------------------------------------------------------


class TokenCache:
    """One source's token: fetched once, shared by every waiting request, renewed when due.

    `get` fetches a token only when there is none or it is about to expire (a tenth of its
    lifetime, at most a minute, before); requests that arrive during a fetch wait for that
    one. `invalidate` drops the token after a 401, unless a newer one was fetched since.
    A refusal, a malformed answer or an unreachable endpoint is final for this run: the
    source fails once with that message instead of asking again for every request.
    """

    def __init__(
        self,
        client: OAuthClient,
        fetch: Callable[[Request], Awaitable[Response]],
        on_secret: Callable[[str], None] = lambda _: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self._fetch, self._on_secret, self._clock = client, fetch, on_secret, clock
        self._token: str | None = None
        self._renew_at = 0.0
        self.generation = 0
        self.fetches = 0
        self.failure: AuthError | None = None
        self._waiters: list[Deferred[None]] | None = None
        for secret in client.secrets():
            on_secret(secret)

    def valid(self) -> bool:
        return self._token is not None and self._clock() < self._renew_at

    async def get(self) -> tuple[str, int]:
        """A valid token and its generation number."""
        while True:
            if self.failure is not None:
                raise AuthError(str(self.failure))
            if self._token is not None and self._clock() < self._renew_at:
                return self._token, self.generation
            if self._waiters is None:
                await self._renew()
            else:  # somebody is fetching one already
                waiter: Deferred[None] = Deferred()
                self._waiters.append(waiter)
                await maybe_deferred_to_future(waiter)

    def invalidate(self, generation: int | None) -> None:
        """The API refused the token of `generation`: fetch a new one next time."""
        if generation == self.generation:
            self._token = None

    async def _renew(self) -> None:
        self._waiters = []
        error: BaseException | None = None
        try:
            await self._fetch_token()
        except BaseException as exc:
            error = exc
            raise
        finally:
            waiters, self._waiters = self._waiters, None
            for waiter in waiters:
                if error is None:
                    waiter.callback(None)
                else:
                    waiter.errback(error)

    async def _fetch_token(self) -> None:
        client = self.client
        where = f"access token from {client.token_host}"
        self.fetches += 1
        try:
            response = await self._fetch(client.token_request())
        except (RateLimited, Stopping):
            raise  # not the credentials' fault: the source stops or the crawl ends
        except Exception as exc:
            why = unreachable(exc) or " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
            self.failure = AuthError(self._scrub(f"{where}: {why}"))
            raise self.failure from None
        try:
            token, lifetime = read_token_answer(response.status, response.body)
        except AuthError as exc:
            hint = ""
            if "refused" in str(exc):
                hint = f"; check {client.names[0]} and {client.names[1]}"
            self.failure = AuthError(self._scrub(f"{where}: the endpoint {exc}{hint}"))
            raise self.failure from None
        self._on_secret(token)
        if lifetime is None:
            lifetime = DEFAULT_LIFETIME
            logger.warning(
                "%s: the answer gives no usable expires_in; renewing after %.0fs or on a 401",
                where,
                lifetime,
            )
        self._token = token
        self._renew_at = self._clock() + lifetime - min(60.0, lifetime / 10)
        self.generation += 1
        logger.info("%s: got a token valid for %.0fs", where, lifetime)

    def _scrub(self, text: str) -> str:
        for secret in [*self.client.secrets(), self._token or ""]:
            if secret:
                text = text.replace(secret, "***")
        return text


# --- no secret in any log line --------------------------------------------------------------


class Redactor(logging.Filter):
    """Blank every known secret and token in a record before a handler writes it.

    The middlewares never log them; this is the second line of defence, for a message
    or a traceback from code that is not ours. Values shorter than 8 characters are not
    registered: they would blank ordinary words.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 8:
            self.secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logging's problem, not ours
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


REDACTOR = Redactor()


def install_redactor(loggers: tuple[str, ...] = ("", "cgan.scraping", "scrapy")) -> None:
    """Put REDACTOR on every handler of these loggers (Scrapy's log file, the terminal)."""
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if REDACTOR not in handler.filters:
                handler.addFilter(REDACTOR)
