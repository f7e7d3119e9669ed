"""What the CPU offers int8 inference: VNNI (AVX-512 VNNI or AVX-VNNI) decides the int8 weights' bit width.

With VNNI, onnxruntime's u8s8 kernels accumulate in int32 and 8-bit weights are exact; without it (AVX2 only) they
add pairs of u8 x s8 products in int16 and saturate, so weights must be 7-bit (`reduce_range`) there. No torch.
"""

from __future__ import annotations

import functools
from pathlib import Path

VNNI_FLAGS = ("avx512_vnni", "avx_vnni")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The x86 feature flags of this machine ("flags" in /proc/cpuinfo); empty where that file is absent."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_vnni() -> bool:
    return any(flag in cpu_flags() for flag in VNNI_FLAGS)
