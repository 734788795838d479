"""Which Keras dtype policy a run trains in, and the one line that says why.

`auto` is float32 everywhere for now. On a CPU without bfloat16 instructions,
`mixed_bfloat16` is emulated and ran the shipped recipe's step about 10x slower
(docs/results/performance.md). On a CPU that has them (avx512_bf16, amx_bf16) it becomes the
default only once `benchmarks/train_bench.py --precisions float32,mixed_bfloat16` has shown
it faster there and its quality curve at equal CPU time is not worse; until then it is
`--precision mixed_bfloat16`. GPUs keep float32 unless `--precision mixed_float16` is asked.
Weights, checkpoints and the exported model stay float32 in every case.
"""

from __future__ import annotations

from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags the kernel reports for the first CPU (empty elsewhere)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def choose_precision(requested: str, on_gpu: bool, flags: set[str]) -> tuple[str, str]:
    """(Keras policy, why) for `requested` on this machine."""
    if requested != "auto":
        return requested, "set by --precision or the run's config"
    if on_gpu:
        return "float32", "auto on a GPU (--precision mixed_float16 for float16 compute)"
    native = sorted(flags.intersection(BF16_FLAGS))
    if not native:
        return "float32", (
            "auto: this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16), and "
            "emulated mixed_bfloat16 is about 10x slower"
        )
    return "float32", (
        f"auto: this CPU has bfloat16 ({', '.join(native)}), but mixed_bfloat16 is not the "
        "default until it is measured faster and no worse here; --precision mixed_bfloat16 "
        "tries it"
    )
