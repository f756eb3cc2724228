"""Sweeps through Hydra's cluster launchers (conf/hydra/launcher/): submitit's local executor
and a local Ray cluster started here, each standing for a node of another name, so the
machine id and GPU of every run must come from where the job ran; both write into one
store that `make report` renders as one. The SLURM job script is read off a fake sbatch.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.runs import REPO, read_summary
from tests.support.servers import reference_server

FAKE_NODE = REPO / "tests" / "support" / "fake_node"
SUBMITIT_NODE, RAY_NODE = "node-a", "node-b"
LADDERS = "load.concurrency=[1,2],[1,4]"
REFERENCE_LOAD = {"ENGINE": "openai", "MODEL": "ref-model", "REQUESTS": "8", "MAX_TOKENS": "8"}
EMBEDDED_LOAD = {"CONCURRENCY": "1", "REQUESTS": "2"}
RAY_FAKE_GPUS = 2


def _requires(module: str) -> pytest.MarkDecorator:
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"{module} is not installed (a launcher extra)")


submitit_only = _requires("hydra_plugins.hydra_submitit_launcher")
ray_only = _requires("hydra_plugins.hydra_ray_launcher")


def make_sweep(
    results: Path, env: dict[str, str] | None = None, timeout_s: float = 600, **variables: str
) -> subprocess.CompletedProcess:
    """`make sweep VAR=value ...` with RESULTS pointing at `results`."""
    args = ["make", "--no-print-directory", "sweep", f"RESULTS={results}"]
    args += [f"{key}={value}" for key, value in variables.items()]
    return subprocess.run(
        args,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def as_node(name: str) -> dict[str, str]:
    """The environment that makes a job (not the submitting process) report `name`."""
    return {"HARNESS_TEST_NODE": name, "PYTHONPATH": str(FAKE_NODE)}


def runs_under(folder: Path) -> list[Path]:
    return sorted(path.parent for path in folder.glob("*/summary.json"))


def ladders(run_dirs: list[Path]) -> list[list[int]]:
    return sorted([lv["concurrency"] for lv in read_summary(d)["levels"]] for d in run_dirs)


def placement(run_dir: Path) -> str:
    lines = [x for x in (run_dir / "bench.log").read_text().splitlines() if "placement:" in x]
    assert len(lines) == 1, lines
    return lines[0]


def assert_complete(run_dir: Path, machine: str) -> None:
    summary = read_summary(run_dir)
    assert summary["status"] == "complete", summary.get("error")
    assert all(level["status"] == "ok" for level in summary["levels"])
    for name in ("environment.json", "requests.jsonl", "telemetry.csv", "table.md"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["machine"]["machine_id"] == machine
    assert environment["machine"]["hostname"] == machine
    assert f"placement: host {machine}," in placement(run_dir)


@pytest.fixture(scope="module")
def reference_url() -> Iterator[str]:
    # a job lasts seconds, so that the two jobs of a Ray sweep overlap on its node
    with reference_server(ttft_ms=150, itl_ms=5, model="ref-model") as url:
        yield url


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One results store for every sweep of this module, as on a shared filesystem."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A one-node Ray cluster (2 CPUs, 2 GPUs as Ray counts them) named RAY_NODE; its
    address. Stopped, and every process it started checked gone, afterwards."""
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must be short
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        **as_node(RAY_NODE),
        "HARNESS_TEST_NODE_IS_RAY": "1",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # stop at once, no draining
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    ray = Path(sys.executable).with_name("ray")
    # every Ray process on loopback: this machine's other addresses are not for tests
    args = [str(ray), "start", "--head", "--block", f"--port={port}", "--num-cpus=2"]
    args += ["--node-ip-address=127.0.0.1"]
    args += [f"--num-gpus={RAY_FAKE_GPUS}", "--object-store-memory=80000000"]
    args += ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"]
    head = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _read_until(head, "This command will now block", deadline_s=120)
        family = psutil.Process(head.pid).children(recursive=True)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        if "family" in locals():
            _, alive = psutil.wait_procs(family, timeout=30)
            for proc in alive:
                proc.kill()
            assert not alive, f"Ray processes left running: {alive}"
        shutil.rmtree(temp_dir, ignore_errors=True)


