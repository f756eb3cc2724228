"""Reports derived from the store, never hand-edited: `python -m harness.report`.

run_files (one run directory's rows) -> frame (the store as one tidy DataFrame; cells says
which runs measure the same thing and names each series) -> tables and comparison
(markdown, CSV; view writes their cells) and figures (PNG, SVG) -> html (one
self-contained report.html); client shows how far to trust each level; compare sets
machines side by side; table is the per-run table printed at the end of a bench run.
"""
