"""Opening an onnxruntime session on the provider the user asked for, quietly and safely.

A model file is untrusted input: its initializers may name *external data* files. From a
path, onnxruntime resolves them inside the model's own folder only (it refuses `..`,
absolute paths and symlinks that leave it). From bytes it would resolve them against the
process's working folder, so bytes are written to a private, empty temporary folder first
and loaded from there: a model that names any external file then fails to load.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort

from cgan.common.cli import first_line
from cgan.common.errors import InferenceError

PROVIDERS = ("auto", "cpu", "cuda")
_CPU, _CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"

# Fatal only: no warnings about absent GPUs on CPU machines, and no coloured error lines of
# onnxruntime's own before the project's one-line error (InferenceError says what failed).
QUIET = 4
ort.set_default_logger_severity(QUIET)


# Seconds one run of a model may take (a batch, or the probe at load): a graph can loop for
# ever inside one node. CGAN_RUN_SECONDS changes it (a slow CPU, very large batches).
RUN_SECONDS_ENV = "CGAN_RUN_SECONDS"
DEFAULT_RUN_SECONDS = 60.0
# MiB of CPU memory all runs of this process may hold at once: a tiny graph can ask for
# gigabytes inside (an Expand per image). CGAN_RUN_MEMORY_MB changes it.
RUN_MEMORY_ENV = "CGAN_RUN_MEMORY_MB"
DEFAULT_RUN_MEMORY_MB = 2048


def _positive_setting(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def run_seconds() -> float:
    """The run time limit: $CGAN_RUN_SECONDS when it is a positive number, else 60."""
    return _positive_setting(RUN_SECONDS_ENV, DEFAULT_RUN_SECONDS)


def run_memory_mb() -> int:
    """The run memory limit: $CGAN_RUN_MEMORY_MB when it is a positive number, else 2048."""
    return int(min(_positive_setting(RUN_MEMORY_ENV, DEFAULT_RUN_MEMORY_MB), 2**40))


_memory_limit: int | None = None  # MiB of the process-wide arena, once registered
_memory_lock = threading.Lock()


def _memory_limited_arena() -> int:
    """Register, once per process, the CPU arena every session allocates from, capped at
    run_memory_mb(). An allocation past the cap fails that run (one line), where the
    default per-session arenas would grow until the machine swaps."""
    global _memory_limit
    with _memory_lock:
        if _memory_limit is None:
            limit = run_memory_mb()
            arena = ort.OrtArenaCfg({"max_mem": limit * 2**20, "arena_extend_strategy": 0})
            memory = ort.OrtMemoryInfo(
                "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
            )
            ort.create_and_register_allocator(memory, arena)
            _memory_limit = limit
        return _memory_limit


def _options() -> ort.SessionOptions:
    _memory_limited_arena()
    options = ort.SessionOptions()
    options.log_severity_level = QUIET
    options.add_session_config_entry("session.use_env_allocators", "1")
    return options


def _run_options() -> ort.RunOptions:
    options = ort.RunOptions()
    options.log_severity_level = QUIET
    # What a run allocated goes back to the system when it ends, so a model that filled
    # memory once does not keep it for the rest of a dashboard's life.
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def _run_error(error: BaseException | None) -> InferenceError:
    text = str(error)
    if "smaller than requested bytes" in text or "Failed to allocate" in text:
        return InferenceError(
            f"the model needed more than the {_memory_limit} MiB a run may use and was "
            f"stopped ({RUN_MEMORY_ENV} sets the limit)"
        )
    return InferenceError(f"the model failed to run: {first_line(error)}")


def _wait_through_interrupts(done: threading.Event) -> None:
    """Wait for `done` (a terminated run ends within milliseconds), through more Ctrl-Cs."""
    while True:
        try:
            if done.wait(timeout=0.1):
                return
        except KeyboardInterrupt:
            continue


def run_limited(
    session: ort.InferenceSession, outputs: list[str], feeds: dict[str, Any]
) -> list[Any]:
    """`session.run` in a worker thread under run_seconds(); onnxruntime's terminate flag
    ends it at the limit, and on Ctrl-C or any exception in the waiting thread, which a
    run in the calling thread could not notice until the run returned."""
    limit = run_seconds()
    options = _run_options()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = session.run(outputs, feeds, options)
        except Exception as exc:  # onnxruntime's own error types
            outcome["error"] = exc
        finally:
            done.set()

    deadline = time.monotonic() + limit
    worker = threading.Thread(target=work, name="cgan-run", daemon=True)
    try:  # a Ctrl-C from here on, even before the worker starts, still ends in the finally
        worker.start()
        while not done.wait(timeout=min(0.25, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                break
    finally:
        if (
            worker.ident is not None and not done.is_set()
        ):  # the limit, or Ctrl-C: stop the run, and wait
            options.terminate = True  # for it, so no thread is inside onnxruntime at exit
            _wait_through_interrupts(done)
    if "value" in outcome:
        return outcome["value"]
    if time.monotonic() >= deadline:
        raise InferenceError(
            f"the model ran for more than {limit:g} s and was stopped ({RUN_SECONDS_ENV} "
            "sets the limit)"
        )
    raise _run_error(outcome.get("error"))


def _open(model: str | bytes, providers: list[str]) -> ort.InferenceSession:
    if isinstance(model, bytes):
        with tempfile.TemporaryDirectory(prefix="cgan-model-") as private:  # mode 0700
            path = Path(private) / "model.onnx"
            path.write_bytes(model)
            try:
                return _open(str(path), providers)  # external data is read at load
            except InferenceError as exc:
                if "external data" in str(exc).lower():
                    raise InferenceError(
                        "cannot load the model: it refers to external data "
                        "files, which a model given as bytes (an upload) "
                        "may not use"
                    ) from None
                raise
    try:
        return ort.InferenceSession(model, sess_options=_options(), providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        raise InferenceError(f"cannot load the model: {first_line(exc)}") from None


def open_session(model: str | Path | bytes, provider: str = "auto") -> ort.InferenceSession:
    """`auto` takes CUDA only when a session really runs on it; `cuda` insists on it.

    `get_available_providers()` lists CUDA in onnxruntime-gpu builds even on machines
    without a GPU, so the decision is made from the providers the session really got.
    """
    if provider not in PROVIDERS:
        raise InferenceError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if isinstance(model, Path):
        model = str(model)
    if isinstance(model, str) and not Path(model).is_file():
        what = "is not a regular file" if Path(model).exists() else "does not exist"
        raise InferenceError(f"model file {model} {what}")
    cuda_listed = _CUDA in ort.get_available_providers()
    if provider == "cpu" or (provider == "auto" and not cuda_listed):
        return _open(model, [_CPU])
    if provider == "cuda" and not cuda_listed:
        raise InferenceError(
            "the cuda provider needs the onnxruntime-gpu package (see README: GPU inference)"
        )
    session = _open(model, [_CUDA, _CPU])
    if session.get_providers()[0] == _CUDA:
        return session
    if provider == "cuda":
        raise InferenceError(
            "the cuda provider was asked for, but onnxruntime-gpu found no usable CUDA device"
        )
    return _open(model, [_CPU])
