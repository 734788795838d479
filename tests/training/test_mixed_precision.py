"""--mixed-precision: float16 compute trains, resumes and exports for both architectures."""

from __future__ import annotations

import pytest

pytest.importorskip("tf2onnx")

from cgan.export.exporter import export_run  # noqa: E402
from cgan.training.loop import train  # noqa: E402

from .helpers import tiny_config  # noqa: E402


@pytest.mark.parametrize("arch", ["sngan", "dcgan"])
def test_mixed_precision_run_trains_and_exports(tmp_path, arch):
    import keras

    config = tiny_config(arch=arch, mixed_precision=True, steps=2, checkpoint_every=2)
    result = train(config, tmp_path / "run", resume=False, progress=False)
    assert result.step == 2
    assert keras.mixed_precision.global_policy().name == "float32"  # not leaked
    exported = export_run(tmp_path / "run", tmp_path / "model.onnx", card=False)
    assert max(exported.parity.values()) <= 1e-4
