"""Which runs measure the same thing (a cell), the newest measurement of each, and what to
call a series: the engine, then only the identity keys that differ between series."""

from __future__ import annotations

import pandas as pd

from harness.report.repeats import combine_repeats

# Engine knobs beside slots and context that decide speed and memory, and the engine kinds
# that apply each (elsewhere the column is empty, so it never tells two engines apart).
ENGINE_KNOBS = {
    "engine_kv_cache_type": ("llamacpp", "llamacpp_embedded", "ollama", "vllm"),
    "engine_flash_attn": ("llamacpp", "llamacpp_embedded", "ollama"),
    "engine_n_gpu_layers": ("llamacpp", "llamacpp_embedded"),
    "engine_cache_ram_mib": ("llamacpp", "llamacpp_embedded"),
    "engine_gpu_memory_utilization": ("vllm",),
}
# Workload knobs that only some workload kinds read (elsewhere the column is empty).
WORKLOAD_KNOBS = {
    "workload_prompt_tokens": ("synthetic",),
    "workload_prompt_tokens_stddev": ("synthetic",),
    "workload_output_tokens_stddev": ("synthetic",),
}

# The deployment and what it was sent: a run's identity, less where it ran and when.
DEPLOYMENT_KEYS = (
    "engine",
    "engine_kind",
    "engine_version",
    "engine_parallel",
    "engine_ctx_size",
    *ENGINE_KNOBS,
    "engine_extra_args",
    "model",
    "quant",
    "weights",
    "workload",
    "workload_kind",
    "workload_api",
    *WORKLOAD_KNOBS,
    "workload_shared_prefix_tokens",
    "workload_ignore_eos",
    "max_tokens",
)
# What makes two runs measurements of the same thing (a "cell"), machine aside: the same
# engine build with the same settings, sent the same shape of requests.
CELL_KEYS = ("experiment", *DEPLOYMENT_KEYS, "load_mode")
# One line in a figure, one row in a table: a cell on one machine.
SERIES_KEYS = ("machine_id", *CELL_KEYS)
# Keys that tables and labels leave to the engine or workload name where that name tells
# the rows apart already: each engine of one kind and at one version, each workload of one
# shape. (Every run's engine version is listed with the runs.)
IMPLIED_BY = {
    "quant": "weights",  # the weights' label leads with their quantisation
    "engine_kind": "engine",
    "engine_version": "engine",
    **{key: "workload" for key in CELL_KEYS if key.startswith("workload_")},
}

LABEL_PARTS = {
    "model": "{}",
    "quant": "{}",
    "weights": "weights={}",
    "engine_version": "version={}",
    "engine_parallel": "parallel={}",
    "engine_ctx_size": "ctx={}",
    "engine_kv_cache_type": "kv={}",
    "engine_flash_attn": "flash_attn={}",
    "engine_n_gpu_layers": "ngl={}",
    "engine_cache_ram_mib": "cache_ram={}",
    "engine_gpu_memory_utilization": "gpu_util={}",
    "engine_extra_args": "args={}",
    "workload": "workload={}",
    "workload_kind": "kind={}",
    "workload_api": "api={}",
    "workload_prompt_tokens": "prompt={}",
    "workload_prompt_tokens_stddev": "prompt_sd={}",
    "workload_output_tokens_stddev": "output_sd={}",
    "workload_shared_prefix_tokens": "prefix={}",
    "workload_ignore_eos": "ignore_eos={}",
    "max_tokens": "max_tokens={}",
    "load_mode": "{}",
    "experiment": "{}",
}
KEY_TITLES = {
    "machine_id": "machine",
    "experiment": "experiment",
    "engine": "engine",
    "engine_kind": "kind",
    "engine_version": "engine version",
    "engine_parallel": "parallel",
    "engine_ctx_size": "ctx",
    "engine_kv_cache_type": "KV cache",
    "engine_flash_attn": "flash attn",
    "engine_n_gpu_layers": "GPU layers",
    "engine_cache_ram_mib": "prompt cache MiB",
    "engine_gpu_memory_utilization": "GPU mem fraction",
    "engine_extra_args": "extra args",
    "model": "model",
    "quant": "quant",
    "weights": "weights served",
    "workload": "workload",
    "workload_kind": "workload kind",
    "workload_api": "API",
    "workload_prompt_tokens": "prompt tokens",
    "workload_prompt_tokens_stddev": "prompt tokens sd",
    "workload_output_tokens_stddev": "output tokens sd",
    "workload_shared_prefix_tokens": "shared prefix tokens",
    "workload_ignore_eos": "ignore EOS",
    "max_tokens": "max tokens",
    "load_mode": "load",
}


def latest_levels(levels: pd.DataFrame) -> pd.DataFrame:
    """Closed-loop levels, the newest run's measurement of each cell x machine x concurrency.

    A later run of the same cell (a re-run, or a resumed job) supersedes an earlier one level
    by level, so an interrupted run still contributes the levels nobody measured since.
    Repeats of a level in one run are one row: their mean, with its confidence interval.
    Open-loop (rate) levels are left out: their x is a rate, not a concurrency.
    """
    closed = combine_repeats(levels[levels["load_mode"] != "rate"])
    ordered = closed.sort_values(["started_at", "run_id"], kind="stable")
    newest = ordered.drop_duplicates([*SERIES_KEYS, "concurrency"], keep="last")
    return newest.sort_values([*SERIES_KEYS, "concurrency"], kind="stable").reset_index(drop=True)


def applicable(column: pd.Series) -> pd.Series:
    """The values of an identity column, without the "" of rows it does not apply to (a knob
    of another engine or workload kind)."""
    return column if pd.api.types.is_numeric_dtype(column) else column[column != ""]


def varies(column: pd.Series) -> bool:
    """True when rows differ in this identity column, where it applies to them."""
    return applicable(column).nunique(dropna=False) > 1


def implied(table: pd.DataFrame, key: str) -> bool:
    """True when another identity key (IMPLIED_BY) already tells this one's values apart:
    each of its values has one of this key's."""
    by = IMPLIED_BY.get(key)
    return by is not None and bool(table.groupby(by)[key].nunique().max() == 1)


def series_labels(levels: pd.DataFrame) -> pd.Series:
    """A short name per row: the engine, then only the keys that vary across `levels` and
    that the engine and workload names do not already tell apart."""
    varying = [key for key in LABEL_PARTS if varies(levels[key]) and not implied(levels, key)]
    many_machines = levels["machine_id"].nunique() > 1

    def label(row: pd.Series) -> str:
        parts = [LABEL_PARTS[key].format(row[key]) for key in varying if row[key] != ""]
        text = f"{row['engine']} ({', '.join(parts)})" if parts else str(row["engine"])
        return f"{text} @ {row['machine_id']}" if many_machines else text

    return levels.apply(label, axis=1).astype(str) if len(levels) else pd.Series(dtype=str)
