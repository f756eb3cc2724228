"""A GPU's ceilings: memory bandwidth from NVML's clock and bus width, compute from a table.

Peaks are the vendors' datasheet figures for dense BF16 (FP16 where a card has no BF16)
tensor math with FP32 accumulate: half the "with sparsity" figure the datasheets lead with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuPeak:
    """One row of the table: a name pattern and the datasheet's figures."""

    pattern: str  # a regular expression over the normalised name (see normalised_name)
    label: str
    memory_bandwidth_gbs: float
    dense_tflops: float
    source: str


_HOPPER = "NVIDIA H100/H200 datasheets (BF16 tensor, dense = half the sparsity figure)"
_AMPERE_DC = "NVIDIA A100 / A10 datasheets (BF16 tensor, dense)"
_ADA = "NVIDIA Ada GPU architecture whitepaper (FP16/BF16 tensor, FP32 accumulate, dense)"
# More specific patterns first: the first match wins.
GPU_PEAKS: tuple[GpuPeak, ...] = (
    GpuPeak(r"\bB200\b", "B200", 8000.0, 2250.0, "NVIDIA HGX B200 datasheet (dense)"),
    GpuPeak(r"\bH200\b.*\bNVL\b", "H200 NVL", 4800.0, 835.5, _HOPPER),
    GpuPeak(r"\bH200\b", "H200 SXM", 4800.0, 989.5, _HOPPER),
    GpuPeak(r"\bH100\b.*\bNVL\b", "H100 NVL", 3900.0, 835.5, _HOPPER),
    GpuPeak(r"\bH100\b.*\bPCIE\b", "H100 PCIe", 2000.0, 756.5, _HOPPER),
    GpuPeak(r"\bH100\b", "H100 SXM", 3350.0, 989.5, _HOPPER),
    GpuPeak(r"\bA100\b.*\b80GB\b.*\bPCIE\b", "A100 80GB PCIe", 1935.0, 312.0, _AMPERE_DC),
    GpuPeak(r"\bA100\b.*\b80GB\b", "A100 80GB SXM", 2039.0, 312.0, _AMPERE_DC),
    GpuPeak(r"\bA100\b", "A100 40GB", 1555.0, 312.0, _AMPERE_DC),
    GpuPeak(r"\bA10\b", "A10", 600.0, 125.0, _AMPERE_DC),
    GpuPeak(r"\bL40S\b", "L40S", 864.0, 362.05, "NVIDIA L40S datasheet (BF16 tensor, dense)"),
    GpuPeak(r"\bL4\b", "L4", 300.0, 121.0, "NVIDIA L4 datasheet (BF16 tensor, dense)"),
    GpuPeak(r"\bRTX 6000 ADA\b", "RTX 6000 Ada", 960.0, 364.2, _ADA),
    GpuPeak(r"\bRTX 5090\b", "RTX 5090", 1792.0, 209.5,
            "NVIDIA Blackwell GeForce whitepaper (FP16 tensor, FP32 accumulate, dense)"),
    GpuPeak(r"\bRTX 4090\b", "RTX 4090", 1008.0, 165.2, _ADA),
    GpuPeak(r"\bRTX 3090\b", "RTX 3090", 936.0, 71.0,
            "NVIDIA Ampere GA102 whitepaper (FP16 tensor, FP32 accumulate, dense)"),
    GpuPeak(r"\bT4\b", "T4", 320.0, 65.0, "NVIDIA T4 datasheet (FP16 tensor; no BF16)"),
    GpuPeak(r"\bV100\b", "V100", 900.0, 125.0, "NVIDIA V100 datasheet (FP16 tensor; no BF16)"),
)  # fmt: skip


def normalised_name(name: str) -> str:
    """Upper case, vendor words dropped, dashes as spaces: "NVIDIA A100-SXM4-80GB" ->
    "A100 SXM4 80GB"."""
    text = re.sub(r"[-_]", " ", name.upper())
    text = re.sub(r"\b(NVIDIA|GEFORCE|TESLA)\b", " ", text)
    return " ".join(text.split())


def gpu_peak(name: str) -> GpuPeak | None:
    """The table's row for a GPU name (NVML's, or a user's "rtx 4090"); None if unknown."""
    text = normalised_name(name)
    return next((row for row in GPU_PEAKS if re.search(row.pattern, text)), None)


def known_gpus() -> list[str]:
    return [row.label for row in GPU_PEAKS]


def nvml_bandwidth_gbs(max_memory_clock_mhz: float, bus_width_bits: int) -> float:
    """Peak memory bandwidth: NVML's maximum memory clock x bus width, data moved on both
    clock edges (DDR): MHz x 1e6 x bits x 2 / 8 bits per byte, in GB/s (1e9 bytes)."""
    return max_memory_clock_mhz * 1e6 * bus_width_bits * 2 / 8 / 1e9


def gpu_ceilings(spec: dict[str, Any]) -> dict[str, Any]:
    """One GPU's ceilings from its NVML facts (Nvml.memory_specs): bandwidth from the clock
    and bus width (the table's where NVML gives none), dense BF16 compute from the table
    (None for a GPU it does not know)."""
    name = str(spec.get("name") or "")
    row = gpu_peak(name)
    clock_mhz, bus_bits = spec.get("max_memory_clock_mhz"), spec.get("memory_bus_width_bits")
    figures: dict[str, Any] = {"index": spec.get("index"), "name": name}
    if clock_mhz and bus_bits:
        figures["memory_bandwidth_gbs"] = nvml_bandwidth_gbs(clock_mhz, bus_bits)
        figures["memory_bandwidth_source"] = (
            f"NVML: max memory clock {clock_mhz} MHz x {bus_bits}-bit bus x 2 (DDR)"
        )
    elif row:
        figures["memory_bandwidth_gbs"] = row.memory_bandwidth_gbs
        figures["memory_bandwidth_source"] = f"{row.source} ({row.label}); NVML gave no clock"
    else:
        figures["memory_bandwidth_gbs"] = None
        figures["memory_bandwidth_source"] = "unknown: NVML gave no clock, GPU not in the table"
    figures["compute_tflops"] = row.dense_tflops if row else None
    figures["compute_source"] = f"{row.source} ({row.label})" if row else "GPU not in the table"
    return figures
