"""One service of docker/compose.yaml: the commands that start, watch and stop it.

Every knob reaches the service through environment variables (`${VAR:-default}` in the
file), so a run never edits YAML. `interpolate` renders the file the way Compose does,
for checks that need no Docker engine.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.engines.base import EngineError

log = logging.getLogger(__name__)

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"
COMMAND_TIMEOUT_S = 120.0
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# image: ${VLLM_IMAGE:-vllm/vllm-openai:v0.26.0}${VLLM_DIGEST:-}
IMAGE_VARIABLES = re.compile(
    r"^\$\{(?P<image>[A-Z_]+_IMAGE):-[^}]+\}\$\{(?P<digest>[A-Z_]+_DIGEST):-\}$"
)
REPO_DIGESTS = "{{range .RepoDigests}}{{println .}}{{end}}"


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as parsed YAML (anchors resolved, variables not yet)."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise EngineError(f"{path} has no services")
    return data


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable syntax: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR:+a}, $$."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], env))
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return index
    raise EngineError(f"unclosed '${{' in {text!r}")


def _expand(body: str, env: Mapping[str, str]) -> str:
    match = _NAME.match(body)
    if not match:
        raise EngineError(f"invalid variable '${{{body}}}'")
    name, rest = match.group(), body[match.end() :]
    value = env.get(name)
    if not rest:
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = interpolate(rest[len(op) :], env)
            is_set = value is not None and (value != "" or not op.startswith(":"))
            if op.endswith("-"):
                return value if is_set and value is not None else arg
            if op.endswith("?"):
                if not is_set:
                    raise EngineError(f"{name} is required: {arg}")
                return value or ""
            return arg if is_set else ""
    raise EngineError(f"invalid variable '${{{body}}}'")


def render(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string of a parsed compose file (values only, as Compose does)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: render(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [render(item, env) for item in node]
    return node


def service_needs_gpu(definition: dict[str, Any]) -> bool:
    devices = (
        definition.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
    )
    return any(d.get("driver") == "nvidia" for d in devices or [])


def image_digest(image: str, running: str | None = None) -> str | None:
    """The repo digest of `image` (of `running`, the id of the image a container runs, when
    given), or the image id for a local build; None when Docker does not know it."""
    target = running or image
    code, output = _docker(["docker", "image", "inspect", "--format", REPO_DIGESTS, target], {})
    digests = output.split() if code == 0 else []
    if digests:
        repository = _repository(image)
        return next((d for d in digests if d.startswith(f"{repository}@")), digests[0])
    code, output = _docker(["docker", "image", "inspect", "--format", "{{.Id}}", target], {})
    return output.strip() if code == 0 and output.strip() else None


def _repository(image: str) -> str:
    """'ghcr.io/org/name:tag@sha256:...' -> 'ghcr.io/org/name'."""
    head, _, last = image.partition("@")[0].rpartition("/")
    name = last.partition(":")[0]
    return f"{head}/{name}" if head else name


def image_variables(definition: dict[str, Any]) -> tuple[str, str]:
    """The variables a service's image is given by: the image (a tag), and its digest."""
    match = IMAGE_VARIABLES.match(str(definition.get("image", "")))
    if not match:
        raise EngineError(
            f"image {definition.get('image')!r} is not ${{X_IMAGE:-...}}${{X_DIGEST:-}}"
        )
    return match["image"], match["digest"]


def _docker(args: list[str], env: Mapping[str, str], timeout_s: float = COMMAND_TIMEOUT_S):
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return 127, "docker not found"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(args[:6])} ... did not finish within {timeout_s:.0f} s"
    return done.returncode, done.stdout + done.stderr


