"""The CPU's ceilings, measured: a multi-threaded read of a large array, a timed BLAS product.

numpy's reductions and BLAS release the GIL, so one Python thread per core reads its share
of the array in parallel. Each test keeps its best repeat: the ceiling is what the machine
can reach, not what it reached on average while something else ran.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

READ_MIB = 512  # far beyond any CPU cache, so the reads come from DRAM
READ_REPEATS = 8
MATMUL_N = 1024
MATMUL_REPEATS = 6


@dataclass(frozen=True)
class CpuCeilings:
    """What the tests measured, and how."""

    memory_bandwidth_gbs: float
    memory_bandwidth_source: str
    compute_tflops: float
    compute_source: str
    read_repeats_gbs: tuple[float, ...]  # every repeat, to show the spread

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _threads() -> int:
    return max(1, os.cpu_count() or 1)


def read_bandwidth_gbs(
    size_mib: int = READ_MIB, repeats: int = READ_REPEATS, threads: int | None = None
) -> list[float]:
    """GB/s of each repeat of summing a `size_mib` float32 array, one thread per core,
    each over its own contiguous share."""
    threads = threads or _threads()
    data = np.ones(size_mib * 2**20 // 4, dtype=np.float32)
    shares = np.array_split(data, threads)
    rates = []
    for _ in range(repeats):
        workers = [threading.Thread(target=np.sum, args=(share,)) for share in shares]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        rates.append(data.nbytes / (time.perf_counter() - start) / 1e9)
    return rates


def matmul_tflops(n: int = MATMUL_N, repeats: int = MATMUL_REPEATS) -> float:
    """The best rate of an n x n float32 matrix product through numpy's BLAS (2 n^3 FLOP)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # the first call spins up BLAS's threads
    best_s = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best_s = min(best_s, time.perf_counter() - start)
    return 2 * n**3 / best_s / 1e12


def measure_cpu() -> CpuCeilings:
    """Both tests, a few seconds in all."""
    threads = _threads()
    rates = read_bandwidth_gbs(threads=threads)
    tflops = matmul_tflops()
    return CpuCeilings(
        memory_bandwidth_gbs=max(rates),
        memory_bandwidth_source=(
            f"measured: best of {len(rates)} multi-threaded reads of {READ_MIB} MiB "
            f"({threads} threads, numpy sum)"
        ),
        compute_tflops=tflops,
        compute_source=(
            f"measured: best of {MATMUL_REPEATS} float32 {MATMUL_N}x{MATMUL_N} matrix products "
            f"(numpy {np.__version__} BLAS)"
        ),
        read_repeats_gbs=tuple(round(rate, 2) for rate in rates),
    )
