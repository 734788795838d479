"""End to end in a real browser: the app served by `cgan-dashboard` in a subprocess, from a
folder with no Streamlit config, and Debian's headless Chromium driven by Playwright. Skips
when either is missing (never downloads a browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.hostile_models import hostile_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
START_TIMEOUT_S = 60
STEP_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")


SECRET = b"\x00\x00\x00?"  # float32 0.5: what a model with external data would read


def _launcher() -> list[str]:
    """The installed console script, or its module where scripts are not beside Python."""
    script = Path(sys.executable).with_name("cgan-dashboard")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cgan.dashboard.launch"]


@contextmanager
def _serve(dashboard_files, tmp_path, extra_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The app served by the launcher from a working folder with no .streamlit/config.toml
    (so the launcher's defaults make it headless) that holds a file no upload may read;
    yields its URL and the server's process id."""
    workdir = tmp_path / "server-cwd"
    workdir.mkdir()
    (workdir / "secret.txt").write_bytes(SECRET)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    env = {**os.environ, **dashboard_files.env(), **extra_env}
    command = [
        *_launcher(),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.fileWatcherType",
        "none",
    ]
    with log.open("w") as stream:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=stream, stderr=subprocess.STDOUT
        )
    try:
        _wait_healthy(url, process, log)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def server(dashboard_files, tmp_path) -> Iterator[str]:
    with _serve(dashboard_files, tmp_path, {}) as (url, _):
        yield url


@contextmanager
def _browser_page(url: str) -> Iterator:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.goto(url)
            yield page
        finally:
            browser.close()


@pytest.fixture
def page(server) -> Iterator:
    """A Chromium page on the served app."""
    with _browser_page(server) as page:
        yield page


@pytest.mark.slow
def test_pick_a_class_and_generate_in_chromium(page, tmp_path):
    grid = page.locator('[data-testid="stImage"] img').first
    grid.wait_for(state="visible")
    caption = page.get_by_text("seeds 0–31")
    caption.wait_for()

    page.locator('[data-testid="stSelectbox"]').filter(has_text="Class").click()
    page.get_by_role("option", name="blue-triangle").click()
    page.get_by_text("blue-triangle · seeds 0–31").wait_for()
    first = grid.get_attribute("src")

    page.get_by_role("button", name="New seed").click()
    page.wait_for_function(
        "old => { const img = document.querySelector('[data-testid=\"stImage\"] img');"
        " return img && img.src && !img.src.endsWith(old); }",
        arg=first.rsplit("/", 1)[-1],
    )
    grid.wait_for(state="visible")
    page.wait_for_function(
        "() => { const img = document.querySelector('[data-testid=\"stImage\"] img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )
    size = grid.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [8 * 98 + 2, 4 * 98 + 2]  # 8x4 tiles of 96 px, 2 px padding
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_role("alert").count() == 0  # st.error and st.warning boxes

    with page.expect_download() as download:
        page.get_by_role("button", name="Grid (PNG)").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("blue-triangle-seeds")
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.get_by_role("link", name="Training").click()  # st.navigation's top bar
    page.get_by_text("Loss curves").wait_for()
    assert page.url.endswith("/training")
    page.get_by_role("link", name="Generate").click()
    page.get_by_text("blue-triangle · seeds").wait_for()  # the class chosen before is kept
    grid.wait_for(state="visible")

    screenshot = tmp_path / "dashboard-generate.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000


@pytest.mark.slow
def test_hostile_upload_in_chromium(page, tmp_path):
    """An upload whose weights point at a file in the server's folder: one error line on
    the page, no image, and the page goes on working."""
    evil = tmp_path / "evil.onnx"
    evil.write_bytes(hostile_model(external="secret.txt").SerializeToString())
    page.locator('[data-testid="stImage"] img').first.wait_for(state="visible")
    page.get_by_text("Upload", exact=True).click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(evil))
    alert = page.get_by_role("alert").filter(has_text="refers to external data")
    alert.wait_for()
    assert "evil.onnx" in alert.inner_text()
    assert page.locator('[data-testid="stImage"] img').count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_text("Shipped model", exact=True).click()  # back to a good model
    page.locator('[data-testid="stImage"] img').first.wait_for(state="visible")
    assert page.locator('[data-testid="stException"]').count() == 0


