"""What this machine can run an engine with: GPU driver, Docker engine and Compose, binaries.

Each probe takes at most a few seconds and answers with a reason when something is missing,
so an engine that cannot start here fails at once with a message a user can act on.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from functools import cache
from pathlib import Path

PROBE_TIMEOUT_S = 10.0


def _run(args: list[str], timeout_s: float = PROBE_TIMEOUT_S) -> tuple[int, str]:
    """Exit code and combined output of a short command; 127 when it is not there."""
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return 127, f"{args[0]} not found"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(args)} did not answer within {timeout_s:.0f} s"
    return done.returncode, (done.stdout + done.stderr).strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@cache
def gpu_problem() -> str | None:
    """None when an NVIDIA driver answers, else what is wrong."""
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA driver (nvidia-smi not found)"
    code, output = _run(["nvidia-smi", "-L"])
    if code != 0 or "GPU" not in output:
        return f"no usable NVIDIA GPU (nvidia-smi -L failed: {_last_line(output)})"
    return None


@cache
def docker_problem() -> str | None:
    """None when a Docker engine and the Compose plugin answer, else what is wrong."""
    if shutil.which("docker") is None:
        return "no Docker (docker not found)"
    code, output = _run(["docker", "info", "--format", "{{.ServerVersion}}"])
    if code != 0:
        return (
            "Docker CLI present but no Docker engine running "
            f"(docker info failed: {_last_line(output)})"
        )
    code, output = _run(["docker", "compose", "version"])
    if code != 0:
        return (
            "Docker engine running but no Compose plugin "
            f"(docker compose version failed: {_last_line(output)})"
        )
    return None


def port_problem(host: str, port: int) -> str | None:
    """None when `port` can be bound on `host` (0 always can), else who holds it."""
    if port == 0:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return f"port {port} on {host} is taken ({exc.strerror}); another server listens there"
    return None


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# How llama-server ("couldn't bind HTTP server socket"), Ollama ("bind: address already
# in use") and vLLM ("[Errno 98] Address already in use") say that their port was taken.
PORT_TAKEN_MARKERS = ("couldn't bind", "address already in use")
# A free port is picked, then the engine binds it: another program can take it between.
PORT_ATTEMPTS = 3


def lost_the_port(log_path: Path, offset: int) -> bool:
    """True when the engine log, from `offset` on, says the engine could not bind its port."""
    if not log_path.exists():
        return False
    with log_path.open("rb") as log_file:
        log_file.seek(offset)
        text = log_file.read().decode(errors="replace").lower()
    return any(marker in text for marker in PORT_TAKEN_MARKERS)
