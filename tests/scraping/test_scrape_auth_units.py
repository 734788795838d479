"""Units of the OAuth client and API keys: credentials, hostile token answers, renewal,
no secret shown."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.exceptions import DownloadConnectionRefusedError
from scrapy.http import Response
from scrapy.settings import Settings

from cgan.scraping.auth import (
    AUTH_GENERATION,
    AUTH_RETRIED,
    AUTHORISED,
    DEFAULT_LIFETIME,
    KEYED,
    MAX_LIFETIME,
    REDACTOR,
    ApiKey,
    AuthError,
    ClientCredentials,
    OAuthClient,
    Redactor,
    TokenCache,
    client_credentials,
    read_token_answer,
    token_lifetime,
)
from cgan.scraping.middlewares import CredentialsMiddleware
from cgan.scraping.spiders.reddit import reddit_user_agent

SECRET = "s3cr3t-value-for-tests"
CLIENT = OAuthClient(
    source="reddit",
    token_url="https://www.reddit.com/api/v1/access_token",
    credentials=ClientCredentials("app-id", SECRET),
    api_host="oauth.reddit.com",
    basic_auth=True,
    scheme="bearer",
    names=("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET"),
)


# --- credentials ----------------------------------------------------------------------------


def test_credentials_need_both_values_and_never_show_the_secret(monkeypatch):
    for name in ("X_ID", "X_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert client_credentials(Settings(), "X_ID", "X_SECRET") is None
    monkeypatch.setenv("X_SECRET", SECRET)
    with pytest.raises(ValueError, match="X_SECRET is set but X_ID is not") as caught:
        client_credentials(Settings(), "X_ID", "X_SECRET")
    assert SECRET not in str(caught.value)
    credentials = client_credentials(Settings({"X_ID": "abc"}), "X_ID", "X_SECRET")
    assert credentials == ClientCredentials("abc", SECRET)
    assert SECRET not in repr(credentials)


@pytest.mark.parametrize("secret", ["two words", "line\nbreak", "x" * 600, "a:b", "tab\there"])
def test_credentials_that_cannot_go_in_a_header_are_refused(secret):
    with pytest.raises(ValueError, match="X_SECRET is not usable") as caught:
        client_credentials(Settings({"X_ID": "abc", "X_SECRET": secret}), "X_ID", "X_SECRET")
    assert secret not in str(caught.value)


def test_token_request_carries_the_grant_and_the_credentials_as_each_api_wants():
    reddit = CLIENT.token_request()
    assert reddit.method == "POST" and reddit.body == b"grant_type=client_credentials"
    assert reddit.headers[b"Authorization"].startswith(b"Basic ")
    assert reddit.meta["dont_redirect"] and reddit.meta["dont_obey_robotstxt"]
    openverse = OAuthClient("openverse", "https://x/token/", CLIENT.credentials, "x", False)
    form = openverse.token_request()
    assert b"Authorization" not in form.headers
    assert (
        form.body
        == f"grant_type=client_credentials&client_id=app-id&client_secret={SECRET}".encode()
    )


def test_reddit_user_agent_format():
    assert reddit_user_agent("someone").startswith("python:cgan-label2image:")
    assert reddit_user_agent("someone").endswith(" (by /u/someone)")


# --- token answers --------------------------------------------------------------------------


def test_a_good_answer():
    body = b'{"access_token": "eyJ.abc-_~+/=", "token_type": "bearer", "expires_in": 86400}'
    assert read_token_answer(200, body) == ("eyJ.abc-_~+/=", 86400.0)
    no_expiry = b'{"access_token": "abc", "token_type": "Bearer"}'
    assert read_token_answer(200, no_expiry) == ("abc", None)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            401,
            b'{"message": "Unauthorized", "error": 401}',
            "refused the credentials (HTTP 401, 401)",
        ),
        (400, b'{"error": "invalid_client"}', "refused the credentials (HTTP 400, invalid_client)"),
        (403, b"<html>nope " + SECRET.encode() + b"</html>", "refused the credentials (HTTP 403)"),
        (500, b"oops", "answered HTTP 500"),
        (200, b"<html>captcha</html>", "not a JSON object"),
        (200, b"\xff\xfe", "not a JSON object"),
        (200, b"[1, 2]", "not a JSON object"),
        (200, b'{"error": "invalid_grant"}', "refused the credentials (invalid_grant)"),
        (200, b'{"error": {"nested": "' + SECRET.encode() + b'"}}', "(unknown error)"),
        (200, b'{"token_type": "bearer"}', "without an access_token"),
        (200, b'{"access_token": 12345}', "without an access_token"),
        (200, b'{"access_token": ""}', "without an access_token"),
        (200, b'{"access_token": "abc\\r\\nX-Evil: 1"}', "not a usable bearer token"),
        (200, b'{"access_token": "has space"}', "not a usable bearer token"),
        (200, b'{"access_token": "' + b"a" * 9000 + b'"}', "not a usable bearer token"),
        (200, b'{"access_token": "abc", "token_type": "mac"}', "type 'mac', not bearer"),
        (200, b'{"access_token": "abc", "token_type": ["x"]}', "type '?', not bearer"),
    ],
)
def test_a_hostile_answer_is_one_clear_line_without_its_body(status, body, message):
    with pytest.raises(AuthError) as caught:
        read_token_answer(status, body)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3600, 3600.0),
        (2.5, 2.5),
        ("3600", 3600.0),
        (0.01, 1.0),  # clamped up: not a fetch per request
        (10**12, MAX_LIFETIME),  # clamped down
        (0, None),
        (-5, None),
        (True, None),
        ("soon", None),
        (None, None),
        ([60], None),
        (float("nan"), None),
        (float("inf"), None),
        ("9" * 40, None),
    ],
)
def test_token_lifetime_is_clamped_or_unknown(value, expected):
    assert token_lifetime(value) == expected


# --- renewal --------------------------------------------------------------------------------


@dataclass
class FakeFetch:
    """The token endpoint, answering from a list; counts the requests."""

    answers: list
    requests: int = 0

    async def __call__(self, request: Request) -> Response:
        self.requests += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return Response(request.url, status=status, body=body, request=request)


def _token(name: str, expires_in: object = 100) -> tuple[int, bytes]:
    extra = "" if expires_in is None else f', "expires_in": {expires_in}'
    return 200, f'{{"access_token": "{name}", "token_type": "bearer"{extra}}}'.encode()


def test_a_token_is_fetched_once_and_renewed_before_it_expires():
    clock = SimpleNamespace(now=0.0)
    fetch = FakeFetch([_token("first-token"), _token("second-token")])
    cache = TokenCache(CLIENT, fetch, clock=lambda: clock.now)
    assert asyncio.run(cache.get()) == ("first-token", 1)
    clock.now = 89.0
    assert asyncio.run(cache.get()) == ("first-token", 1)
    clock.now = 90.5  # within a tenth of its lifetime of the end
    assert asyncio.run(cache.get()) == ("second-token", 2)
    assert fetch.requests == 2


def test_a_401_drops_only_the_token_it_was_sent_with():
    fetch = FakeFetch([_token("first-token"), _token("second-token")])
    cache = TokenCache(CLIENT, fetch)
    asyncio.run(cache.get())
    cache.invalidate(1)
    assert asyncio.run(cache.get()) == ("second-token", 2)
    cache.invalidate(1)  # a late 401 for the old token: the new one stays
    assert asyncio.run(cache.get()) == ("second-token", 2)
    assert fetch.requests == 2


def test_an_answer_without_expires_in_is_used_for_an_hour(caplog):
    fetch = FakeFetch([_token("first-token", expires_in=None)])
    clock = SimpleNamespace(now=0.0)
    cache = TokenCache(CLIENT, fetch, clock=lambda: clock.now)
    with caplog.at_level(logging.WARNING):
        asyncio.run(cache.get())
    assert "no usable expires_in" in caplog.text
    clock.now = DEFAULT_LIFETIME - 61
    asyncio.run(cache.get())
    assert fetch.requests == 1


def test_a_refusal_is_final_for_the_run_and_names_the_variables():
    fetch = FakeFetch([(401, b'{"error": "invalid_client"}')])
    cache = TokenCache(CLIENT, fetch)
    for _ in range(3):
        with pytest.raises(AuthError) as caught:
            asyncio.run(cache.get())
    assert fetch.requests == 1
    assert str(caught.value) == (
        "access token from www.reddit.com: the endpoint refused the credentials "
        "(HTTP 401, invalid_client); check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
    )


def test_an_unreachable_token_endpoint_is_said_plainly():
    fetch = FakeFetch([DownloadConnectionRefusedError("refused")])
    with pytest.raises(AuthError, match="www.reddit.com: connection refused"):
        asyncio.run(TokenCache(CLIENT, fetch).get())


def test_an_echoed_secret_is_scrubbed_from_the_message():
    fetch = FakeFetch([(400, b'{"error": "' + SECRET.encode() + b'"}')])
    with pytest.raises(AuthError) as caught:
        asyncio.run(TokenCache(CLIENT, fetch).get())
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


# --- the middleware -------------------------------------------------------------------------


class FakeStats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


def _middleware(tokens: list) -> CredentialsMiddleware:
    crawler = SimpleNamespace(spider=SimpleNamespace(oauth=CLIENT), stats=FakeStats())
    middleware = CredentialsMiddleware(crawler)  # type: ignore[arg-type]
    middleware.cache = TokenCache(CLIENT, FakeFetch(tokens))
    return middleware


def test_the_token_goes_only_to_the_api_host_and_comes_off_with_the_answer():
    middleware = _middleware([_token("the-token-1")])
    api = Request("https://oauth.reddit.com/search?q=cat", meta={AUTHORISED: True})
    asyncio.run(middleware.process_request(api))
    assert api.headers[b"Authorization"] == b"bearer the-token-1"
    elsewhere = Request("https://evil.example/search", meta={AUTHORISED: True})
    asyncio.run(middleware.process_request(elsewhere))
    image = Request("https://oauth.reddit.com/img.jpg")  # not marked: never
    asyncio.run(middleware.process_request(image))
    assert b"Authorization" not in elsewhere.headers and b"Authorization" not in image.headers
    answer = Response(api.url, status=200, request=api)
    assert middleware.process_response(api, answer) is answer
    assert b"Authorization" not in api.headers  # before any retry or redirect copies it


def test_a_401_is_sent_once_more_with_a_new_token_then_fails():
    middleware = _middleware([_token("the-token-1"), _token("the-token-2")])
    api = Request("https://oauth.reddit.com/search?q=cat", meta={AUTHORISED: True})
    asyncio.run(middleware.process_request(api))
    retry = middleware.process_response(api, Response(api.url, status=401, request=api))
    assert isinstance(retry, Request) and retry.meta[AUTH_RETRIED]
    assert b"Authorization" not in retry.headers  # the scheduler may write it to disk
    asyncio.run(middleware.process_request(retry))
    assert retry.headers[b"Authorization"] == b"bearer the-token-2"
    assert retry.meta[AUTH_GENERATION] == 2
    with pytest.raises(AuthError, match="refuses a fresh access token"):
        middleware.process_response(retry, Response(api.url, status=401, request=retry))


def test_an_error_takes_the_token_off_too():
    middleware = _middleware([_token("the-token-1")])
    api = Request("https://oauth.reddit.com/search?q=cat", meta={AUTHORISED: True})
    asyncio.run(middleware.process_request(api))
    middleware.process_exception(api, TimeoutError())
    assert b"Authorization" not in api.headers


# --- API keys (Pixabay) ---------------------------------------------------------------------

KEY = ApiKey("pixabay", "12345-key/with+odd=chars", api_host="pixabay.com")


def test_an_api_key_is_added_as_the_last_parameter_and_removed_exactly():
    url = "https://pixabay.com/api/?q=red+cat&page=2"
    keyed = KEY.add_to(url)
    assert keyed.startswith(url + "&key=") and KEY.value not in keyed  # quoted
    assert KEY.remove_from(keyed) == url
    assert KEY.add_to(keyed) == keyed  # never twice
    assert KEY.remove_from("https://pixabay.com/api/") == "https://pixabay.com/api/"
    other = "https://elsewhere.example/?key=theirs&q=x"  # not ours: left alone
    assert KEY.remove_from(other) == other
    assert KEY.remove_from(KEY.add_to("https://pixabay.com/api/")) == "https://pixabay.com/api/"
    assert "12345" in KEY.scrub("x 12345 y") and KEY.value not in KEY.scrub(f"url {keyed}")
    assert "key/with" not in repr(KEY)


def _key_middleware() -> CredentialsMiddleware:
    crawler = SimpleNamespace(spider=SimpleNamespace(api_key=KEY), stats=FakeStats())
    return CredentialsMiddleware(crawler)  # type: ignore[arg-type]


def test_the_key_goes_only_to_the_api_host_and_comes_off_request_answer_and_redirect():
    middleware = _key_middleware()
    url = "https://pixabay.com/api/?q=cat&page=1"
    api = Request(url, meta={KEYED: True})
    asyncio.run(middleware.process_request(api))
    assert KEY.remove_from(api.url) == url and api.url != url
    assert all(secret in REDACTOR.secrets for secret in KEY.secrets())
    elsewhere = Request("https://evil.example/api/?q=cat", meta={KEYED: True})
    asyncio.run(middleware.process_request(elsewhere))
    image = Request("https://pixabay.com/get/a.jpg")  # not marked: never
    asyncio.run(middleware.process_request(image))
    assert elsewhere.url == "https://evil.example/api/?q=cat"
    assert image.url == "https://pixabay.com/get/a.jpg"

    moved = KEY.add_to("https://pixabay.com/api/v2/?q=cat")  # a redirect that echoes it
    answer = Response(api.url, status=301, headers={"Location": moved}, request=api)
    clean = middleware.process_response(api, answer)
    assert api.url == url and clean.url == url  # before a redirect, retry or the spider
    assert clean.headers[b"Location"] == b"https://pixabay.com/api/v2/?q=cat"


def test_an_error_takes_the_key_off_the_request_and_its_message():
    middleware = _key_middleware()
    api = Request("https://pixabay.com/api/?q=cat", meta={KEYED: True})
    asyncio.run(middleware.process_request(api))
    error = TimeoutError(f"Getting {api.url} took longer than 30 seconds.")
    assert middleware.process_exception(api, error) is None  # retries still see it
    assert api.url == "https://pixabay.com/api/?q=cat"
    assert all(secret not in str(error) for secret in KEY.secrets())


# --- logs -----------------------------------------------------------------------------------


def test_the_redactor_blanks_secrets_in_messages_and_tracebacks():
    redactor = Redactor()
    redactor.add(SECRET)
    redactor.add("short")  # too short to register
    record = logging.LogRecord("x", logging.ERROR, "f", 1, "got %s and short", (SECRET,), None)
    assert redactor.filter(record) and record.getMessage() == "got *** and short"
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", (), sys.exc_info())
    redactor.filter(record)
    assert SECRET not in logging.Formatter().format(record)


# --- what a spider makes of the keys --------------------------------------------------------

KEYS = (
    "REDDIT_CLIENT_ID",
    "REDDIT_CLIENT_SECRET",
    "REDDIT_USERNAME",
    "OPENVERSE_CLIENT_ID",
    "OPENVERSE_CLIENT_SECRET",
)


@pytest.fixture
def make_spider(tmp_path, monkeypatch):
    """A source spider set up from settings, as Scrapy would, without crawling."""
    from scrapy.utils.test import get_crawler

    from cgan.scraping import settings as project

    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    defaults = {name: value for name, value in vars(project).items() if name.isupper()}

    def make(cls: type, **settings: object):
        values = {**defaults, "IMAGES_STORE": str(tmp_path), "CGAN_LABELS": ["cat"]}
        values.update({"REDDIT_USERNAME": "", **settings})
        return cls.from_crawler(get_crawler(cls, values))

    return make


def test_openverse_anonymous_pages_hold_at_most_20_within_a_daily_budget(make_spider):
    from cgan.scraping.ratelimit import Rate
    from cgan.scraping.spiders.openverse import OpenverseSpider

    spider = make_spider(OpenverseSpider, OPENVERSE_PAGE_SIZE=50)
    assert spider.unavailable is None and spider.oauth is None
    assert spider.page_size == 20
    assert spider.budget.rates == [Rate(20, 60), Rate(200, 86400)]
    assert spider.budget.key == "openverse/anonymous"


def test_openverse_with_keys_gets_a_token_client_and_larger_pages(make_spider, monkeypatch):
    from cgan.scraping.spiders.openverse import OpenverseSpider

    monkeypatch.setenv("OPENVERSE_CLIENT_ID", "id")
    monkeypatch.setenv("OPENVERSE_CLIENT_SECRET", SECRET)
    spider = make_spider(OpenverseSpider, OPENVERSE_REGISTERED_PAGE_SIZE=900)
    assert spider.page_size == 500
    assert spider.oauth.api_host == "api.openverse.org" and not spider.oauth.basic_auth
    assert spider.budget.key == "openverse/registered"


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"OPENVERSE_CLIENT_ID": "id"}, "OPENVERSE_CLIENT_ID is set but OPENVERSE_CLIENT_SECRET"),
        ({"OPENVERSE_ANONYMOUS_LIMITS": "lots"}, "OPENVERSE_ANONYMOUS_LIMITS: bad rate 'lots'"),
        (
            {
                "OPENVERSE_CLIENT_ID": "id",
                "OPENVERSE_CLIENT_SECRET": SECRET,
                "OPENVERSE_TOKEN_URL": "file:///x",
            },
            "OPENVERSE_TOKEN_URL='file:///x' is not usable",
        ),
    ],
)
def test_openverse_misconfiguration_is_one_line(make_spider, settings, reason):
    from cgan.scraping.spiders.openverse import OpenverseSpider

    spider = make_spider(OpenverseSpider, **settings)
    assert spider.unavailable.startswith(reason)
    assert SECRET not in spider.unavailable


def test_reddit_modes(make_spider, monkeypatch):
    from cgan.scraping.spiders.reddit import RedditSpider

    public = make_spider(RedditSpider)
    assert public.oauth is None and not public.official_api
    assert public.api_url == "https://www.reddit.com/search.json"
    monkeypatch.setenv("REDDIT_CLIENT_ID", "id")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", SECRET)
    no_name = make_spider(RedditSpider)
    assert no_name.unavailable.startswith("REDDIT_CLIENT_ID is set but REDDIT_USERNAME is not")
    bad_name = make_spider(RedditSpider, REDDIT_USERNAME="me\r\nX-Evil: 1")
    assert "is not a reddit user name" in bad_name.unavailable
    api = make_spider(RedditSpider, REDDIT_USERNAME="/u/someone")
    assert api.unavailable is None and api.official_api
    assert api.api_url == "https://oauth.reddit.com/search"
    assert api.oauth.api_host == "oauth.reddit.com" and api.oauth.basic_auth
    assert api.page_headers["User-Agent"].endswith("(by /u/someone)")
