"""What a prediction says, and the rules every engine's prediction shares."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.fit.arch import FitError

HEADROOM = 0.10  # "fits" leaves 10% of the device free
DEVICES = ("gpu", "cpu")
# A CUDA context with cuBLAS handles takes about 300-500 MiB of device memory before anything
# is allocated (more on newer GPUs and drivers); 400 MiB is the middle.
CUDA_CONTEXT_MIB = 400.0


@dataclass
class Prediction:
    """Predicted memory of one deployment, in MiB, with the rule that produced it."""

    engine: str
    device: str
    ctx_per_slot: int
    parallel: int
    kv_type: str
    weights_mib: float
    kv_cache_mib: float
    compute_buffer_mib: float
    overhead_mib: float
    total_mib: float
    method: str
    # KV cells the verdict counts: the full-attention layers' cells over all slots (vLLM: one
    # max_model_len sequence, the least its shared pool must hold)
    kv_cells: int
    arch_source: str = ""
    weights_source: str = ""
    gpu_total_mib: float | None = None
    fits: bool | None = None
    kv_tokens_capacity: int | None = None  # vLLM: tokens of KV its pool holds
    quant: str | None = None  # weights type
    # vLLM: full-length (ctx_per_slot) sequences its pool runs at once, at most `parallel`
    full_length_sequences: int | None = None
    gpu_util: float | None = None  # vLLM: the share of the GPU it pre-allocates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fits_with_headroom(total_mib: float, gpu_total_mib: float | None) -> bool | None:
    """Whether `total_mib` leaves the headroom free on the device; None without a device size."""
    return None if gpu_total_mib is None else total_mib <= (1 - HEADROOM) * gpu_total_mib


def check_counts(ctx_per_slot: int, parallel: int) -> None:
    """Refuse a context or slot count below 1, naming the flag."""
    if ctx_per_slot < 1:
        raise FitError(f"--ctx={ctx_per_slot!r} is not valid; it must be an integer >= 1")
    if parallel < 1:
        raise FitError(f"--parallel={parallel!r} is not valid; it must be an integer >= 1")


def check_device(device: str) -> None:
    """Refuse a device other than gpu or cpu, naming the choices."""
    if device not in DEVICES:
        raise FitError(f"--device={device!r} is not valid; choose one of: {', '.join(DEVICES)}")
