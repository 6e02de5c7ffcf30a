"""The peak estimate from a sample /proc/cpuinfo, and workers' peak memory from /proc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from bench.memory import WORKER_MARK, descendants, vm_hwm_bytes, worker_peaks
from bench.peak import flop_per_cycle, matmul_gflops, parse_cpuinfo, theoretical_gflops

# Two cores with two hyperthreads each, trimmed to the lines that matter.
CPUINFO = "".join(
    f"processor\t: {cpu}\nmodel name\t: Example Xeon\nphysical id\t: 0\ncore id\t\t: {cpu % 2}\n"
    f"cpu MHz\t\t: {2000.0 + cpu}\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512_bf16\n\n"
    for cpu in range(4)
)


def test_cpuinfo_counts_cores_not_hyperthreads():
    cpu = parse_cpuinfo(CPUINFO)
    assert (cpu.model, cpu.cores, cpu.logical_cpus, cpu.mhz) == ("Example Xeon", 2, 4, 2003.0)
    assert {"avx512f", "avx512_bf16", "fma"} <= cpu.flags


def test_flop_per_cycle_follows_the_widest_simd_and_bf16_support():
    assert flop_per_cycle(frozenset({"sse2", "avx", "avx2", "fma", "avx512f"}), "float32") == 64
    assert flop_per_cycle(frozenset({"sse2", "avx", "avx2", "fma"}), "float32") == 32
    assert flop_per_cycle(frozenset({"sse2", "avx"}), "float32") == 16
    # bfloat16 without hardware support runs at the float32 rate.
    assert flop_per_cycle(frozenset({"avx2", "fma"}), "bfloat16") == 32
    assert flop_per_cycle(frozenset({"avx512f", "fma", "avx512_bf16"}), "bfloat16") == 128
    assert flop_per_cycle(frozenset({"avx512f", "fma", "amx_bf16"}), "bfloat16") == 1024


def test_theoretical_peak_is_cores_times_clock_times_flop_per_cycle():
    cpu = parse_cpuinfo(CPUINFO)
    assert theoretical_gflops(cpu, "float32", threads=2) == pytest.approx(2 * 2.003 * 64)
    # More threads than cores share the same vector units.
    assert theoretical_gflops(cpu, "bfloat16", threads=4) == pytest.approx(2 * 2.003 * 128)
    assert theoretical_gflops(cpu, "float32", threads=1) == pytest.approx(2.003 * 64)


def test_matmul_peak_is_a_positive_rate():
    assert matmul_gflops(torch.float32, side=128, repeats=2) > 0


def test_descendants_walk_the_whole_tree_only_below_the_root():
    parents = {2: 1, 3: 2, 4: 3, 5: 2, 6: 1, 7: 99}
    assert descendants(parents, 2) == {3, 4, 5}
    assert descendants(parents, 1) == {2, 3, 4, 5, 6}
    assert descendants(parents, 4) == set()


def test_vm_hwm_is_read_in_bytes():
    status = "Name:\tpython\nVmPeak:\t 2000000 kB\nVmHWM:\t  1536 kB\nVmRSS:\t 1024 kB\n"
    assert vm_hwm_bytes(status) == 1536 * 1024
    with pytest.raises(ValueError, match="VmHWM"):
        vm_hwm_bytes("Name:\tkthreadd\n")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_worker_peaks_find_only_worker_processes_below_the_root():
    # Each child says when its interpreter is up: read before that, a process still being
    # exec'd holds under a MiB (a fresh-clone CI run once read 488 KiB).
    sleep = [sys.executable, "-c", "import sys, time; print(flush=True); time.sleep(60)"]
    with (
        subprocess.Popen([*sleep, WORKER_MARK], stdout=subprocess.PIPE) as worker,
        subprocess.Popen([*sleep, "not-a-worker"], stdout=subprocess.PIPE) as other,
    ):
        try:
            for child in (worker, other):
                assert child.stdout is not None and child.stdout.readline() == b"\n"
            peaks = worker_peaks(os.getpid())
            assert list(peaks) == [worker.pid]
            assert 1024**2 < peaks[worker.pid] < 1024**3  # a sleeping Python: MiBs, not GiBs
            assert worker_peaks(other.pid) == {}
        finally:
            worker.kill()
            other.kill()
