"""The conventions every stage shares: one-line errors, atomic writes, the progress display,
the run directory and image fitting."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
import pytest
from PIL import Image

from cgan.common.cli import first_line, run_command
from cgan.common.errors import CganError, ExportError, InferenceError, ScrapeError
from cgan.common.files import atomic_path, same_file, write_text_atomic
from cgan.common.images import centre_crop_resize, fit_to_resolution, make_grid, to_uint8
from cgan.common.progress import Progress
from cgan.common.run_dir import RunDir


def test_every_stage_error_is_a_cgan_error_with_one_line(capsys):
    def broken() -> int:
        raise InferenceError("bad model\nwith a second line of graph dump")

    assert run_command("cgan-infer", broken) == 2
    assert capsys.readouterr().err == "cgan-infer: error: bad model\n"
    for error in (ExportError, ScrapeError, InferenceError):
        assert issubclass(error, CganError)


def test_exit_codes_follow_the_error_and_ctrl_c(capsys):
    class Disagrees(ExportError):
        exit_code = 1

    def disagree() -> int:
        raise Disagrees("parity check failed")

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_command("cgan-export", disagree) == 1
    assert run_command("cgan-export", interrupted) == 130
    assert run_command("cgan-export", lambda: None) == 0
    assert capsys.readouterr().err.splitlines() == [
        "cgan-export: error: parity check failed",
        "cgan-export: interrupted",
    ]


def test_a_bug_is_not_turned_into_a_user_error():
    def bug() -> int:
        raise ZeroDivisionError("a real bug")

    with pytest.raises(ZeroDivisionError):
        run_command("cgan-train", bug)


def test_first_line_is_capped_and_never_empty():
    assert first_line(ValueError("x" * 500), limit=20) == "x" * 17 + "..."
    assert first_line(RuntimeError("")) == "RuntimeError"
    assert first_line("\n\n  second  \nthird") == "second"


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "progress.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.json"]
    umask = os.umask(0o022)
    try:
        write_text_atomic(target, "new")
    finally:
        os.umask(umask)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's private 0600


def test_atomic_write_names_a_missing_folder_and_replaces_a_link_not_its_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder") as error:
        write_text_atomic(tmp_path / "nowhere" / "x.json", "{}")
    assert error.value.filename == str(tmp_path / "nowhere")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    write_text_atomic(link, "new")
    assert victim.read_text() == "keep" and not link.is_symlink() and link.read_text() == "new"


def test_same_file_follows_links_and_is_false_for_missing_paths(tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")
    (tmp_path / "alias.onnx").symlink_to(model)
    assert same_file(tmp_path / "alias.onnx", model)
    assert same_file(tmp_path / "." / "model.onnx", model)
    assert not same_file(tmp_path / "other.json", model)
    (tmp_path / "other.json").write_bytes(b"x")
    assert not same_file(tmp_path / "other.json", model)


class _Log(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_progress_in_a_log_is_one_line_per_tenth_with_the_status():
    log = _Log()
    with Progress("cgan-scrape", 20, "images", stream=log) as shown:
        for count in range(20):
            shown.status({"cat": f"{count + 1}/20"})
            shown.advance()
    lines = log.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("cgan-scrape: 20/20 images, ")
    assert lines[-1].endswith(", cat 20/20")


def test_stages_are_logged_when_they_end_and_a_failed_one_is_not():
    log = _Log()
    with Progress("cgan-eval", 3, "stages", stream=log, log_every_tenth=False) as shown:
        shown.stage("reading")
        shown.advance()
        shown.stage("measuring")
        shown.advance()
    assert [line.split(" (")[0] for line in log.getvalue().splitlines()] == [
        "cgan-eval: reading",
        "cgan-eval: measuring",
    ]
    failed = _Log()
    with pytest.raises(CganError), Progress("cgan-export", None, "stages", stream=failed) as shown:
        shown.stage("restoring")
        raise CganError("checkpoint unreadable")
    assert failed.getvalue() == ""  # the error line is the only output


def test_disabled_progress_prints_nothing():
    log = _Log()
    with Progress("cgan-train", 10, "steps", enabled=False, stream=log) as shown:
        shown.stage("x")
        shown.advance(10)
        shown.line()
    assert log.getvalue() == ""


def test_run_dir_config_is_read_with_one_line_errors(tmp_path):
    run = RunDir(tmp_path / "run")
    with pytest.raises(CganError, match="is not a run directory"):
        run.read_config()
    run.root.mkdir()
    run.write_config_text('arch = "sngan"\n')
    assert run.is_run() and run.read_config() == {"arch": "sngan"}
    run.config.write_bytes(b"arch = \xff\n")
    with pytest.raises(CganError, match="cannot be read as UTF-8"):
        run.read_config()
    assert run.config_text() is None
    run.config.write_text("arch = [")
    with pytest.raises(CganError, match="is not valid TOML"):
        run.read_config()


def test_fixed_noise_survives_a_resume(tmp_path):
    run = RunDir(tmp_path)
    first = run.load_or_make_fixed_noise(4, 8, seed=1)
    again = run.load_or_make_fixed_noise(4, 8, seed=99)  # the seed of a resume is ignored
    np.testing.assert_array_equal(first, again)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    """A .npy header claiming `shape` of float32, with a few bytes of data after it."""
    buffer = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + bytes(64)


DAMAGED_NOISE = {
    "garbage": b"\x80\x04 not an array at all",
    "pickled objects": _npy(np.full((4, 8), None, dtype=object)),
    "a header claiming terabytes": _npy_header_only((10**11, 8)),
    "another shape": _npy(np.zeros((3, 8), np.float32)),
    "not finite": _npy(np.full((4, 8), np.nan, np.float32)),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_NOISE))
def test_damaged_fixed_noise_is_kept_aside_and_remade_with_one_line(tmp_path, case):
    """Never a traceback or a terabyte allocation, and never a silent change of the noise
    every sample grid of the run shares: the old file is kept and the change said."""
    run = RunDir(tmp_path)
    run.fixed_noise.write_bytes(DAMAGED_NOISE[case])
    said: list[str] = []
    noise = run.load_or_make_fixed_noise(4, 8, seed=1, warn=said.append)
    assert noise.shape == (4, 8) and noise.dtype == np.float32 and np.isfinite(noise).all()
    assert len(said) == 1 and "\n" not in said[0], said
    assert "is not this run's sample noise" in said[0] and "use new noise" in said[0]
    assert (tmp_path / "fixed_noise.damaged.npy").read_bytes() == DAMAGED_NOISE[case]
    again = run.load_or_make_fixed_noise(4, 8, seed=99, warn=said.append)
    np.testing.assert_array_equal(again, noise)  # the new noise is the run's from here on
    assert len(said) == 1


def test_a_worker_that_must_not_write_leaves_damaged_noise_to_the_chief(tmp_path):
    run = RunDir(tmp_path)
    run.fixed_noise.write_bytes(b"garbage")
    said: list[str] = []
    noise = run.load_or_make_fixed_noise(4, 8, seed=1, write=False, warn=said.append)
    assert said == [] and run.fixed_noise.read_bytes() == b"garbage"
    np.testing.assert_array_equal(
        noise, run.load_or_make_fixed_noise(4, 8, seed=1, warn=said.append)
    )


def test_images_are_fitted_without_stretching_and_round_trip():
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = 255  # a white centred square on black
    fitted = fit_to_resolution(wide, 10)
    assert fitted.shape == (10, 10, 3) and fitted.min() > 200  # only the centre square is kept
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent
    assert np.asarray(centre_crop_resize(rgba, 8)).min() == 255  # composited on white
    assert to_uint8(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]
    grid = make_grid(np.zeros((6, 4, 4, 3), np.uint8), rows=2, padding=1)
    assert grid.size == (3 * 5 + 1, 2 * 5 + 1)
