"""Write a small seeded trace in Mooncake's JSONL layout, for tests and first runs:
`python -m harness.workload.trace_gen [--out PATH] [--requests N] [--rate R] [--seed S]`.

Requests arrive as a Poisson stream; about half open with one of a few shared prefixes
(one or two blocks each, the same hash ids), the rest of each prompt is blocks of its own.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

import orjson

from harness.workload.trace import BUNDLED_TRACE


def generate(
    requests: int, rate_per_s: float, seed: int, block_tokens: int = 64
) -> list[dict[str, object]]:
    rng = random.Random(seed)
    prefixes = [list(range(n * 10, n * 10 + rng.randint(1, 2))) for n in range(4)]
    next_id, now_ms, entries = 1000, 0.0, []
    for _ in range(requests):
        input_length = rng.randint(2 * block_tokens, 6 * block_tokens)
        hash_ids = list(rng.choice(prefixes)) if rng.random() < 0.5 else []
        while len(hash_ids) < math.ceil(input_length / block_tokens):
            hash_ids.append(next_id)
            next_id += 1
        entries.append(
            {
                "timestamp": round(now_ms),
                "input_length": input_length,
                "output_length": rng.randint(8, 48),
                "hash_ids": hash_ids,
            }
        )
        now_ms += rng.expovariate(rate_per_s) * 1000.0
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUNDLED_TRACE)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--rate", type=float, default=4.0, help="requests per second")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    entries = generate(args.requests, args.rate, args.seed, args.block_tokens)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(b"".join(orjson.dumps(entry) + b"\n" for entry in entries))
    print(f"{len(entries)} requests -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
