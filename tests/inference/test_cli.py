"""cgan-infer in a subprocess, as a user runs it: outputs, JSON, errors, no TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

FORBIDDEN = ("tensorflow", "keras", "tf2onnx")


def infer(
    *args: str, env: dict | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cgan.inference.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cgan-infer: error:") and fragment in lines[0], lines[0]


def test_never_imports_tensorflow(exported_model, tmp_path):
    probe = (
        "import sys\n"
        "from inference.cli import main\n"
        f"rc = main(['--label', 'red-disc', '-o', {str(tmp_path / 'x.png')!r}, "
        f"'--model', {str(exported_model)!r}])\n"
        f"loaded = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(loaded)\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "x.png").is_file()


def test_one_image_quietly(exported_model, tmp_path):
    result = infer(
        "--label", "Red-Disc", "-o", str(tmp_path / "red.png"), "--model", str(exported_model)
    )
    assert result.returncode == 0
    assert result.stderr == ""  # no onnxruntime warnings on a machine without a GPU
    assert Image.open(tmp_path / "red.png").size == (32, 32)


def test_grid_json_and_determinism(exported_model, tmp_path):
    args = [
        "--label",
        "red-disc,2",
        "--seeds",
        "0-4,9",
        "--grid",
        "--scale",
        "2",
        "--model",
        str(exported_model),
        "--json",
    ]
    first = infer(*args, "-o", str(tmp_path / "a.png"))
    second = infer(*args, "-o", str(tmp_path / "b.png"))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    report = json.loads(first.stdout)
    assert report["images"] == 12 and report["provider"] == "CPUExecutionProvider"
    assert report["files"][0]["labels"] == ["red-disc", "blue-triangle"]
    assert report["files"][0]["seeds"] == [0, 1, 2, 3, 4, 9]
    assert set(report["timings_s"]) == {"load", "generate", "save"}
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    grid = Image.open(tmp_path / "a.png")
    assert grid.height == 2 * (64 + 2) + 2 and grid.width > 6 * 66


def test_one_file_per_image_in_each_format(exported_model, tmp_path):
    result = infer(
        "--label",
        "green-square",
        "--label",
        "0",
        "--n",
        "3",
        "--seed",
        "10",
        "--outdir",
        str(tmp_path),
        "--format",
        "webp",
        "--scale",
        "3",
        "--truncation",
        "0.7",
        "--model",
        str(exported_model),
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        f"{label}-seed{seed:04d}.webp"
        for label in ("green-square", "red-disc")
        for seed in (10, 11, 12)
    ]
    assert Image.open(tmp_path / names[0]).size == (96, 96)
    jpg = infer("--label", "0", "-o", str(tmp_path / "one.jpg"), "--model", str(exported_model))
    assert jpg.returncode == 0 and Image.open(tmp_path / "one.jpg").format == "JPEG"


@pytest.mark.slow
def test_list_labels_and_info(exported_model):
    listing = infer("--list-labels", "--model", str(exported_model))
    assert listing.stdout.splitlines() == ["0\tred-disc", "1\tgreen-square", "2\tblue-triangle"]
    info = json.loads(infer("--info", "--json", "--model", str(exported_model)).stdout)
    assert info["labels"] == ["red-disc", "green-square", "blue-triangle"]
    assert info["arch"] == "sngan" and info["provider"] == "CPUExecutionProvider"
    text = infer("--info", "--model", str(exported_model)).stdout
    assert "latent_dim" in text and "training_steps" in text


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--label", "blu-triangle"], "did you mean 'blue-triangle'"),
        (["--label", "zebra"], "valid labels: red-disc, green-square, blue-triangle"),
        (["--label", "-1"], "outside 0..2"),
        (["--label", "0", "--n", "0"], "--n must be at least 1"),
        (["--label", "0", "--n", "-4"], "--n must be at least 1"),
        (["--label", "0", "--n", "1000000"], "too many"),
        (["--label", "0", "--seeds", "a-b"], "bad --seeds"),
        (["--label", "0", "--seeds", "9-3"], "end is before"),
        (["--label", "0", "--n", "2", "-o", "x.png"], "add --grid or use --outdir"),
        (["--label", "0", "-o", "x.gif"], "use a .png, .jpg or .webp"),
        (["--label", "0", "--truncation", "-1"], "--truncation: must be positive"),
        ([], "nothing to do"),
    ],
)
def test_bad_arguments(exported_model, tmp_path, args, fragment):
    assert_one_line_error(infer(*args, "--model", str(exported_model), cwd=tmp_path), fragment)


@pytest.mark.slow
def test_bad_models_and_outputs(tmp_path, corrupt_model, model_without_metadata, exported_model):
    assert_one_line_error(
        infer("--label", "0", "--model", str(tmp_path / "nope.onnx")), "does not exist"
    )
    assert_one_line_error(
        infer("--label", "0", "--model", str(corrupt_model)), "cannot load the model"
    )
    assert_one_line_error(
        infer("--label", "0", "--model", str(model_without_metadata)), "no cgan metadata"
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(
        infer("--label", "0", "-o", str(blocker / "a.png"), "--model", str(exported_model)),
        "cannot write",
    )


def test_missing_default_model_is_explained(monkeypatch, capsys, tmp_path):
    from cgan.inference import default_model
    from cgan.inference.cli import main

    monkeypatch.delenv(default_model.ENV_VAR, raising=False)
    monkeypatch.setattr(default_model, "MODELS_DIR", tmp_path / "no-shipped-model")
    assert main(["--label", "dog", "-o", str(tmp_path / "dog.png")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cgan-infer: error: no default model")
    assert not (tmp_path / "dog.png").exists()


def test_all_labels_grid(exported_model, tmp_path):
    result = infer(
        "--label",
        "all",
        "--seeds",
        "0-1",
        "--grid",
        "-o",
        str(tmp_path / "g.png"),
        "--model",
        str(exported_model),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"][0]["labels"] == [
        "red-disc",
        "green-square",
        "blue-triangle",
    ]
