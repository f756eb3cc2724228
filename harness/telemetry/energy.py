"""The GPU energy of a level, where NVML reports it: the change of each device's energy
counter (nvmlDeviceGetTotalEnergyConsumption, mJ since the driver loaded) across the
level, or, where a device has no counter, its power samples integrated over time
(trapezoids). Either cumulative series is read at the level's first and last instant by
linear interpolation between the samples around them, so the figure covers the level
exactly, not the span of the samples inside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MJ_PER_J = 1000.0


def cumulative_j(
    times_s: Sequence[float], energy_mj: Sequence[float | None], power_w: Sequence[float | None]
) -> tuple[np.ndarray, str] | None:
    """A device's energy used up to each sample, J, and how it was measured: from the
    counter where every sample has one, else from power where every sample has that."""
    if len(times_s) < 2:
        return None
    if all(value is not None for value in energy_mj):
        counter = np.asarray(energy_mj, dtype=float) / MJ_PER_J
        return counter - counter[0], "nvml_energy_counter"
    if all(value is not None for value in power_w):
        power = np.asarray(power_w, dtype=float)
        steps = np.diff(np.asarray(times_s, dtype=float)) * (power[1:] + power[:-1]) / 2
        return np.concatenate(([0.0], np.cumsum(steps))), "power_integrated"
    return None


# a level whose energy is not known
NO_ENERGY: dict[str, Any] = {"energy_j": None, "energy_source": None, "mean_power_w": None}


def level_energy(
    snapshots: Sequence[Any], devices: Sequence[int], start_mono_s: float, end_mono_s: float
) -> dict[str, Any]:
    """energy_j (summed over `devices`) from start to end, its source and the mean power;
    None where a device's samples do not cover the level or it reports neither figure.
    `snapshots`: GpuSnapshot-like, with t_mono_s, energy_mj and power_w per device."""
    nothing = dict(NO_ENERGY)
    if end_mono_s <= start_mono_s or not devices:
        return nothing
    ordered = sorted(snapshots, key=lambda s: s.t_mono_s)
    if len(ordered) < 2 or ordered[0].t_mono_s > start_mono_s or ordered[-1].t_mono_s < end_mono_s:
        return nothing  # the samples must bracket the level
    times = [s.t_mono_s for s in ordered]
    total, sources = 0.0, set()
    for device in devices:
        series = cumulative_j(
            times,
            [s.energy_mj.get(device) for s in ordered],
            [s.power_w.get(device) for s in ordered],
        )
        if series is None:
            return nothing
        joules, source = series
        at_start, at_end = np.interp([start_mono_s, end_mono_s], times, joules)
        total += float(at_end - at_start)
        sources.add(source)
    source = sources.pop() if len(sources) == 1 else "mixed"
    return {
        "energy_j": total,
        "energy_source": source,
        "mean_power_w": total / (end_mono_s - start_mono_s),
    }
