"""Children started as a shell starts a foreground job, for tests that press Ctrl-C.

A process started with SIGINT ignored keeps it ignored (what `nohup` and `cmd &` in a
script rely on, and what Python respects), and the test runner may itself have been
started that way: the child's Ctrl-C then does nothing, whatever the code under test does.
"""

from __future__ import annotations

import signal


def foreground_job() -> None:
    """`preexec_fn` for Popen: SIGINT's default action in the child, as at a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
