"""The dashboard runs on the inference stack alone: every view, in a fresh interpreter,
without TensorFlow, Keras, tf2onnx or onnx ever being imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.dashboard.conftest import APP

BANNED = ("tensorflow", "keras", "tf2onnx", "onnx", "tf_keras")

SCRIPT = f"""
import json, sys
from streamlit.testing.v1 import AppTest

at = AppTest.from_file({str(APP)!r}, default_timeout=120).run()
problems = []
view = [node for node in at.main if getattr(node, "key", None) == "view"][0]
for label in view.options:
    view.set_value(label)
    at.run()
    problems += [label + ": " + str(e.value) for e in (*at.exception, *at.error)]
    view = [node for node in at.main if getattr(node, "key", None) == "view"][0]
imported = sorted(name for name in sys.modules if name.split(".")[0] in {BANNED!r})
print(json.dumps({{"views": list(view.options), "problems": problems, "imported": imported}}))
"""


def test_no_view_imports_tensorflow(dashboard_files):
    env = {**os.environ, **dashboard_files.env()}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["views"]) == 4
    assert report["problems"] == []
    assert report["imported"] == []
