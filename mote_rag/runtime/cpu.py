"""What the CPU offers inference: its model, its SIMD family, and VNNI, which decides the int8 weights' bit width.

The family (`simd_family`) names the kernels onnxruntime and torch pick, so it keys both the benchmarks' records and
the run-time backend choice (mote_rag.backend). With VNNI, onnxruntime's u8s8 kernels accumulate in int32 and 8-bit
weights are exact; without it (AVX2 only) they add pairs of u8 x s8 products in int16 and saturate, so weights must be
7-bit (`reduce_range`) there. No torch.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

VNNI_FLAGS = ("avx512_vnni", "avx_vnni")
SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16", "avx512_bf16", "avx512_fp16")


@functools.cache
def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo; empty where that file is absent (not Linux)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The x86 feature flags of this machine ("flags" in /proc/cpuinfo); empty where that file is absent."""
    return frozenset(cpuinfo().get("flags", "").split())


def cpu_model_name() -> str:
    return cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown CPU"


def simd_family(flags: frozenset[str] | None = None) -> str:
    """The widest kernel family the flags allow, as the benchmarks and the backend choice name it."""
    flags = cpu_flags() if flags is None else flags
    if "amx_int8" in flags:
        return "AMX-INT8 (+ AVX-512 VNNI)"
    if "avx512_vnni" in flags:
        return "VNNI (AVX-512 VNNI)"
    if "avx_vnni" in flags:
        return "VNNI (AVX-VNNI)"
    if "avx512f" in flags:
        return "AVX-512 without VNNI"
    if "avx2" in flags:
        return "AVX2 only"
    return "no AVX2"


def cpu_family() -> str:
    """This CPU as the backend choice keys it: model name and SIMD family."""
    return f"{cpu_model_name()} [{simd_family()}]"


def has_vnni() -> bool:
    return any(flag in cpu_flags() for flag in VNNI_FLAGS)
