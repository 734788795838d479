"""Hostile model files and extreme options against the inference API and cgan-infer.

Each case must end in one clear line and exit code 2 (or a normal result), within time and
memory bounds, with nothing read or written outside the folders the user named."""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from cgan.common.errors import InferenceError
from cgan.inference.generator import ImageGenerator, noise_for_seed
from tests.hostile_models import hostile_model, save
from tests.terminal import foreground_job

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 2 * 2**30  # address space of each cgan-infer subprocess
TIME_LIMIT = 60


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def infer_limited(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """cgan-infer in a subprocess with a memory cap and a time limit (a hang fails)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cgan.inference.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        preexec_fn=_limit_memory,
    )


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def assert_refused(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("cgan-infer: error:") and fragment in lines[0], lines[0]


# --- model files ---------------------------------------------------------------------------

HOSTILE_MODELS = {
    "output [N, 128]": (dict(flat_output=True), "output is shaped [1, 128]"),
    "2048px output, metadata says 4": (dict(output_size=2048), "not [1, 4, 4, 3]"),
    "image_size 100000": (dict(image_size=100_000), "image_size metadata"),
    "latent_dim 10**9": (dict(metadata={"latent_dim": "1000000000"}), "latent_dim metadata"),
    "label ../../escaped/evil": (dict(labels=["../../escaped/evil", "b"]), "path separator"),
    "absolute path label": (dict(labels=["/tmp/evil", "b"]), "path separator"),
    "backslash label": (dict(labels=["..\\evil", "b"]), "path separator"),
    "NUL in a label": (dict(labels=["a\x00b", "b"]), "control characters"),
    "newline in a label": (dict(labels=["a\nb", "b"]), "control characters"),
    "empty label": (dict(labels=["", "b"]), "empty"),
    "label '..'": (dict(labels=["..", "b"]), "only dots"),
    "duplicate labels": (dict(labels=["Dog", "dog"]), "appears twice"),
    "no labels": (dict(labels=[]), "not a list of names"),
    "labels not strings": (dict(labels=[1, 2]), "not a list of names"),
    "NaN epochs": (dict(metadata={"epochs": "NaN"}), "wrongly typed fields: epochs"),
    "Infinity ema_decay": (dict(metadata={"ema_decay": "Infinity"}), "ema_decay"),
    "boolean image_size": (dict(metadata={"image_size": "true"}), "image_size metadata"),
    "metadata not JSON": (dict(metadata={"arch": "{"}), "not valid JSON"),
    "string output": (dict(output_type=TensorProto.STRING), "output type tensor(string)"),
    "double output": (dict(output_type=TensorProto.DOUBLE), "output type tensor(double)"),
}


@pytest.mark.parametrize(
    "options, fragment",
    [
        (dict(nan_from_label_1=True), "NaN or infinite values"),
        (dict(fails_from_label_1=True), "the model failed to run"),
    ],
)
def test_a_model_that_fails_at_run_time_is_one_line_and_writes_nothing(tmp_path, options, fragment):
    """Label 0 (the load probe) works, label 1 gives NaN pixels or fails inside onnxruntime:
    one line from the project (none of onnxruntime's own log lines), and no black image."""
    model = save(hostile_model(**options), tmp_path / "model.onnx")
    work = tmp_path / "work"
    work.mkdir()
    before = files_under(tmp_path)
    result = infer_limited("--label", "1", "-o", "out.png", "--model", str(model), cwd=work)
    assert_refused(result, fragment)
    assert "onnxruntime:" not in result.stderr and "\x1b[" not in result.stderr
    assert files_under(tmp_path) == before
    fine = infer_limited("--label", "0", "-o", "ok.png", "--model", str(model), cwd=work)
    assert fine.returncode == 0, fine.stderr


@pytest.mark.parametrize("case", sorted(HOSTILE_MODELS))
def test_hostile_model_is_refused_at_load(case):
    options, fragment = HOSTILE_MODELS[case]
    with pytest.raises(InferenceError, match=None) as caught:
        ImageGenerator(hostile_model(**options).SerializeToString())
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "case",
    [
        "output [N, 128]",
        "2048px output, metadata says 4",
        "label ../../escaped/evil",
        "absolute path label",
        "NUL in a label",
    ],
)
def test_cgan_infer_refuses_hostile_model(tmp_path, case):
    options, fragment = HOSTILE_MODELS[case]
    model = save(hostile_model(**options), tmp_path / "model.onnx")
    work = tmp_path / "work"
    work.mkdir()
    before = files_under(tmp_path)
    result = infer_limited(
        "--label", "0,1", "--outdir", "out/inner", "--model", str(model), cwd=work
    )
    assert_refused(result, fragment)
    assert files_under(tmp_path) == before  # nothing written, inside or outside


@pytest.mark.slow
def test_a_model_that_never_ends_is_stopped_at_the_run_limit(tmp_path):
    """A Loop of 2**62 trips in a model of a few hundred bytes: stopped by onnxruntime's
    terminate flag at CGAN_RUN_SECONDS, one line, nothing written."""
    model = save(hostile_model(loop_trips=2**62), tmp_path / "loop.onnx")
    assert model.stat().st_size < 2_000
    work = tmp_path / "work"
    work.mkdir()
    started = time.monotonic()
    result = infer_limited(
        "--label", "0", "-o", "x.png", "--model", str(model), cwd=work,
        env={"CGAN_RUN_SECONDS": "1"},
    )  # fmt: skip
    assert_refused(result, "ran for more than 1 s and was stopped")
    assert time.monotonic() - started < 20
    assert not any(work.iterdir())
    bounded = infer_limited(
        "--label", "0", "-o", "x.png", "--model",
        str(save(hostile_model(loop_trips=1000), tmp_path / "short.onnx")), cwd=work,
    )  # fmt: skip
    assert bounded.returncode == 0, bounded.stderr


# A lean parent (python -S) runs the command and reports its child's peak resident memory:
# measured without RLIMIT_AS, so only the run memory limit can keep it down.
PEAK_OF_CHILD = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(result.stderr)
print(result.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""

FILL_PER_IMAGE = 16 * 2**20  # 64 MiB of float32 per image, inside the graph


def infer_peak(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, int, str]:
    """cgan-infer's exit code, peak resident MiB and stderr."""
    result = subprocess.run(
        [sys.executable, "-S", "-c", PEAK_OF_CHILD, sys.executable, "-m", "cgan.inference.cli",
         *args],
        cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True, text=True, timeout=TIME_LIMIT,
    )  # fmt: skip
    code, peak = result.stdout.split()
    return int(code), int(peak), result.stderr


@pytest.mark.slow
def test_a_model_that_fills_memory_inside_its_graph_is_stopped_at_the_memory_limit(tmp_path):
    """A model of a few hundred bytes that expands 64 MiB per image inside the graph: 32
    images would take 2 GiB. Under CGAN_RUN_MEMORY_MB=512 the run is refused in one line
    and the process never holds much more than the limit; 2 images (128 MiB) still work."""
    model = save(hostile_model(fill_per_image=FILL_PER_IMAGE), tmp_path / "fill.onnx")
    assert model.stat().st_size < 2_000
    work = tmp_path / "work"
    work.mkdir()
    limit = {"CGAN_RUN_MEMORY_MB": "512"}
    code, peak, stderr = infer_peak(
        "--label", "0", "--n", "32", "--model", str(model), cwd=work, env=limit
    )
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert "needed more than the 512 MiB a run may use" in stderr
    assert "CGAN_RUN_MEMORY_MB" in stderr
    assert peak < 512 + 300, peak  # the interpreter, numpy and onnxruntime: about 100 MiB
    assert not any(work.iterdir())
    code, peak, stderr = infer_peak(
        "--label", "0", "--n", "2", "--model", str(model), cwd=work, env=limit
    )
    assert code == 0, stderr
    assert len(list(work.rglob("*.png"))) == 2


def test_memory_a_run_took_is_returned_when_it_ends(tmp_path):
    """The same model in this process: a run of 8 images (512 MiB inside the graph) ends,
    and the process's resident memory falls back; a run of 64 images (4 GiB), past the
    default 2 GiB, is refused as one InferenceError, and its memory is returned too."""
    model = save(hostile_model(fill_per_image=FILL_PER_IMAGE), tmp_path / "f.onnx")
    generator = ImageGenerator(model, batch_size=64)

    def resident_mb() -> float:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    before = resident_mb()
    generator.generate([0] * 8, list(range(8)))
    assert resident_mb() - before < 100
    with pytest.raises(InferenceError, match="needed more than the 2048 MiB") as refused:
        generator.generate([0] * 64, list(range(64)))
    assert "\n" not in str(refused.value)
    assert resident_mb() - before < 100


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_end_a_model_that_never_ends(tmp_path, stop):
    """Inside the endless run (the default limit is a minute away), Ctrl-C is one line and
    exit 130, SIGTERM ends the process, both within seconds."""
    model = save(hostile_model(loop_trips=2**62), tmp_path / "loop.onnx")
    process = subprocess.Popen(
        [sys.executable, "-m", "cgan.inference.cli", "--label", "0", "--model", str(model)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=foreground_job,
    )
    time.sleep(4)  # imports, the session, then the load probe's endless run
    assert process.poll() is None
    sent = time.monotonic()
    process.send_signal(stop)
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    if stop == signal.SIGINT:
        assert process.returncode == 130 and err.strip() == "cgan-infer: interrupted", err
    else:
        assert process.returncode == -signal.SIGTERM and "Traceback" not in err


def test_upload_cannot_read_files_through_external_data(tmp_path, monkeypatch):
    """Bytes (a dashboard upload) never resolve external data, wherever the process runs."""
    secret = np.float32(0.5).tobytes()
    (tmp_path / "secret.txt").write_bytes(secret)
    monkeypatch.chdir(tmp_path)
    model = hostile_model(external="secret.txt")
    with pytest.raises(InferenceError, match="refers to external data"):
        ImageGenerator(model.SerializeToString())


def test_external_data_only_from_the_models_own_folder(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "weights.bin").write_bytes(np.float32(0.5).tobytes())
    (tmp_path / "secret.bin").write_bytes(np.float32(0.25).tobytes())
    own = ImageGenerator(save(hostile_model(external="weights.bin"), models / "own.onnx"))
    expected = np.rint((np.tanh(0.5 + np.mean(noise_for_seed(0, 4))) + 1) * 127.5)
    assert own.generate([0], [0])[0, 0, 0, 0] == expected
    for location in ("../secret.bin", str(tmp_path / "secret.bin")):
        model = save(hostile_model(external=location), models / "escape.onnx")
        with pytest.raises(InferenceError, match="cannot load the model"):
            ImageGenerator(model)
    (models / "link.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(InferenceError, match="cannot load the model"):
        ImageGenerator(save(hostile_model(external="link.bin"), models / "link.onnx"))


# --- options -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    return save(
        hostile_model(labels=[f"class{k}" for k in range(10)], image_size=32),
        tmp_path_factory.mktemp("small") / "small.onnx",
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            ["--label", "class1", "--seeds", "0-9999", "--grid", "--scale", "32", "-o", "g.png"],
            "29.3 GiB",
        ),
        (["--label", "all", "--n", "10000"], "too many"),
        (["--label", "all", "--n", "1001"], "1000 per label"),
        (["--label", "class1", "--truncation", "nan"], "finite"),
        (["--label", "class1", "--truncation", "inf"], "finite"),
        (["--label", "class1", "--truncation=-inf"], "finite"),
        (["--label", "class1", "--truncation", "0"], "must be positive"),
        (["--label", "class1", "--seed", "-3"], "must not be negative"),
        (["--label", "class1", "--seed", "4294967295", "--n", "2"], "largest seed"),
        (["--label", "class1", "--scale", "33"], "between 1 and 32"),
        # Encoders' own limits, checked before encoding (16,383 px for WebP, 65,500 for JPEG).
        (
            ["--label", "class1", "--seeds", "0-19", "--grid", "--scale", "32", "-o", "g.webp"],
            "larger than webp allows (16,383 px a side)",
        ),
        (
            ["--label", "class1", "--seeds", "0-63", "--grid", "--scale", "32", "-o", "g.jpg"],
            "larger than jpg allows (65,500 px a side)",
        ),
        # Digits of other scripts, and numbers too long for int(), are no indices or seeds.
        (["--label", "\u00b2"], "unknown label"),
        (["--label", "\u0663"], "unknown label"),
        (["--label", "9" * 5000], "unknown label"),
        (["--label", "class1", "--seeds", "\u0663"], "bad --seeds"),
        (["--label", "class1", "--seeds", "1" * 5000], "bad --seeds"),
        (["--label", "class1", "--seeds", "0-" + "9" * 5000], "bad --seeds"),
        (["--label", "class1", "--seeds", "9" * 25], "beyond the largest seed"),
    ],
)
def test_extreme_options_are_refused(small_model, tmp_path, args, fragment):
    before = files_under(tmp_path)
    assert_refused(infer_limited(*args, "--model", str(small_model), cwd=tmp_path), fragment)
    assert files_under(tmp_path) == before


def test_outputs_replace_links_and_never_the_model(small_model, tmp_path):
    """A link already where an image goes is replaced, not written through, and no output
    may be the model being read, by its own name or a link's."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "class1-seed0000.png"
    link.symlink_to(victim)
    result = infer_limited(
        "--label", "class1", "--outdir", "out", "--model", str(small_model), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "keep"
    assert not link.is_symlink() and link.read_bytes().startswith(b"\x89PNG")
    model = tmp_path / "model.png"
    model.write_bytes(small_model.read_bytes())
    (tmp_path / "alias.png").symlink_to(model)
    for out in ("model.png", "alias.png"):
        result = infer_limited("--label", "class1", "--model", "model.png", "-o", out, cwd=tmp_path)
        assert_refused(result, "is the model itself")
        assert model.read_bytes() == small_model.read_bytes()


@pytest.mark.parametrize("model", ["folder", "/dev/zero"])
def test_a_model_that_is_no_regular_file_is_named_so(tmp_path, model):
    (tmp_path / "folder").mkdir()
    result = infer_limited("--label", "x", "--model", model, cwd=tmp_path)
    assert_refused(result, "is not a regular file")


def test_tiny_truncation_ends_quickly(small_model, tmp_path):
    result = infer_limited(
        "--label",
        "class1",
        "--truncation",
        "1e-300",
        "--seeds",
        "0-3",
        "--outdir",
        "out",
        "--model",
        str(small_model),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").iterdir())) == 4
    z = noise_for_seed(3, 128, truncation=1e-300)
    assert np.all(np.abs(z) <= 1e-300)


def test_truncation_draws_are_unchanged_where_they_always_ended():
    """Bounded redraws give the same noise as unbounded ones for any useful truncation."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal(128)
    for _ in range(1000):
        outside = np.abs(z) > 0.7
        if not outside.any():
            break
        z[outside] = rng.standard_normal(int(outside.sum()))
    np.testing.assert_array_equal(noise_for_seed(7, 128, 0.7), z.astype(np.float32))


def test_api_request_cap_before_allocation(small_model):
    generator = ImageGenerator(small_model)
    with pytest.raises(InferenceError, match="GiB"):
        generator.generate([0] * 400_000, list(range(400_000)))
    with pytest.raises(InferenceError, match="GiB"):
        generator.class_grid(list(range(1000)), scale=32)


OPTION_VALUES = {
    "--truncation": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["1e-300", "nan", "-0", "abc", "1e309"]),
    ),
    "--n": st.integers(-5, 20_000).map(str),
    "--seed": st.integers(-5, 2**33).map(str),
    "--seeds": st.one_of(
        st.from_regex(r"\A[0-9,\- ]{1,12}\Z"), st.sampled_from(["0-99999", "4294967295", "5-1", ""])
    ),
    "--scale": st.integers(-2, 64).map(str),
    "--label": st.sampled_from(["class1", "all", "0,1", "-1", "zzz", "class1,class1", ""]),
}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    options=st.dictionaries(
        st.sampled_from(sorted(OPTION_VALUES)), st.just(None), min_size=1
    ).flatmap(lambda keys: st.fixed_dictionaries({k: OPTION_VALUES[k] for k in keys})),
    grid=st.booleans(),
)
def test_any_options_give_images_or_one_line(small_model, tmp_path_factory, options, grid):
    """Whatever the options: exit 0 with files in the output folder only, or exit 2 with one
    line; never a traceback, never a file elsewhere, never over the memory cap."""
    from cgan.inference.cli import main

    work = tmp_path_factory.mktemp("opts")
    argv = [item for key, value in options.items() for item in (key, value)]
    argv += ["--model", str(small_model), "--outdir", str(work / "out")]
    if grid:
        argv += ["--grid", "-o", str(work / "out" / "grid.png")]
    stderr = _run_main(main, argv)
    files = files_under(work)
    assert all(work / "out" in path.parents for path in files)
    if stderr.returncode == 0:
        assert files, argv
    else:
        assert stderr.returncode == 2 and not files, (argv, stderr.text)
        assert len(stderr.text.strip().splitlines()) == 1, (argv, stderr.text)


