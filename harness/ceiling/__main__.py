"""`python -m harness.ceiling [--results DIR] [--remeasure] [--gpu]`: this machine's ceilings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.ceiling.machine import machine_ceilings
from harness.config import MachineConfig, machine_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.ceiling", description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("results"), help="store root")
    parser.add_argument("--label", help="machine.label (default: the host name)")
    parser.add_argument("--remeasure", action="store_true", help="ignore the cached figures")
    parser.add_argument("--gpu", action="store_true", help="the GPU's ceilings (NVML)")
    args = parser.parse_args(argv)
    machine = MachineConfig(label=args.label, remeasure=args.remeasure)
    ceilings = machine_ceilings(machine, args.gpu, args.results, machine_id(args.label))
    print(json.dumps(ceilings, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
