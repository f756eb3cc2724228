"""Reports derived from the store, never hand-edited: `python -m harness.report`.

frame (the store as one tidy DataFrame) -> tables (markdown, CSV) and figures (PNG, SVG)
-> html (one self-contained report.html); compare sets machines side by side; table is the
per-run table printed at the end of a bench run.
"""
