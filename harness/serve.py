"""Start an engine and leave it running, or stop it again.

    python -m harness.serve up   [hydra overrides]   # e.g. engine=ollama model=llama3.1-8b
    python -m harness.serve down [hydra overrides]   # the same engine= as `up`

`up` provisions the model, starts the engine (compose service or native process), waits
until it answers and prints its URL; what it started is kept in .engines/<engine>/state.json
(with the engine's log beside it), which `down` reads to stop it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import psutil
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException

from harness.config import BenchConfig, ConfigError, register, slug, to_bench_config
from harness.engines import EngineError, create_engine, host
from harness.engines.compose import ComposeService
from harness.engines.process import find_family, stop_family
from harness.engines.served import ServedEngine

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
STATE_ROOT = Path(os.environ.get("BENCH_ENGINES_DIR", ".engines"))
USAGE = "usage: python -m harness.serve up|down [hydra overrides]"
log = logging.getLogger("harness.serve")


def load_config(overrides: list[str]) -> BenchConfig:
    """The job's config, composed exactly as `python -m harness.bench` composes it."""
    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return to_bench_config(cfg)


def state_dir(bench: BenchConfig) -> Path:
    return STATE_ROOT / slug(bench.engine.name)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def native_alive(state: dict[str, Any]) -> bool:
    """The recorded process is still the one we started (pids are reused)."""
    pid = state.get("pid")
    return bool(pid) and _same(pid, state.get("pid_create_time")) is not None


def up(bench: BenchConfig) -> int:
    if bench.engine.kind == "openai":
        print("engine=openai is a server the harness does not start; nothing to do")
        return 2
    folder = state_dir(bench)
    state_path = folder / "state.json"
    state = read_state(state_path)
    if state and state.get("pid") and native_alive(state):
        print(f"{bench.engine.name} already runs at {state['url']} (make down to stop it)")
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    engine = create_engine(bench.engine, bench.model, folder)
    try:
        engine.preflight()
        model = engine.provision()
        engine.start()
        engine.wait_ready()
    except (EngineError, KeyboardInterrupt) as exc:
        engine.stop()
        print(f"{bench.engine.name} did not start: {exc}", file=sys.stderr)
        return 1
    state = {
        "engine": bench.engine.name,
        "kind": bench.engine.kind,
        "launcher": getattr(engine, "launcher", None) or "embedded",
        "url": engine.base_url,
        "served_model": engine.served_model,
        "model": model,
        "log": str(engine.log_path),
        "version": engine.version(),
    }
    compose_service = getattr(engine, "compose", None)
    if compose_service is not None:
        state["compose"] = {
            "file": str(compose_service.compose_file),
            "project": compose_service.project,
            "service": compose_service.service,
        }
    elif engine.pids():
        pid = engine.pids()[0]
        state.update(pid=pid, pid_create_time=psutil.Process(pid).create_time())
        process = getattr(engine, "process", None)
        if process is not None:  # found again by `down` even where it left the group
            state["owner_mark"] = process.owner_mark
            state["family"] = [[p.pid, p.create_time()] for p in process.known]
    state_path.write_text(json.dumps(state, indent=2) + "\n")
    print(f"{bench.engine.name} is running at {engine.base_url} (model {engine.served_model})")
    print(f"measure it: make bench ENGINE=openai URL={engine.base_url} MODEL={engine.served_model}")
    print(f"stop it:    make down ENGINE={bench.engine.name}")
    return 0


def stop_native(state: dict[str, Any], grace_s: float) -> list[psutil.Process]:
    """Stop the recorded server and every process it started: its descendants and those
    carrying its owner mark (SIGTERM, SIGKILL after grace_s), until none runs. Returns
    those that survived."""
    pid, mark = state["pid"], state.get("owner_mark")
    recorded = state.get("family", [])
    known = [seen for member, created in recorded if (seen := _same(member, created))]

    def group() -> int | None:  # the leader still runs: its group id is still its own
        return pid if native_alive(state) else None

    def family() -> list[psutil.Process]:
        return find_family(pid if native_alive(state) else None, mark, known)

    return stop_family(family, grace_s, group)


def _same(pid: int, created: float | None) -> psutil.Process | None:
    """The process `pid` if it is still the one started at `created` (pids are reused)."""
    try:
        process = psutil.Process(pid)
        return process if process.create_time() == created else None
    except psutil.Error:
        return None


def down(bench: BenchConfig) -> int:
    folder = state_dir(bench)
    state_path = folder / "state.json"
    state = read_state(state_path) or {}
    grace_s = bench.engine.stop_grace_s
    engine = create_engine(bench.engine, bench.model, folder)
    # Without a state file (e.g. a bench run with engine.keep_running=true) a compose
    # service may still run: `down` of a service that is not there does no harm.
    unrecorded_compose = (
        not state
        and isinstance(engine, ServedEngine)
        and bench.engine.launcher in ("auto", "compose")
        and host.docker_problem() is None
    )
    if "compose" in state or unrecorded_compose:
        recorded = state.get("compose", {})
        service = recorded.get("service") or getattr(engine, "service", bench.engine.name)
        project = recorded.get("project") or bench.engine.compose_project
        compose_service = ComposeService(service, project, {})
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "engine.log").write_text(compose_service.logs())
        compose_service.stop(grace_s)
        print(f"stopped compose service {service} (project {project}); log in {folder}")
    elif state.get("pid") and native_alive(state):
        left = stop_native(state, grace_s)
        print(f"stopped {bench.engine.name} (pid {state['pid']}); its log: {state.get('log')}")
        if left:
            print(
                f"processes still running: {', '.join(str(p.pid) for p in left)}", file=sys.stderr
            )
            return 1
    else:
        print(f"{bench.engine.name} is not running (no live engine in {state_path})")
    state_path.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("up", "down"):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        bench = load_config(args[1:])
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except HydraException as exc:  # unknown group option or key, a value of the wrong type
        cause = f"\n{exc.__cause__}" if exc.__cause__ else ""
        print(f"config error: {exc}{cause}", file=sys.stderr)
        return 2
    try:
        return up(bench) if args[0] == "up" else down(bench)
    except EngineError as exc:
        print(f"{args[0]} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
