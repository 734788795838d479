"""The dashboard runs on the inference stack alone: every page, in a fresh interpreter,
without TensorFlow, Keras, tf2onnx or onnx ever being imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.dashboard.conftest import APP
from tests.dashboard.helpers import PAGES

BANNED = ("tensorflow", "keras", "tf2onnx", "onnx", "tf_keras")

SCRIPT = f"""
import json, sys
from streamlit.testing.v1 import AppTest

at = AppTest.from_file({str(APP)!r}, default_timeout=120).run()
problems = []
for page in {sorted(PAGES.values())!r}:
    at.switch_page(page).run()
    problems += [page + ": " + str(e.value) for e in (*at.exception, *at.error)]
imported = sorted(name for name in sys.modules if name.split(".")[0] in {BANNED!r})
print(json.dumps({{"problems": problems, "imported": imported}}))
"""


def test_every_page_is_in_the_test_list():
    pages = {p.relative_to(APP.parent).as_posix() for p in APP.parent.glob("views/*.py")}
    assert pages - {"views/__init__.py"} == set(PAGES.values())


@pytest.mark.slow
def test_no_page_imports_tensorflow(dashboard_files):
    env = {**os.environ, **dashboard_files.env()}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    assert report["imported"] == []
