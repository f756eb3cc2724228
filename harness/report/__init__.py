"""Reports derived from the store, never hand-edited: `python -m harness.report`.

run_files (one run directory's rows) -> frame (the store as one tidy DataFrame; cells says
which runs measure the same thing and names each series) -> tables (markdown, CSV) and
figures (PNG, SVG) -> html (one self-contained report.html); compare sets machines side by
side; table is the per-run table printed at the end of a bench run.
"""
