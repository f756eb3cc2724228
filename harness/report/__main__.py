"""Regenerate every table and figure from the store, or compare machines; nothing is re-run.

python -m harness.report [--results results] [--experiment NAME] [--out DIR]
                         [--concurrency N]
python -m harness.report compare [--results results] [--experiment NAME]
                                 [--by machine|engine] [--baseline MACHINE_ID] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from harness.report.compare import CompareError, write_compare
from harness.report.frame import EmptyStoreError, SkippedRunWarning, load_store
from harness.report.html import write_compare_page, write_report

EXIT_NO_DATA = 2


def _parser(compare: bool) -> argparse.ArgumentParser:
    prog = "python -m harness.report" + (" compare" if compare else "")
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="the store root")
    parser.add_argument("--experiment", help="only this experiment (a folder of the store)")
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder (default: <results>[/<experiment>]/_report"
        + ("/compare)" if compare else ")"),
    )
    if compare:
        parser.add_argument(
            "--by",
            choices=("machine", "engine"),
            default="machine",
            help="what is set side by side",
        )
        parser.add_argument(
            "--baseline", help="machine id (or engine) the ratios divide by (default: first)"
        )
    else:
        parser.add_argument(
            "--concurrency",
            type=int,
            help="concurrency of the engine comparison (default: highest common)",
        )
    return parser


def _default_out(args: argparse.Namespace, compare: bool) -> Path:
    base = args.results / args.experiment if args.experiment else args.results
    return base / "_report" / "compare" if compare else base / "_report"


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2: no runs, nothing to compare)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    compare = bool(argv) and argv[0] == "compare"
    args = _parser(compare).parse_args(argv[1:] if compare else argv)
    out = args.out or _default_out(args, compare)
    with warnings.catch_warnings():
        warnings.simplefilter("always", SkippedRunWarning)
        warnings.showwarning = _show_warning
        try:
            store = load_store(args.results, args.experiment)
            if compare:
                view = write_compare(store.frame, out, args.baseline, args.by)
                write_compare_page(view, out)
                print(view.markdown())
            else:
                title = f"Benchmark report: {args.experiment or 'all experiments'}"
                write_report(store, out, args.concurrency, title)
                for name in ("throughput_by_concurrency", "engine_comparison"):
                    print((out / f"{name}.md").read_text())
        except (EmptyStoreError, CompareError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_NO_DATA
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
