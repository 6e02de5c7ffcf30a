"""The machine's peak GFLOP/s: estimated from /proc/cpuinfo, and measured with a large matmul."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

# float32 lanes of the widest SIMD extension among the CPU's flags, widest first.
SIMD_FP32_LANES = (("avx512f", 16), ("avx2", 8), ("avx", 8), ("sse2", 4))
# Assumption: two vector units each doing a fused multiply-add (2 FLOP) a cycle, as on x86
# server cores since Haswell and Zen 1; without FMA, one multiply and one add. An upper bound:
# AMD Zen 4 runs a 512-bit instruction as two 256-bit halves (half the avx512f figure), as do
# Intel cores with a single AVX-512 unit.
FMA_UNITS = 2
# bfloat16: AVX-512 BF16's dot product does two bfloat16 products per float32 lane; AMX's tile
# unit 1024 FLOP a cycle; without either, bfloat16 is computed in float32 (no gain).
AVX512_BF16_GAIN = 2
AMX_BF16_FLOP_PER_CYCLE = 1024

MATMUL_SIDE = 2048  # 17 GFLOP a product: long enough to time, short on 2 cores
MATMUL_REPEATS = 5


@dataclass(frozen=True)
class CpuInfo:
    model: str
    cores: int  # physical cores (distinct physical id, core id); logical CPUs if not listed
    logical_cpus: int
    mhz: float  # the fastest core's current clock as /proc/cpuinfo reports it
    flags: frozenset[str]


def parse_cpuinfo(text: str) -> CpuInfo:
    """/proc/cpuinfo's text (x86 layout: one ``key : value`` block per logical CPU)."""
    blocks = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "processor" in fields:
            blocks.append(fields)
    cores = {(b["physical id"], b["core id"]) for b in blocks if "core id" in b}
    return CpuInfo(
        model=blocks[0].get("model name", "unknown"),
        cores=len(cores) or len(blocks),
        logical_cpus=len(blocks),
        mhz=max(float(b.get("cpu MHz", 0)) for b in blocks),
        flags=frozenset(blocks[0].get("flags", "").split()),
    )


def flop_per_cycle(flags: frozenset[str], dtype: str) -> int:
    """One core's FLOP a cycle in ``dtype`` ("float32" or "bfloat16") under FMA_UNITS'
    assumption."""
    lanes = next((n for flag, n in SIMD_FP32_LANES if flag in flags), 1)
    fp32 = lanes * 2 * (FMA_UNITS if "fma" in flags else 1)
    if dtype == "bfloat16" and "amx_bf16" in flags:
        return AMX_BF16_FLOP_PER_CYCLE
    if dtype == "bfloat16" and "avx512_bf16" in flags:
        return fp32 * AVX512_BF16_GAIN
    return fp32


def theoretical_gflops(cpu: CpuInfo, dtype: str, threads: int) -> float:
    """Peak GFLOP/s of ``threads`` cores (at most the machine's) at the reported clock."""
    return min(threads, cpu.cores) * cpu.mhz / 1e3 * flop_per_cycle(cpu.flags, dtype)


def matmul_gflops(
    dtype: torch.dtype, side: int = MATMUL_SIDE, repeats: int = MATMUL_REPEATS
) -> float:
    """GFLOP/s of a (side x side) @ (side x side) product with torch's current threads: the
    median of ``repeats`` after one untimed product."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(side, side, generator=generator).to(dtype)
    b = torch.rand(side, side, generator=generator).to(dtype)
    torch.mm(a, b)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - start)
    return 2 * side**3 / statistics.median(seconds) / 1e9
