"""Units of the rate-limit rules: hostile headers, host pacing, budgets counted across runs."""

from __future__ import annotations

import asyncio
import json
import math
import time
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.settings import Settings

from cgan.scraping.middlewares import RateLimitMiddleware
from cgan.scraping.ratelimit import (
    RESET_CAP,
    Announced,
    HostPace,
    Rate,
    RateLimited,
    RequestBudget,
    announced_limits,
    parse_rate,
    parse_rates,
)
from cgan.scraping.transport import BUDGETED

NOW = 1_750_000_000.0  # a Unix time


# --- rates ----------------------------------------------------------------------------------


def test_rates_read_every_documented_form():
    assert parse_rate("20/min") == Rate(20, 60)
    assert parse_rate("200/day") == Rate(200, 86400)
    assert parse_rate("100/60s") == Rate(100, 60)
    assert parse_rate("3/2.5s") == Rate(3, 2.5)
    assert parse_rate("5/30") == Rate(5, 30)
    assert parse_rate(" 10 / hours ") == Rate(10, 3600)
    assert parse_rates("20/min, 200/day") == [Rate(20, 60), Rate(200, 86400)]
    assert parse_rates(["none"]) == parse_rates("") == parse_rates("off") == []
    assert str(Rate(200, 86400)) == "200 requests per day"


@pytest.mark.parametrize("text", ["20", "x/min", "20/fortnight", "0/min", "-1/s", "5/0s", "5/1e9s"])
def test_bad_rates_say_what_is_expected(text):
    with pytest.raises(ValueError, match="bad rate"):
        parse_rate(text)


# --- announced limits -----------------------------------------------------------------------


def test_reddit_headers():
    (limit,) = announced_limits(
        {"x-ratelimit-used": "4", "x-ratelimit-remaining": "596.0", "x-ratelimit-reset": "372"},
        NOW,
    )
    assert limit == Announced("x-ratelimit", 596.0, 372.0, 600.0)


def test_github_epoch_reset_and_ietf_forms():
    (github,) = announced_limits(
        {
            "x-ratelimit-limit": "60",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": f"{NOW + 30:.0f}",
        },
        NOW,
    )
    assert (github.remaining, github.reset, github.limit) == (0.0, 30.0, 60.0)
    (draft,) = announced_limits({"ratelimit-remaining": "5", "ratelimit-reset": "7"}, NOW)
    assert (draft.remaining, draft.reset) == (5.0, 7.0)
    (structured,) = announced_limits({"ratelimit": '"default";r=3;t=9'}, NOW)
    assert (structured.remaining, structured.reset) == (3.0, 9.0)
    (older,) = announced_limits({"ratelimit": "limit=10, remaining=2, reset=4"}, NOW)
    assert (older.remaining, older.reset, older.limit) == (2.0, 4.0, 10.0)


def test_openverse_scoped_headers():
    limits = announced_limits(
        {
            "x-ratelimit-limit-anon_burst": "20/min",
            "x-ratelimit-available-anon_burst": "19",
            "x-ratelimit-limit-anon_sustained": "200/day",
            "x-ratelimit-available-anon_sustained": "0",
        },
        NOW,
    )
    by_scope = {limit.scope: limit for limit in limits}
    assert by_scope["anon_burst"] == Announced("anon_burst", 19.0, None, 20.0, 60.0)
    assert by_scope["anon_sustained"] == Announced("anon_sustained", 0.0, None, 200.0, 86400.0)


@pytest.mark.parametrize(
    ("remaining", "reset", "expected"),
    [
        ("-5", "-10", (0.0, 0.0)),  # negative: nothing left, reset now
        ("7", "1e300", (7.0, RESET_CAP)),  # huge: a day at most
        ("7", "99999999999999999999", (7.0, RESET_CAP)),  # an epoch far away
        ("7", "soon", (7.0, None)),  # non-numeric reset: ignored
        ("7", "nan", (7.0, None)),
        ("7", "inf", (7.0, None)),
        ("1e30", "3", (1e9, 3.0)),  # an absurd count is capped
        ("7", "3" * 40, (7.0, None)),  # absurdly long
    ],
)
def test_hostile_values_are_clamped_or_ignored(remaining, reset, expected):
    (limit,) = announced_limits(
        {"x-ratelimit-remaining": remaining, "x-ratelimit-reset": reset}, NOW
    )
    assert (limit.remaining, limit.reset) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining": "lots"},
        {"x-ratelimit-remaining": ""},
        {"ratelimit": "garbage;;;==,"},
        {"x-ratelimit-available-": "3"},
        {"x-ratelimit-available-x": "many"},
        {"content-type": "text/html"},
    ],
)
def test_unreadable_headers_announce_nothing(headers):
    assert announced_limits(headers, NOW) == []


