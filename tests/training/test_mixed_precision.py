"""--precision: mixed float16 and bfloat16 compute train and export float32 models, `auto`
says at start which policy it chose and why, and runs saved with the old flag still load."""

from __future__ import annotations

import pytest

pytest.importorskip("tf2onnx")

from cgan.export.exporter import export_run  # noqa: E402
from cgan.training.config import load_config, save_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402
from cgan.training.precision import choose_precision, cpu_flags  # noqa: E402

from .helpers import tiny_config  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch, precision",
    [("sngan", "mixed_float16"), ("dcgan", "mixed_float16"), ("sngan", "mixed_bfloat16")],
)
def test_mixed_precision_run_trains_and_exports(tmp_path, arch, precision):
    import keras

    config = tiny_config(arch=arch, precision=precision, steps=2, checkpoint_every=2)
    result = train(config, tmp_path / "run", resume=False, progress=False)
    assert result.step == 2
    assert keras.mixed_precision.global_policy().name == "float32"  # not leaked
    assert load_config(tmp_path / "run").precision == precision
    exported = export_run(tmp_path / "run", tmp_path / "model.onnx", card=False)
    assert max(exported.parity.values()) <= 1e-4


@pytest.mark.slow
def test_auto_is_resolved_once_and_said_at_start(tmp_path, capsys):
    config = tiny_config(steps=1, checkpoint_every=1)
    assert config.precision == "auto"
    train(config, tmp_path / "run", resume=False, progress=True)
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "precision" in line)
    assert line.startswith("cgan-train: precision float32 (auto"), line
    assert load_config(tmp_path / "run").precision == "float32"  # kept for the resume


def test_the_choice_follows_the_cpu_flags():
    policy, why = choose_precision("auto", on_gpu=False, flags={"avx2", "fma"})
    assert policy == "float32" and "no bfloat16 instructions" in why
    policy, why = choose_precision("auto", on_gpu=False, flags={"avx512f", "avx512_bf16"})
    assert policy == "float32" and "avx512_bf16" in why and "--precision mixed_bfloat16" in why
    assert choose_precision("auto", on_gpu=True, flags=set())[0] == "float32"
    assert choose_precision("mixed_bfloat16", on_gpu=False, flags=set())[0] == "mixed_bfloat16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "absent") == set()


@pytest.mark.parametrize("legacy, expected", [(True, "mixed_float16"), (False, "float32")])
def test_a_run_saved_with_mixed_precision_loads_as_its_precision(tmp_path, legacy, expected):
    config = tiny_config(labels=["a", "b"])
    save_config(config, tmp_path)
    path = tmp_path / "config.toml"
    old_line = f"mixed_precision = {str(legacy).lower()}"
    path.write_text(path.read_text().replace('precision = "auto"', old_line))
    assert load_config(tmp_path).precision == expected
