"""`make calibrate`: how accurate and how fast the client is on this machine.

Drives the reference server (exactly known TTFT and inter-token delays) at rising
concurrency and request rates, and prints: the client's TTFT and ITL error (p50, p99)
against what the server sent (its own stamps of when each request reached it and when it
wrote each event, on the shared monotonic clock) and TTFT against the injected delay, with the
client's own wait (due -> on the wire) and the server's timer lateness beside them; the
highest streamed token rate and request rate the client sustains against a zero-delay
server; and the client's CPU time per 1k tokens. Results are also written as JSON.

It measures at the settings `make bench` uses, read from the same Hydra config: the
default engine's connection policy (keep-alive), the load's ramp-up (none: workers move
in lock-step waves), the telemetry sampler running at its interval. Closed loops run
twice, in those lock-step waves and desynchronised (worker starts spread over one
request's lifetime), and both are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness.calibrate_defaults import BenchDefaults, bench_defaults, sampling
from harness.calibrate_truth import errors_vs_sent, server_share
from harness.client.monitor import summarize_client
from harness.client.openai_api import Endpoint, RequestSpec
from harness.client.processes import auto_processes, run_level_in_processes
from harness.client.scheduler import LevelPlan
from harness.config import machine_id
from harness.metrics import summarize_level
from harness.reference_server import running_process

TTFT_MS = 50.0
ITL_MS = 10.0
TOKENS = 32
# one request's lifetime at the injected timing: the span desynchronised starts cover
REQUEST_S = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000.0
# a reported p99 needs 100 samples
MIN_REQUESTS = 100


def _server_lateness(url: str) -> dict[str, Any]:
    root = url[: -len("/v1")]
    with urllib.request.urlopen(f"{root}/stats?reset=1", timeout=10) as response:
        return json.loads(response.read())["lateness_ms"]


def _level(
    url: str, plan: LevelPlan, tokens: int, processes: int | None
) -> tuple[dict[str, Any], dict[str, Any], float]:
    endpoint = Endpoint(base_url=url, model="reference")
    count = processes or auto_processes(plan)
    started = time.perf_counter()
    outcome = run_level_in_processes(
        endpoint, [RequestSpec("calibrate", tokens)], plan, lambda r: None, 0, count
    )
    wall_s = time.perf_counter() - started
    level = summarize_level(outcome.records, plan.concurrency, mode=plan.mode)
    level["server_share"] = server_share(outcome.records)
    level["vs_sent"] = errors_vs_sent(outcome.records)
    return level, summarize_client(outcome.client), wall_s


def _error(level: dict[str, Any], key: str, stat: str, truth: float) -> float | None:
    value = level[key][stat]
    return None if value is None else value - truth


def accuracy(
    streams: Iterable[int], processes: int | None, quick: bool, defaults: BenchDefaults
) -> list[dict[str, Any]]:
    """TTFT/ITL error at each number of concurrent streams (closed loop), in lock-step
    waves (the default: no ramp-up) and desynchronised."""
    rows = []
    with running_process(ttft_ms=TTFT_MS, itl_ms=ITL_MS) as (url, pid), sampling(defaults, pid):
        for n in streams:
            requests = max(MIN_REQUESTS, (2 if quick else 3) * n)
            for starts, ramp_up_s in (("waves", defaults.ramp_up_s), ("spread", REQUEST_S)):
                plan = LevelPlan(
                    n, requests, None, 120, 30, keep_alive=defaults.keep_alive, ramp_up_s=ramp_up_s
                )
                _server_lateness(url)
                level, client, _ = _level(url, plan, TOKENS, processes)
                late = _server_lateness(url)
                rows.append(
                    {
                        "streams": n,
                        "starts": starts,
                        "processes": client["processes"],
                        "ok": f"{level['requests_ok']}/{level['requests_sent']}",
                        **level["vs_sent"],
                        "ttft_vs_injected_p50_ms": _error(level, "ttft_ms", "p50", TTFT_MS),
                        "ttft_vs_injected_p99_ms": _error(level, "ttft_ms", "p99", TTFT_MS),
                        "itl_vs_injected_p99_ms": _error(level, "itl_ms", "p99", ITL_MS),
                        "client_wait_p50_ms": level["client_wait_ms"]["p50"],
                        "client_wait_p99_ms": level["client_wait_ms"]["p99"],
                        "arrival_lag_p50_ms": level["server_share"]["arrival_lag_p50_ms"],
                        "server_read_lag_p50_ms": level["server_share"]["read_lag_p50_ms"],
                        "delivery_lag_p50_ms": level["server_share"]["delivery_lag_p50_ms"],
                        "server_late_p50_ms": late["p50"],
                        "server_late_p99_ms": late["p99"],
                        "client_cpu_max": client["cpu_fraction_max"],
                        "loop_lag_p99_ms": client["loop_lag_ms"]["p99"],
                        "flags": ",".join(client["flags"] + level["flags"]) or "-",
                    }
                )
            print(f"  accuracy: {n} streams done", file=sys.stderr)
    return rows


def rates(
    rates_per_s: Iterable[float], processes: int | None, defaults: BenchDefaults
) -> list[dict[str, Any]]:
    """TTFT error, the client's wait and send lateness for open-loop Poisson arrivals."""
    rows = []
    with running_process(ttft_ms=TTFT_MS, itl_ms=ITL_MS) as (url, pid), sampling(defaults, pid):
        for rate in rates_per_s:
            requests = int(max(MIN_REQUESTS, rate * 3))
            plan = LevelPlan(
                0,
                requests,
                None,
                120,
                30,
                keep_alive=defaults.keep_alive,
                mode="rate",
                rate_per_s=rate,
                seed=1,
            )
            level, client, _ = _level(url, plan, 16, processes)
            rows.append(
                {
                    "rate_per_s": rate,
                    "processes": client["processes"],
                    "achieved_req_per_s": level["requests_per_s"],
                    "ttft_err_p50_ms": level["vs_sent"]["ttft_err_p50_ms"],
                    "ttft_err_p99_ms": level["vs_sent"]["ttft_err_p99_ms"],
                    "itl_err_p99_ms": level["vs_sent"]["itl_err_p99_ms"],
                    "ttft_vs_injected_p50_ms": _error(level, "ttft_ms", "p50", TTFT_MS),
                    "client_wait_p50_ms": level["client_wait_ms"]["p50"],
                    "client_wait_p99_ms": level["client_wait_ms"]["p99"],
                    "late_send_p99_ms": client["late_send_ms"]["p99"],
                    "flags": ",".join(client["flags"] + level["flags"]) or "-",
                }
            )
            print(f"  rate: {rate}/s done", file=sys.stderr)
    return rows