# --- pacing a host --------------------------------------------------------------------------


def test_host_spreads_the_remaining_requests_over_the_window():
    pace = HostPace(margin=0.0)
    pace.claim(0.0)
    pace.observe([Announced("x", 4.0, 8.0)], 0.0)
    pace.release()
    assert pace.wait(0.0) == pytest.approx(2.0)  # 8 s left / 4 requests
    pace.claim(2.0)
    assert pace.wait(2.0) == pytest.approx(2.0)  # 6 s / 3


def test_host_waits_for_the_reset_when_nothing_is_left_then_refills():
    pace = HostPace(margin=0.5)
    pace.claim(10.0)
    pace.observe([Announced("x", 0.0, 3.0, limit=5.0)], 10.0)
    pace.release()
    assert pace.wait(10.0) == pytest.approx(3.5)
    assert pace.wait(13.6) == 0.0  # the window ended: 5 again, no reset known
    for _ in range(5):
        pace.claim(13.6)
    assert pace.scopes["x"].remaining == 0.0
    assert pace.wait(13.6) == pytest.approx(pace.unknown_reset + 0.5)  # until an answer tells


def test_a_window_of_unknown_size_is_unlimited_after_its_reset():
    pace = HostPace(margin=0.0)
    pace.observe([Announced("x", 0.0, 1.0)], 0.0)
    assert pace.wait(1.0) == 0.0
    assert math.isinf(pace.scopes["x"].remaining)


def test_requests_in_flight_count_against_what_an_answer_announces():
    pace = HostPace(margin=0.0)
    for _ in range(3):
        pace.claim(0.0)
    pace.observe([Announced("x", 2.0, 10.0)], 0.1)  # two others are still on their way
    assert pace.scopes["x"].remaining == 0.0
    assert pace.wait(0.1) == pytest.approx(10.0)


def test_a_late_answer_never_gives_back_spent_requests():
    pace = HostPace(margin=0.0)
    pace.observe([Announced("x", 2.0, 10.0)], 0.0)
    pace.observe([Announced("x", 5.0, 9.5)], 0.5)  # same window, out of order
    assert pace.scopes["x"].remaining == 2.0


def test_spent_without_a_reset_waits_one_slot_of_a_named_window_or_the_default():
    pace = HostPace(margin=0.0, unknown_reset=7.0)
    pace.observe([Announced("burst", 0.0, None, 20.0, 60.0)], 0.0)
    assert pace.wait(0.0) == pytest.approx(3.0)
    other = HostPace(margin=0.0, unknown_reset=7.0)
    other.observe([Announced("x", 0.0)], 0.0)
    assert other.wait(0.0) == pytest.approx(7.0)


# --- budgets --------------------------------------------------------------------------------


def test_budget_spaces_requests_and_counts_its_windows(tmp_path):
    budget = RequestBudget("api/anonymous", [Rate(2, 10), Rate(3, 100)], tmp_path / "b.json")
    assert budget.wait(NOW) == 0
    budget.spend(NOW)
    assert budget.wait(NOW) == pytest.approx(5.0)  # 10 s / 2: the shortest window's pace
    budget.spend(NOW + 5)
    wait, rate = budget.spent(NOW + 5)
    assert rate == Rate(2, 10) and wait == pytest.approx(5.1, abs=0.2)
    budget.spend(NOW + 11)
    wait, rate = budget.spent(NOW + 21)
    assert rate == Rate(3, 100) and 79 <= wait <= 81  # the first one leaves the long window


def test_budget_refuses_with_a_clear_message_and_the_time_it_frees_up():
    budget = RequestBudget("ov", [Rate(1, 86400)], tier="anonymous", hint=" (register)")
    budget.spend(NOW)
    refusal = budget.refusal(NOW + 60, max_wait=300)
    assert refusal is not None
    assert refusal.detail == "the anonymous limit of 1 requests per day is spent (register)"
    assert refusal.until == pytest.approx(NOW + 86400, abs=900)
    assert budget.refusal(NOW + 86400 + 900, max_wait=300) is None