class ComposeService:
    """`docker compose -f docker/compose.yaml -p <project> ... <service>`, with the run's env."""

    def __init__(
        self,
        service: str,
        project: str,
        env: Mapping[str, str],
        compose_file: Path = COMPOSE_FILE,
    ) -> None:
        services = load_compose(compose_file)["services"]
        if service not in services:
            raise EngineError(
                f"engine.service={service!r} is not a service of {compose_file}; "
                f"choose one of: {', '.join(services)}"
            )
        self.service = service
        self.project = project
        self.env = dict(env)
        self.compose_file = compose_file
        self.definition: dict[str, Any] = services[service]
        self.profiles: list[str] = list(self.definition.get("profiles", []))
        self._container_id: str | None = None

    def base_args(self) -> list[str]:
        args = ["docker", "compose", "-f", str(self.compose_file), "-p", self.project]
        for profile in self.profiles:
            args += ["--profile", profile]
        return args

    def up_args(self) -> list[str]:
        return [*self.base_args(), "up", "-d", "--no-build", self.service]

    def pull_args(self) -> list[str]:
        return [*self.base_args(), "pull", self.service]

    def stop_args(self, grace_s: float) -> list[str]:
        return [*self.base_args(), "stop", "-t", str(round(grace_s)), self.service]

    def kill_args(self) -> list[str]:
        return [*self.base_args(), "kill", self.service]

    def down_args(self, grace_s: float) -> list[str]:
        return [*self.base_args(), "down", "-t", str(round(grace_s)), self.service]

    def logs_args(self, tail: int | None = None) -> list[str]:
        tail_args = ["--tail", str(tail)] if tail else []
        return [*self.base_args(), "logs", "--no-color", *tail_args, self.service]

    def container_args(self) -> list[str]:
        return [*self.base_args(), "ps", "-a", "-q", self.service]

    @property
    def image(self) -> str:
        return interpolate(str(self.definition.get("image", "")), {**os.environ, **self.env})

    def run(self, args: list[str], timeout_s: float = COMMAND_TIMEOUT_S) -> tuple[int, str]:
        return _docker(args, self.env, timeout_s)

    def up(self, pull_timeout_s: float) -> None:
        """Pull the image when it is not here (progress on the terminal), then start."""
        if image_digest(self.image) is None:
            log.info("pulling %s (first use; progress below)", self.image)
            try:
                pulled = subprocess.run(
                    self.pull_args(), env={**os.environ, **self.env}, timeout=pull_timeout_s
                )
            except subprocess.TimeoutExpired:
                raise EngineError(
                    f"pulling {self.image} took longer than engine.pull_timeout_s="
                    f"{pull_timeout_s:.0f}"
                ) from None
            if pulled.returncode != 0:
                raise EngineError(
                    f"could not pull {self.image} (docker compose pull exited "
                    f"{pulled.returncode}); check the tag in engine.image and the network"
                )
        code, output = self.run(self.up_args())
        if code != 0:
            hint = ""
            if "could not select device driver" in output:
                hint = " (install the NVIDIA container toolkit and restart Docker)"
            raise EngineError(
                f"docker compose up {self.service} failed{hint}:\n{output.strip()[-2000:]}"
            )

    def container_id(self) -> str | None:
        """The service's container (looked up once: `up` does not replace it while it runs)."""
        if self._container_id is None:
            ids = self.containers()
            self._container_id = ids[0] if ids else None
        return self._container_id

    def containers(self) -> list[str]:
        """The ids of the service's containers, running or not."""
        code, output = self.run(self.container_args(), timeout_s=30)
        return output.split() if code == 0 else []

    def inspect(self, template: str) -> str | None:
        container = self.container_id()
        if container is None:
            return None
        code, output = self.run(["docker", "inspect", "--format", template, container], 30)
        return output.strip() if code == 0 else None

    def logs(self, tail: int | None = None) -> str:
        code, output = self.run(self.logs_args(tail), timeout_s=60)
        return output if code == 0 else f"(docker compose logs failed: {output.strip()})"

    def stop(self, grace_s: float) -> None:
        """Graceful stop (Compose sends SIGKILL after grace_s), kill if that fails, remove;
        then check that the container is gone (removed by force if not)."""
        code, output = self.run(self.stop_args(grace_s), timeout_s=grace_s + 60)
        if code != 0:
            log.warning("docker compose stop failed (%s); killing", output.strip()[-300:])
            self.run(self.kill_args(), timeout_s=60)
        code, output = self.run(self.down_args(grace_s), timeout_s=grace_s + 60)
        if code != 0:
            log.warning("docker compose down %s failed: %s", self.service, output.strip()[-300:])
        left = self.containers()
        if left:
            log.warning("the %s container is still there after down; removing it", self.service)
            self.run(["docker", "rm", "-f", *left], timeout_s=60)
            left = self.containers()
        if left:
            raise EngineError(
                f"the {self.service} container ({', '.join(left)}) could not be removed; "
                f"remove it with: docker rm -f {' '.join(left)}"
            )