def _read_until(proc: subprocess.Popen, marker: str, deadline_s: float) -> None:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"ray start exited ({proc.poll()}): {''.join(seen)[-3000:]}")
        seen.append(line)
        if marker in line:  # keep reading, so that a full pipe never blocks it
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return
    raise RuntimeError(f"ray start did not come up: {''.join(seen)[-3000:]}")


@pytest.fixture(scope="module")
def submitit_sweep(store: Path, reference_url: str) -> subprocess.CompletedProcess:
    result = make_sweep(
        store,
        env=as_node(SUBMITIT_NODE),
        LAUNCHER="submitit_local",
        URL=reference_url,
        **REFERENCE_LOAD,
        ARGS=f"{LADDERS} print_table=false",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def ray_sweep(store: Path, reference_url: str, ray_head: str) -> subprocess.CompletedProcess:
    result = make_sweep(
        store,
        LAUNCHER="ray",
        URL=reference_url,
        **REFERENCE_LOAD,
        ARGS=f"{LADDERS} print_table=false hydra.launcher.ray.init.address={ray_head}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@submitit_only
def test_submitit_local_sweep_leaves_a_complete_run_per_ladder_under_the_node(
    store: Path, submitit_sweep: subprocess.CompletedProcess
) -> None:
    run_dirs = runs_under(store / "default" / SUBMITIT_NODE)
    assert ladders(run_dirs) == [[1, 2], [1, 4]]
    for run_dir in run_dirs:
        assert_complete(run_dir, SUBMITIT_NODE)
    # the submitting host keeps the sweep's record and submitit's job logs, no run
    host = store / "default" / socket.gethostname()
    assert (host / "multirun.yaml").is_file() and (host / ".submitit").is_dir()
    assert runs_under(host) == []


@submitit_only
def test_submitit_local_runs_the_jobs_one_after_another(
    store: Path, submitit_sweep: subprocess.CompletedProcess
) -> None:
    spans = sorted(_span(d) for d in runs_under(store / "default" / SUBMITIT_NODE))
    assert spans[0][1] <= spans[1][0], spans


@submitit_only
def test_a_resumed_submitit_sweep_skips_the_finished_cells(
    store: Path, reference_url: str, submitit_sweep: subprocess.CompletedProcess
) -> None:
    before = runs_under(store / "default" / SUBMITIT_NODE)
    result = make_sweep(
        store,
        env=as_node(SUBMITIT_NODE),
        LAUNCHER="submitit_local",
        URL=reference_url,
        **REFERENCE_LOAD,
        ARGS=f"{LADDERS} print_table=false resume=true",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert runs_under(store / "default" / SUBMITIT_NODE) == before
    for run_dir in before:
        summary = read_summary(run_dir)
        assert summary.get("resumed_at") and summary["status"] == "complete"
        records = (run_dir / "requests.jsonl").read_text().splitlines()
        sent = sum(level["requests_sent"] for level in summary["levels"])
        assert len(records) == sent  # nothing was measured twice


@ray_only
def test_ray_sweep_runs_on_the_node_and_gives_each_job_its_own_gpu(
    store: Path, ray_sweep: subprocess.CompletedProcess
) -> None:
    run_dirs = runs_under(store / "default" / RAY_NODE)
    assert ladders(run_dirs) == [[1, 2], [1, 4]]
    devices = {}
    for run_dir in run_dirs:
        assert_complete(run_dir, RAY_NODE)
        match = re.search(r"CUDA_VISIBLE_DEVICES=(\S+)", placement(run_dir))
        assert match, placement(run_dir)
        devices[run_dir] = match.group(1)
        assert devices[run_dir] in {str(i) for i in range(RAY_FAKE_GPUS)}  # one GPU each
    (first, second) = run_dirs
    if _overlap(_span(first), _span(second)):  # at the same time on one node: distinct GPUs
        assert devices[first] != devices[second], devices


@submitit_only
@ray_only
def test_runs_of_both_launchers_render_in_one_report(
    store: Path,
    submitit_sweep: subprocess.CompletedProcess,
    ray_sweep: subprocess.CompletedProcess,
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    result = _report(["--results", str(store), "--out", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    with (out / "frame.csv").open() as handle:
        machines = {row["machine_id"] for row in csv.DictReader(handle)}
    assert {SUBMITIT_NODE, RAY_NODE} <= machines
    assert (out / "report.html").is_file()
    compared = _report(["compare", "--results", str(store), "--out", str(tmp_path / "cmp")])
    assert compared.returncode == 0, compared.stderr[-3000:]
    table = "".join(p.read_text() for p in (tmp_path / "cmp").glob("*.md"))
    assert SUBMITIT_NODE in table and RAY_NODE in table


@ray_only
def test_a_failed_ray_job_with_on_failure_stop_interrupts_the_running_one(
    tmp_path: Path, ray_head: str
) -> None:
    with reference_server(ttft_ms=100, itl_ms=50, model="ref-model") as slow_url:
        started = time.monotonic()
        result = make_sweep(
            tmp_path,
            LAUNCHER="ray",
            ENGINE="openai",
            MODEL="ref-model",
            CONCURRENCY="1",
            REQUESTS="100",  # about 80 s if it ran to the end
            MAX_TOKENS="16",
            ARGS=f"engine.url=http://127.0.0.1:9/v1,{slow_url} engine.startup_timeout_s=2 "
            f"on_failure=stop print_table=false hydra.launcher.ray.init.address={ray_head}",
        )
        elapsed_s = time.monotonic() - started
    assert result.returncode != 0
    assert "on_failure=stop" in result.stderr
    statuses = sorted(
        read_summary(d)["status"] for d in runs_under(tmp_path / "default" / RAY_NODE)
    )
    assert statuses == ["failed", "interrupted"]
    assert elapsed_s < 60, elapsed_s


@submitit_only
def test_a_failed_submitit_job_with_on_failure_stop_stops_the_next_one(tmp_path: Path) -> None:
    with reference_server(model="ref-model") as url:
        result = make_sweep(
            tmp_path,
            LAUNCHER="submitit_local",
            ENGINE="openai",
            MODEL="ref-model",
            REQUESTS="2",
            ARGS=f"engine.url=http://127.0.0.1:9/v1,{url} engine.startup_timeout_s=2 "
            "on_failure=stop print_table=false",
        )
    assert result.returncode != 0
    assert "on_failure=stop" in result.stderr
    summaries = [read_summary(d) for d in tmp_path.rglob("summary.json") for d in [d.parent]]
    assert [s["status"] for s in summaries] == ["failed"]  # the second job never started


@submitit_only
def test_ctrl_c_on_the_submitting_host_interrupts_the_running_job(tmp_path: Path) -> None:
    with reference_server(ttft_ms=100, itl_ms=50, model="ref-model") as url:
        args = ["make", "--no-print-directory", "sweep", f"RESULTS={tmp_path}"]
        args += ["LAUNCHER=submitit_local", "ENGINE=openai", "MODEL=ref-model"]
        args += ["CONCURRENCY=1", "REQUESTS=100", "MAX_TOKENS=16"]  # about 80 s a job
        args += [f"ARGS=engine.url={url},{url} print_table=false"]
        sweep = subprocess.Popen(
            args,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, as a terminal's foreground job
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            _wait_for(lambda: _measured_one_request(tmp_path), deadline_s=120)
            os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C sends the foreground group
            output, _ = sweep.communicate(timeout=120)
        finally:
            if sweep.poll() is None:
                os.killpg(sweep.pid, signal.SIGKILL)
                sweep.wait()
    assert sweep.returncode != 0
    assert "cancelling 1 unfinished job" in output
    summaries = [read_summary(p.parent) for p in tmp_path.rglob("summary.json")]
    assert [s["status"] for s in summaries] == ["interrupted"]  # the next job never started
    assert _processes_naming(tmp_path) == []  # no job or controller of the sweep is left


def _measured_one_request(results: Path) -> bool:
    return any(path.stat().st_size > 0 for path in results.rglob("requests.jsonl"))


def _processes_naming(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(folder) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _wait_for(condition: Callable[[], bool], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.engine
@submitit_only
@ray_only
def test_embedded_engine_sweeps_through_both_launchers(store: Path, ray_head: str) -> None:
    local = make_sweep(
        store,
        env=as_node(SUBMITIT_NODE),
        LAUNCHER="submitit_local",
        **EMBEDDED_LOAD,
        ARGS="workload.max_tokens=4,8 print_table=false",
    )
    assert local.returncode == 0, local.stderr[-4000:]
    # a CPU engine takes the node's cores: one job per node at a time, and no GPU
    remote = make_sweep(
        store,
        LAUNCHER="ray",
        **EMBEDDED_LOAD,
        ARGS="workload.max_tokens=4,8 print_table=false "
        f"hydra.launcher.ray.init.address={ray_head} "
        "hydra.launcher.ray.remote.num_cpus=2 hydra.launcher.ray.remote.num_gpus=0",
    )
    assert remote.returncode == 0, remote.stderr[-4000:]
    for node in (SUBMITIT_NODE, RAY_NODE):
        run_dirs = [
            d for d in runs_under(store / "default" / node) if d.name.startswith("llamacpp")
        ]
        assert len(run_dirs) == 2, run_dirs
        max_tokens = []
        for run_dir in run_dirs:
            assert_complete(run_dir, node)
            config = (run_dir / ".hydra" / "config.yaml").read_text()
            max_tokens.append(int(re.search(r"max_tokens: (\d+)", config).group(1)))
        assert sorted(max_tokens) == [4, 8]
        spans = sorted(_span(d) for d in run_dirs)
        assert spans[0][1] <= spans[1][0], spans  # one after another
    result = _report(["--results", str(store), "--out", str(store.parent / "report-all")])
    assert result.returncode == 0, result.stderr[-3000:]


@submitit_only
def test_slurm_job_script_asks_for_a_gpu_and_the_time_and_runs_the_harness(
    tmp_path: Path,
) -> None:
    fake_bin = _fake_slurm(tmp_path / "bin", tmp_path / "sbatch-scripts")
    result = make_sweep(
        tmp_path / "results",
        env={"PATH": f"{fake_bin}:{os.environ['PATH']}"},
        LAUNCHER="submitit_slurm",
        ENGINE="vllm",
        MODEL="llama3.1-8b",
        ARGS="engine.parallel=16,64 hydra.launcher.partition=gpu-a100 "
        "hydra.launcher.timeout_min=90",
        timeout_s=120,
    )
    # the fake scheduler refuses the array: the sweep ends, the script and the jobs stay
    assert result.returncode != 0
    assert "a test stands here" in result.stderr
    scripts = list((tmp_path / "sbatch-scripts").glob("*.sh"))
    assert len(scripts) == 1, result.stderr[-3000:]  # one array for the whole sweep
    script = scripts[0].read_text()
    for line in (
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --time=90",
        "#SBATCH --partition=gpu-a100",
        "#SBATCH --array=0-1%2",  # one array task per deployment, all at once
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --job-name=bench",
    ):
        assert line in script, script
    command = script.strip().splitlines()[-1]
    assert command.startswith("srun --unbuffered")
    assert f"{sys.executable} -u -m submitit.core._submit" in command
    # what each task runs: the harness's Hydra job with its deployment's overrides
    jobs = []
    for pickled in (tmp_path / "results").rglob("*.pkl"):
        with pickled.open("rb") as handle:
            submission = pickle.load(handle)
        jobs.append(submission.args[0])
        task = submission.function.task_function  # by value: `-m harness.bench` is __main__
        assert task.__name__ == "main" and task.__globals__["__file__"].endswith("harness/bench.py")
    assert sorted(x for overrides in jobs for x in overrides if "parallel" in x) == [
        "engine.parallel=16",
        "engine.parallel=64",
    ]
    assert all("engine=vllm" in overrides for overrides in jobs)


def _fake_slurm(bin_dir: Path, scripts: Path) -> Path:
    """sbatch keeps the script it is given and refuses it; srun is only looked for."""
    bin_dir.mkdir()
    scripts.mkdir()
    commands = {
        "sbatch": f'cp "$1" {scripts}/; echo "sbatch: error: a test stands here" >&2; exit 1',
        "srun": "exit 1",
    }
    for name, body in commands.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def _report(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.report", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _span(run_dir: Path) -> tuple[datetime, datetime]:
    summary: dict[str, Any] = read_summary(run_dir)
    return (
        datetime.fromisoformat(summary["started_at"]),
        datetime.fromisoformat(summary["finished_at"]),
    )


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]