def test_budget_is_kept_across_runs_and_shared_in_one_file(tmp_path):
    path = tmp_path / ".jobs" / "budgets.json"
    first = RequestBudget("openverse/anonymous", [Rate(2, 86400)], path)
    first.spend(NOW)
    first.spend(NOW + 1)
    RequestBudget("other/source", [Rate(5, 60)], path).spend(NOW)
    again = RequestBudget("openverse/anonymous", [Rate(2, 86400)], path)
    assert again.spent(NOW + 2)[1] == Rate(2, 86400)
    assert set(json.loads(path.read_text())) == {"openverse/anonymous", "other/source"}


def test_a_429_block_is_kept_too(tmp_path):
    path = tmp_path / "budgets.json"
    RequestBudget("ov", [Rate(100, 60)], path).block_until(NOW + 3600)
    again = RequestBudget("ov", [Rate(100, 60)], path)
    wait, rate = again.spent(NOW)
    assert rate is None and wait == pytest.approx(3600)
    assert "HTTP 429" in again.refusal(NOW, 300).detail


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2]",
        '{"ov": "x"}',
        '{"ov": {"last": "yesterday"}}',
        '{"ov": {"windows": {"60": {"abc": 5}}}}',
        '{"ov": {"windows": {"60": {"1": "many"}}}}',
        '{"ov": {"last": 1e400, "blocked_until": 1e400}}',
        '{"ov": {"windows": ["a"]}}',
    ],
)
def test_a_damaged_budget_file_is_ignored_not_fatal(tmp_path, content):
    path = tmp_path / "budgets.json"
    path.write_text(content)
    budget = RequestBudget("ov", [Rate(2, 60)], path)
    assert budget.wait(NOW) == 0
    budget.spend(NOW)  # and it is rewritten whole
    assert json.loads(path.read_text())["ov"]["windows"]["60"]


def test_a_host_inventing_scopes_cannot_grow_its_state():
    pace = HostPace()
    for n in range(100):
        pace.observe([Announced(f"scope{n}", 5.0, 10.0)], float(n))
    assert len(pace.scopes) == 16 and "scope99" in pace.scopes


# --- the middleware -------------------------------------------------------------------------


def _middleware(spider: object = None, **settings: object):
    stats = SimpleNamespace(values={})
    stats.inc_value = lambda key, count=1: stats.values.__setitem__(
        key, stats.values.get(key, 0) + count
    )
    crawler = SimpleNamespace(
        settings=Settings(settings),
        signals=SimpleNamespace(connect=lambda *a, **k: None),
        stats=stats,
        spider=spider,
        engine=None,
    )
    return RateLimitMiddleware(crawler)  # type: ignore[arg-type]


def test_the_middleware_learns_from_answers_and_refuses_a_wait_beyond_the_maximum():
    middleware = _middleware(RATELIMIT_MAX_WAIT=300)
    first = Request("https://oauth.reddit.com/search?q=cat")
    asyncio.run(middleware.process_request(first))  # nothing known yet: goes at once
    headers = {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "590", "X-Ratelimit-Used": "1000"}
    middleware._downloaded(Response(first.url, headers=headers), first)
    middleware._left(first)
    second = Request("https://oauth.reddit.com/search?q=dog")
    with pytest.raises(RateLimited, match="oauth.reddit.com announces that its rate limit"):
        asyncio.run(middleware.process_request(second))
    other = Request("https://i.redd.it/x.jpg")  # another host is not held back
    asyncio.run(middleware.process_request(other))
    off = _middleware(RATELIMIT_ENABLED=False)
    off._downloaded(Response(first.url, headers=headers), first)
    asyncio.run(off.process_request(second))  # headers ignored when switched off


def test_the_middleware_refuses_a_spent_budget_only_for_budgeted_pages():
    budget = RequestBudget("ov", [Rate(1, 86400)], tier="anonymous")
    budget.spend(time.time())
    middleware = _middleware(SimpleNamespace(budget=budget))
    page = Request("https://api.openverse.org/v1/images/?q=cat", meta={BUDGETED: True})
    with pytest.raises(RateLimited, match="the anonymous limit of 1 requests per day is spent"):
        asyncio.run(middleware.process_request(page))
    image = Request("https://live.staticflickr.com/x.jpg")
    asyncio.run(middleware.process_request(image))
