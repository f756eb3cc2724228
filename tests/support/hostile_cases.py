"""The hostile cases, re-run as a user meets them: `make bench` against a server with one
misbehaviour each, bad settings, signals, a full disk and many streams, each case's exit
status and what the console said of it, as a markdown table.

    .venv/bin/python -m tests.support.hostile_cases > /tmp/cases.md    # about 4 minutes

Every server is the reference server (or nothing) on 127.0.0.1; each case is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.reference_server import running_process
from tests.support.runs import REPO

MAKE = ["make", "--no-print-directory", "bench", "ENGINE=openai", "MODEL=reference"]
QUICK = "print_table=false load.warmup_requests=0"


@dataclass
class Case:
    name: str
    server: dict[str, object] | None  # the reference server's options; None: no server
    variables: dict[str, str] = field(default_factory=dict)
    said: str = r"."  # the console lines worth showing (a regex)
    shell: str = ""  # a prefix run in bash before make (ulimit ...)
    action: Callable[[subprocess.Popen, int | None], None] | None = None  # while it runs


def interrupt(sig: signal.Signals) -> Callable[[subprocess.Popen, int | None], None]:
    def act(process: subprocess.Popen, _: int | None) -> None:
        time.sleep(4)
        os.killpg(process.pid, sig)  # as a terminal does: make and the harness

    return act


def kill_server(_: subprocess.Popen, server_pid: int | None) -> None:
    time.sleep(3)
    if server_pid is not None:
        subprocess.run(["kill", "-9", str(server_pid)], check=False)


FAULT = r"x HTTP|x [a-z_]+:|flag|usage_rejected|invalid_utf8|short_outputs|failed|said|named"
CASES = [
    Case(
        "usage counts of -5 and 10^12",
        {"fault": "bad_usage", "ttft_ms": 0, "itl_ms": 0},
        said=r"usage_rejected|flag",
    ),
    Case("HTTP 500 on every request", {"fault": "http_500"}, said=FAULT),
    Case("HTTP 429 on every request", {"fault": "http_429"}, said=FAULT),
    Case("HTTP 429 with Retry-After", {"fault": "retry_after"}, said=r"Retry-After"),
    Case("the stream is cut (connection reset)", {"fault": "cut_stream"}, said=FAULT),
    Case("a data line that is not JSON", {"fault": "malformed"}, said=FAULT),
    Case("no finish_reason, no [DONE]", {"fault": "no_done"}, said=FAULT),
    Case("no usage in the stream", {"fault": "no_usage"}, said=r"chunk|usage"),
    Case("an error event mid-stream", {"fault": "error_event"}, said=FAULT),
    Case(
        "a stream that stalls",
        {"fault": "stall"},
        {"ARGS": "load.idle_timeout_s=2"},
        said=r"idle|stall|x ",
    ),
    Case("stops early, ignoring ignore_eos", {"fault": "stop_early"}, said=r"short_outputs"),
    Case(
        "a 200 JSON answer to a stream request", {"fault": "not_streamed"}, said=r"stream|JSON|json"
    ),
    Case(
        "accepts, never answers",
        {"fault": "silent"},
        {"ARGS": "engine.startup_timeout_s=3"},
        said=r"never answered|accepts",
    ),
    Case("bytes that are not UTF-8", {"fault": "bad_utf8"}, said=r"invalid_utf8"),
    Case(
        "wants a key, engine.api_key_env unset",
        {"api_key_env": "HOSTILE_KEY"},
        {"ARGS": "engine.api_key_env=HOSTILE_UNSET"},
        said=r"api_key_env|key",
    ),
    Case("a closed port", None, {"URL": "http://127.0.0.1:9/v1"}, said=r"running|refused"),
    Case(
        "the server is killed mid-level",
        {"ttft_ms": 5, "itl_ms": 5},
        {"CONCURRENCY": "4", "REQUESTS": "100000"},
        said=r"went away|server_gone",
        action=kill_server,
    ),
    Case(
        "Ctrl-C mid-level",
        {"ttft_ms": 5, "itl_ms": 5},
        {"CONCURRENCY": "2", "REQUESTS": "100000"},
        said=r"Ctrl-C|SIGINT",
        action=interrupt(signal.SIGINT),
    ),
    Case(
        "SIGTERM mid-level",
        {"ttft_ms": 5, "itl_ms": 5},
        {"CONCURRENCY": "2", "REQUESTS": "100000"},
        said=r"SIGTERM",
        action=interrupt(signal.SIGTERM),
    ),
    Case(
        "10^7 requests bounded by 3 s",
        {"ttft_ms": 0, "itl_ms": 0},
        {"CONCURRENCY": "4", "REQUESTS": "10000000", "ARGS": "load.max_duration_s=3"},
        said=r"deadline|stopped|run directory",
    ),
    Case(
        "no request count, bounded by 2 s",
        {"ttft_ms": 0, "itl_ms": 0},
        {"REQUESTS": "", "ARGS": "load.max_duration_s=2"},
        said=r"no request count",
    ),
    Case(
        "REQUESTS=3 at 2 users",
        {"ttft_ms": 0, "itl_ms": 0},
        {"CONCURRENCY": "2", "REQUESTS": "3"},
        said=r"became",
    ),
    Case(
        "400 streams under a soft ulimit -n 256",
        {"ttft_ms": 0, "itl_ms": 0},
        {"CONCURRENCY": "400", "REQUESTS": "400"},
        said=r"run directory|limit",
        shell="ulimit -S -n 256 && ",
    ),
    Case(
        "1 then 400 streams under ulimit -n 256",
        {"ttft_ms": 0, "itl_ms": 0},
        {"CONCURRENCY": "1,400", "REQUESTS": "400"},
        said=r"ulimit|cannot carry",
        shell="ulimit -n 256 && ",
    ),
    Case(
        "2,000 streams",
        {"ttft_ms": 20, "itl_ms": 5, "output_tokens": 8},
        {"CONCURRENCY": "2000", "REQUESTS": "4000", "MAX_TOKENS": "8"},
        said=r"run directory|client_",
    ),
    Case(
        "a URL carrying user:password",
        None,
        {"URL": "http://user:hunter2@127.0.0.1:9/v1"},
        said=r"engine\.url|credentials",
    ),
    Case(
        "a URL carrying ?api_key=",
        None,
        {"URL": "http://127.0.0.1:9/v1?api_key=hunter2"},
        said=r"engine\.url|credentials",
    ),
    Case(
        "concurrency 0",
        None,
        {"URL": "http://127.0.0.1:9/v1", "CONCURRENCY": "0"},
        said=r"config error",
    ),
    Case(
        "an unknown load mode",
        None,
        {"URL": "http://127.0.0.1:9/v1", "ARGS": "load.mode=sideways"},
        said=r"load.mode",
    ),
    Case(
        "an unknown config key",
        None,
        {"URL": "http://127.0.0.1:9/v1", "ARGS": "load.nonsense=1"},
        said=r"nonsense",
    ),
    Case(
        "a 10 MB event",
        {"ttft_ms": 0, "itl_ms": 0, "output_tokens": 1_000_000, "tokens_per_event": 1_000_000},
        {"REQUESTS": "2", "MAX_TOKENS": "1000000"},
        said=r"run directory|x ",
    ),
    Case(
        "a results folder that cannot be written",
        {"ttft_ms": 0, "itl_ms": 0},
        {"RESULTS": "/proc/hostile"},
        said=r"cannot store results",
    ),
    Case(
        "four tokens in each event",
        {"ttft_ms": 0, "itl_ms": 0, "tokens_per_event": 4},
        {"MAX_TOKENS": "16"},
        said=r"multi_token_chunks|flag",
    ),
]


def run_case(case: Case, results: Path) -> tuple[int, str, float]:
    """Exit status, what the console said of the case, seconds."""

    def command(url: str) -> list[str]:
        variables = {"RESULTS": str(results), "URL": url, "CONCURRENCY": "2", "REQUESTS": "8",
                     **case.variables}  # fmt: skip
        variables["ARGS"] = f"{QUICK} {variables.get('ARGS', '')}".strip()
        line = " ".join(f"{k}='{v}'" for k, v in variables.items())
        return ["bash", "-c", f"{case.shell}exec {' '.join(MAKE)} {line}"]

    def launch(url: str, pid: int | None) -> tuple[int, str]:
        env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOSTILE_KEY": "k3y", "HOME": "/root"}
        process = subprocess.Popen(command(url), cwd=REPO, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env,
                                   start_new_session=True)  # fmt: skip
        if case.action is not None:
            case.action(process, pid)
        out, _ = process.communicate(timeout=300)
        # make exits 2 when its recipe fails; the harness's own status is in its last line
        harness = re.search(r"bench\] Error (\d+)", out)
        return int(harness[1]) if harness else process.returncode, out

    started = time.monotonic()
    if case.server is None:
        status, out = launch(case.variables.get("URL", "http://127.0.0.1:9/v1"), None)
    else:
        with running_process(**case.server) as (url, pid):
            status, out = launch(url, pid)
    return status, said_of(out, case.said), time.monotonic() - started


def said_of(out: str, pattern: str) -> str:
    """The console's lines matching `pattern`: log lines from their message on, progress
    bars (which share lines with the log on a merged console) left out."""
    lines = []
    for line in out.splitlines():
        logged = re.search(r"\]\[harness[^\]]*\]\[\w+\] - (.*)", line)
        text = (
            logged[1]
            if logged
            else re.sub(r"benchmark:.*?it/s\]|benchmark:.*?req/s[^\]]*\]", "", line)
        )
        echoed = text.lstrip().startswith(".venv/bin/python -m harness.bench")  # make's echo
        if text.strip() and not echoed and "benchmark:" not in text and re.search(pattern, text):
            lines.append(re.sub(r"\s+", " ", text.strip()))
    return " / ".join(dict.fromkeys(lines))[:400]


def main() -> int:
    os.environ["HOSTILE_KEY"] = "k3y"  # the key the key-wanting server holds
    exit_column = "exit (the harness's; -2: make stopped by SIGINT too)"
    print(f"| # | case | {exit_column} | what the console said | s |")
    print("| --- | --- | --- | --- | --- |")
    for number, case in enumerate(CASES, 1):
        results = Path(tempfile.mkdtemp(prefix="hostile-"))
        status, said, seconds = run_case(case, results)
        shutil.rmtree(results, ignore_errors=True)
        text = said.replace("|", "\\|") or "(nothing matched)"
        print(f"| {number} | {case.name} | {status} | {text} | {seconds:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
