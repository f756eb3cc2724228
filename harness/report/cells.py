"""Which runs measure the same thing (a cell), the newest measurement of each, and what to
call a series: the engine, then only the identity keys that differ between series."""

from __future__ import annotations

import pandas as pd

# Engine knobs beside slots and context that decide speed and memory, and the engine kinds
# that apply each (elsewhere the column is empty, so it never tells two engines apart).
ENGINE_KNOBS = {
    "engine_kv_cache_type": ("llamacpp", "llamacpp_embedded", "ollama", "vllm"),
    "engine_flash_attn": ("llamacpp", "llamacpp_embedded", "ollama"),
    "engine_n_gpu_layers": ("llamacpp", "llamacpp_embedded"),
    "engine_gpu_memory_utilization": ("vllm",),
}

# What makes two runs measurements of the same thing (a "cell"), machine aside.
CELL_KEYS = (
    "experiment",
    "engine",
    "engine_kind",
    "engine_parallel",
    "engine_ctx_size",
    *ENGINE_KNOBS,
    "model",
    "quant",
    "workload",
    "max_tokens",
    "load_mode",
)
# One line in a figure, one row in a table: a cell on one machine.
SERIES_KEYS = ("machine_id", *CELL_KEYS)

LABEL_PARTS = {
    "model": "{}",
    "quant": "{}",
    "engine_parallel": "parallel={}",
    "engine_ctx_size": "ctx={}",
    "engine_kv_cache_type": "kv={}",
    "engine_flash_attn": "flash_attn={}",
    "engine_n_gpu_layers": "ngl={}",
    "engine_gpu_memory_utilization": "gpu_util={}",
    "workload": "workload={}",
    "max_tokens": "max_tokens={}",
    "load_mode": "{}",
    "experiment": "{}",
}


def latest_levels(levels: pd.DataFrame) -> pd.DataFrame:
    """Closed-loop levels, the newest run's measurement of each cell x machine x concurrency.

    A later run of the same cell (a re-run, or a resumed job) supersedes an earlier one level
    by level, so an interrupted run still contributes the levels nobody measured since.
    Open-loop (rate) levels are left out: their x is a rate, not a concurrency.
    """
    closed = levels[levels["load_mode"] != "rate"]
    ordered = closed.sort_values(["started_at", "run_id"], kind="stable")
    newest = ordered.drop_duplicates([*SERIES_KEYS, "concurrency"], keep="last")
    return newest.sort_values([*SERIES_KEYS, "concurrency"], kind="stable").reset_index(drop=True)


def applicable(column: pd.Series) -> pd.Series:
    """The values of an identity column, without the "" of rows it does not apply to (a knob
    of another engine kind)."""
    return column if pd.api.types.is_numeric_dtype(column) else column[column != ""]


def varies(column: pd.Series) -> bool:
    """True when rows differ in this identity column, where it applies to them."""
    return applicable(column).nunique(dropna=False) > 1


def series_labels(levels: pd.DataFrame) -> pd.Series:
    """A short name per row: the engine, then only the keys that vary across `levels`."""
    varying = [key for key in LABEL_PARTS if varies(levels[key])]
    many_machines = levels["machine_id"].nunique() > 1

    def label(row: pd.Series) -> str:
        parts = [LABEL_PARTS[key].format(row[key]) for key in varying if row[key] != ""]
        text = f"{row['engine']} ({', '.join(parts)})" if parts else str(row["engine"])
        return f"{text} @ {row['machine_id']}" if many_machines else text

    return levels.apply(label, axis=1).astype(str) if len(levels) else pd.Series(dtype=str)