def throughput(
    streams: Iterable[int], process_counts: Iterable[int], defaults: BenchDefaults
) -> list[dict[str, Any]]:
    """Streamed tokens/s and requests/s against a server that never waits."""
    rows = []
    with running_process(ttft_ms=0, itl_ms=0) as (url, pid), sampling(defaults, pid):
        for processes in process_counts:
            for n in streams:
                for tokens, label in ((256, "tokens"), (1, "requests")):
                    requests = max(64, 4 * n) if tokens > 1 else max(400, 8 * n)
                    plan = LevelPlan(n, requests, None, 120, 30, keep_alive=defaults.keep_alive)
                    level, client, wall_s = _level(url, plan, tokens, processes)
                    total_tokens = level["output_tokens_total"]
                    rows.append(
                        {
                            "measure": label,
                            "streams": n,
                            "processes": processes,
                            "ok": f"{level['requests_ok']}/{level['requests_sent']}",
                            "tokens_per_s": level["aggregate_output_tokens_per_s"],
                            "requests_per_s": level["requests_per_s"],
                            "client_cpu_s_per_1k_tokens": (
                                client["cpu_s"] / total_tokens * 1000 if total_tokens else None
                            ),
                            "client_cpu_max": client["cpu_fraction_max"],
                        }
                    )
                print(f"  throughput: {n} streams x {processes} processes done", file=sys.stderr)
    return rows


def _print(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n### {title}\n")
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".2f"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--streams", type=_positive_list(int), default="1,32,128,256,1024", help="comma list"
    )
    parser.add_argument(
        "--rates", type=_positive_list(float), default="20,50,100,200", help="comma list, req/s"
    )
    parser.add_argument(
        "--throughput-streams", type=_positive_list(int), default="16,64,256", help="comma list"
    )
    parser.add_argument("--processes", type=int, default=0, help="0: automatic")
    parser.add_argument("--quick", action="store_true", help="fewer requests per level")
    parser.add_argument("--out", default="results/_calibration", help="JSON output folder")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides of the bench config whose settings to calibrate at "
        "(default: what `make bench` uses), e.g. engine=openai",
    )
    args = parser.parse_args(argv)
    processes = args.processes or None
    cores = os.cpu_count() or 1
    defaults = bench_defaults(args.overrides)
    print(f"calibrating the client on {cores} cores (injected TTFT {TTFT_MS} ms, ITL {ITL_MS} ms)")
    print(f"at the bench settings: {defaults.describe()}")
    report = {
        "machine_id": machine_id(None),
        "cores": cores,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "bench_settings": defaults.as_dict(),
        "accuracy": accuracy(args.streams, processes, args.quick, defaults),
        "rates": rates(args.rates, processes, defaults),
        "throughput": throughput(
            args.throughput_streams, sorted({1, min(2, cores), cores}), defaults
        ),
    }
    _print(
        f"TTFT / ITL error against what the server sent, stamp by stamp, and TTFT against "
        f"the injected {TTFT_MS:g} ms (closed loop, {TOKENS} tokens per request; waves: all "
        "workers start at once, as make bench does; spread: starts over one request's "
        "lifetime)",
        report["accuracy"],
    )
    _print("Open-loop Poisson arrivals (16 tokens per request)", report["rates"])
    _print("Client capacity against a zero-delay server", report["throughput"])
    out = Path(args.out) / report["machine_id"]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"calibration-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {path}")
    return 0


def _positive_list(kind: type) -> Any:
    """An argparse type: a comma list of positive numbers; argparse names the flag."""

    def parse(text: str) -> list[Any]:
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a comma list of {kind.__name__} values (e.g. 1,16,64)"
            ) from None
        if not values or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"{text!r}: give one or more values, each > 0")
        return values

    parse.__name__ = f"{kind.__name__} list"
    return parse


if __name__ == "__main__":
    sys.exit(main())
