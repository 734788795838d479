"""End-to-end: URLs from an API answer that must not be fetched are refused and recorded.

Only 127.0.0.1 is ever contacted. The crawl with private addresses refused
also runs behind an HTTP proxy on the fake API's port, so even a broken guard
could not send a byte to 10.x, 169.254.169.254 or ::1: the request would reach
the local server instead, and the test would see it there.
"""

from __future__ import annotations

import base64

import pytest

from cgan.scraping.imagecheck import sha1_of
from tests.scraping.fake_apis import make_jpeg


@pytest.mark.slow
def test_only_http_urls_are_fetched_and_redirects_are_checked(
    local_source, crawl, manifest, tmp_path
):
    secret = tmp_path / "private.jpg"  # a perfectly good cat picture on the local disk
    secret.write_bytes(make_jpeg(31))
    local_source.add_file("/img/ok.jpg", make_jpeg(32))
    local_source.add_file("/img/moved.jpg", make_jpeg(33))
    local_source.add_file("/img/to-moved.jpg", b"", status=302, location="/img/moved.jpg")
    local_source.add_file("/img/to-file.jpg", b"", status=302, location=secret.as_uri())
    data_uri = "data:image/jpeg;base64," + base64.b64encode(make_jpeg(34)).decode()
    for path in (secret.as_uri(), data_uri, "/img/to-file.jpg", "/img/ok.jpg", "/img/to-moved.jpg"):
        local_source.add_result("openverse", "cat", path)

    out = tmp_path / "out"
    result = crawl("cat", 10, out, sources="openverse")
    assert result.returncode == 0, result.stderr[-3000:]

    records = {r["url"]: r for r in manifest(out)}
    assert len(records) == 5
    for url, detail in (
        (secret.as_uri(), "scheme 'file' is not http or https"),
        (data_uri, "scheme 'data' is not http or https"),
        (
            local_source.url("/img/to-file.jpg"),
            f"redirect to {secret.as_uri()}: scheme 'file' is not http or https",
        ),
    ):
        assert (records[url]["status"], records[url]["reason"]) == ("rejected", "unsafe_url"), url
        assert records[url]["detail"] == detail
    assert local_source.hits["/img/to-file.jpg"] == 1

    # With ALLOW_PRIVATE_ADDRESSES (the fixture's), the local server is usable,
    # redirects on it included.
    for path in ("/img/ok.jpg", "/img/to-moved.jpg"):
        assert records[local_source.url(path)]["status"] == "kept", records[local_source.url(path)]
    kept = {p.name for p in (out / "cat").glob("*.jpg")}
    assert kept == {f"{sha1_of(make_jpeg(seed))}.jpg" for seed in (32, 33)}
    assert "unsafe_url=3" in result.stdout


def test_private_addresses_are_refused_without_the_setting(
    local_source, manifest, tmp_path, cli, crawl_args
):
    local_source.add_file("/img/a.jpg", make_jpeg(41))
    local_source.add_file("/img/b.jpg", make_jpeg(42))
    port = local_source.base.rsplit(":", 1)[1]
    refused = {
        f"http://127.0.0.1:{port}/img/a.jpg": "127.0.0.1 is a loopback address",
        f"http://localhost:{port}/img/b.jpg": "localhost resolves to 127.0.0.1, a loopback",
        "http://10.20.30.40/cat.jpg": "10.20.30.40 is a private address",
        "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a link-local address",
        "http://[::1]/cat.jpg": "::1 is a loopback address",
        "http://[::ffff:169.254.169.254]/latest/": "(IPv4 169.254.169.254) is a link-local",
        # 169.254.169.254 as one number: only resolving the name reveals it.
        "http://2852039166/latest/meta-data/": "resolves to 169.254.169.254, a link-local",
    }
    for url in refused:
        local_source.add_result("openverse", "cat", url)
    out = tmp_path / "out"
    args = crawl_args(local_source, "cat", 10, out, {"ALLOW_PRIVATE_ADDRESSES": "False"})
    proxy = {"http_proxy": local_source.base, "HTTP_PROXY": local_source.base}
    result = cli(args + ["--sources", "openverse"], env={**proxy, "no_proxy": "", "NO_PROXY": ""})
    assert result.returncode == 0, result.stderr[-3000:]

    records = {r["url"]: r for r in manifest(out)}
    assert set(records) == set(refused)
    for url, detail in refused.items():
        assert (records[url]["status"], records[url]["reason"]) == ("rejected", "unsafe_url"), url
        assert detail in records[url]["detail"], records[url]
    # The search API (the operator's own URL) still answered, through the proxy;
    # nothing else reached the server: no image, no robots.txt, nothing proxied.
    assert local_source.hits["/openverse/v1/images/"] >= 1
    assert all(r.startswith(f"{local_source.base}/openverse/") for r in local_source.requests)
    assert local_source.hits["/img/a.jpg"] == local_source.hits["/img/b.jpg"] == 0
    assert not list(out.glob("cat/*.jpg"))