class _Result:
    def __init__(self, returncode: int, text: str) -> None:
        self.returncode, self.text = returncode, text


def _run_main(main, argv: list[str]) -> _Result:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's one-line errors
            code = exc.code
    return _Result(code, err.getvalue())


METADATA_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.text(max_size=12), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=80, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(
            [
                "labels",
                "latent_dim",
                "image_size",
                "epochs",
                "training_steps",
                "ema_decay",
                "arch",
                "metrics",
                "extra",
                "parity_max_abs_diff",
            ]
        ),
        METADATA_VALUES,
        min_size=1,
    )
)
def test_any_metadata_loads_cleanly_or_is_refused(values):
    """Every metadata value is either usable end to end or an InferenceError at load."""
    metadata = {key: json.dumps(value) for key, value in values.items()}
    latent = values.get("latent_dim", 4)
    usable = type(latent) is int and 0 < latent < 64  # the graph's own input width
    model = hostile_model(metadata=metadata, latent_dim=latent if usable else 4)
    try:
        generator = ImageGenerator(model.SerializeToString())
    except InferenceError as exc:
        assert "\n" not in str(exc)
        return
    labels = generator.labels
    images = generator.generate(labels[:2], [0, 1][: len(labels[:2])])
    size = generator.info.image_size
    assert images.shape == (len(labels[:2]), size, size, 3)
    assert all(math.isfinite(v) for v in (generator.info.epochs, generator.info.ema_decay))
