"""Rows that serve different weights: a comparison says so, naming what each side served,
since the difference between them is then not the engine's alone."""

from __future__ import annotations

import pandas as pd

WEIGHTS_DIFFER = "weights_differ"


def known(levels: pd.DataFrame) -> pd.DataFrame:
    """The rows whose run recorded what it served (older runs did not)."""
    return levels[levels["weights_id"].fillna("").astype(str) != ""]


def differ(levels: pd.DataFrame) -> bool:
    """Whether these rows served more than one set of weights."""
    return known(levels)["weights_id"].nunique() > 1


def served_by(levels: pd.DataFrame, side: str) -> dict[str, str]:
    """Each side's weights, "llamacpp-embedded: Q4_K_M gguf a5fd3b62230a"; a side that
    served several lists them all."""
    rows = known(levels)
    return {
        str(name): ", ".join(sorted(set(group["weights"].astype(str))))
        for name, group in rows.groupby(side, sort=True)
    }


def flag_text(levels: pd.DataFrame, row: pd.Series, side: str = "engine") -> str:
    """The flag a row carries when the table holds other weights: "weights_differ (this:
    <label>; also: <side>: <label>)"; "" when every row served the same."""
    if not differ(levels) or pd.isna(row.get("weights_id")) or not row.get("weights_id"):
        return ""
    others = known(levels)
    others = others[others["weights_id"] != row["weights_id"]]
    named = "; ".join(f"{name}: {label}" for name, label in served_by(others, side).items())
    return f"{WEIGHTS_DIFFER} (this: {row['weights']}; also in the table: {named})"


def sentence(levels: pd.DataFrame, side: str = "engine") -> str:
    """One sentence for a caption or a headline: what each side served, where they differ."""
    if not differ(levels):
        return ""
    named = "; ".join(f"{name}: {label}" for name, label in served_by(levels, side).items())
    return (
        f"The rows serve different weights ({named}): a difference between them is not the "
        "engine's alone."
    )