def _settled(page) -> None:
    """Wait until the app has finished the rerun a click started."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


@pytest.mark.slow
def test_training_page_overlays_two_measured_runs_in_chromium(page, tmp_path):
    """The Training page with two runs that measured themselves, one overlaid on the other:
    the quality and loss charts draw, the best snapshot's export command is shown."""
    page.get_by_role("link", name="Training").click()
    page.get_by_text("Loss curves").wait_for()
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Run in").click()
    page.get_by_role("option", name="study/slow").click()
    page.get_by_text("Best snapshot of study/slow").wait_for()
    page.locator('[data-testid="stMultiSelect"]').click()
    page.get_by_role("option", name="study/fast").click()
    page.keyboard.press("Escape")
    _settled(page)
    page.get_by_text("CPU-hours", exact=True).click()
    _settled(page)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    page.wait_for_function(
        '() => document.querySelectorAll(\'[data-testid="stVegaLiteChart"] canvas, '
        '[data-testid="stVegaLiteChart"] svg.marks\').length >= 7'
    )
    assert charts.count() == 7  # four quality figures, three loss charts
    page.get_by_text("--checkpoint best").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_role("alert").count() == 0
    chosen = page.locator('[data-testid="stMultiSelect"]').inner_text()
    assert "study/fast" in chosen

    screenshot = tmp_path / "dashboard-training.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 20_000


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_an_uploaded_model_that_never_ends_gives_back_the_core(dashboard_files, tmp_path):
    """An upload whose graph loops for ever: the load probe is stopped at the run limit
    (CGAN_RUN_SECONDS=2 here), the page says so in one line, and once the page is closed
    the server's CPU time stands still (no run left spinning)."""
    looping = tmp_path / "loop.onnx"
    looping.write_bytes(hostile_model(loop_trips=2**62).SerializeToString())
    with _serve(dashboard_files, tmp_path, {"CGAN_RUN_SECONDS": "2"}) as (url, pid):
        with _browser_page(url) as page:
            page.locator('[data-testid="stImage"] img').first.wait_for(state="visible")
            page.get_by_text("Upload", exact=True).click()
            upload = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            upload.set_input_files(str(looping))
            alert = page.get_by_role("alert").filter(has_text="ran for more than 2 s")
            alert.wait_for()
            message = alert.inner_text().strip().splitlines()[-1]  # after the icon's name
            assert message.startswith("loop.onnx: the model ran for more than 2 s"), message
            assert page.locator('[data-testid="stException"]').count() == 0
        time.sleep(2)
        before = _cpu_seconds(pid)
        time.sleep(5)
        spent = _cpu_seconds(pid) - before
        assert spent < 1.0, f"the server used {spent:.1f} CPU-s in 5 s after the page closed"


def _resident_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident MiB of a process, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@pytest.mark.slow
def test_an_uploaded_model_that_fills_memory_is_stopped_and_gives_it_back(
    dashboard_files, tmp_path
):
    """An upload that expands 128 MiB per image inside its graph: the load probe (one
    image) fits the server's CGAN_RUN_MEMORY_MB=256, the page's 32 images (4 GiB) do not and
    get one line; the server's peak stays near the limit, and its memory falls back once the
    page is closed."""
    filling = tmp_path / "fill.onnx"
    filling.write_bytes(hostile_model(fill_per_image=32 * 2**20).SerializeToString())
    with _serve(dashboard_files, tmp_path, {"CGAN_RUN_MEMORY_MB": "256"}) as (url, pid):
        with _browser_page(url) as page:
            page.locator('[data-testid="stImage"] img').first.wait_for(state="visible")
            before, _ = _resident_mb(pid)
            page.get_by_text("Upload", exact=True).click()
            upload = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            upload.set_input_files(str(filling))
            alert = page.get_by_role("alert").filter(has_text="needed more than the 256 MiB")
            alert.wait_for()
            message = alert.inner_text().strip().splitlines()[-1]
            assert "CGAN_RUN_MEMORY_MB sets the limit" in message, message
            assert page.locator('[data-testid="stException"]').count() == 0
        time.sleep(3)
        after, peak = _resident_mb(pid)
        assert peak - before < 256 + 200, f"peak {peak:.0f} MiB from {before:.0f} MiB"
        assert after - before < 100, f"{after:.0f} MiB after the page closed, {before:.0f} before"
