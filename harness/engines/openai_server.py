"""A server the harness did not start: reached by URL, never started or stopped."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import urllib.parse
from typing import Any

from harness.engines.base import Engine, EngineError, http_get, poll_until, scrape_prometheus


class KeyRefused(EngineError):
    """The server answered, and refused the request for its key: no wait will change that."""


class ExternalOpenAI(Engine):
    kind = "openai"

    @property
    def base_url(self) -> str:
        url = (self.engine_cfg.url or "").rstrip("/")
        return url if url.endswith("/v1") else f"{url}/v1"

    @property
    def root_url(self) -> str:
        return self.base_url[: -len("/v1")]

    @property
    def served_model(self) -> str:
        return self.model_cfg.served_name or self.model_cfg.name

    @property
    def on_this_machine(self) -> bool:
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        if host in ("localhost", socket.gethostname(), socket.getfqdn()):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def api_key(self) -> str | None:
        name = self.engine_cfg.api_key_env
        return os.environ.get(name) if name else None

    def _headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def provision(self) -> dict[str, Any]:
        return {"name": self.model_cfg.name, "source": "served", "served_name": self.served_model}

    def start(self) -> None:
        """Nothing to start: the server is already running."""

    def _models(self) -> list[str]:
        status, body = http_get(f"{self.base_url}/models", timeout_s=5, headers=self._headers())
        if status in (401, 403):
            given = self.engine_cfg.api_key_env
            raise KeyRefused(
                f"the server at {self.base_url} refused the request (HTTP {status}): "
                + (
                    f"check the key in ${given}"
                    if given and self.api_key()
                    else f"engine.api_key_env={given} names an environment variable that is "
                    f"not set here: export {given}=<the key> and run again"
                    if given
                    else "it wants an API key; set engine.api_key_env to the name of the "
                    "environment variable that holds it"
                )
            )
        if status != 200:
            raise OSError(f"GET /v1/models answered {status}")
        try:
            return [m.get("id", "") for m in json.loads(body).get("data", [])]
        except (ValueError, AttributeError) as exc:
            raise OSError(f"GET /v1/models did not answer an OpenAI model list: {exc}") from exc

    def wait_ready(self) -> None:
        # ready once /v1/models answers a model list (_models raises OSError until then)
        try:
            poll_until(self._answers, self.engine_cfg.startup_timeout_s, "")
        except KeyRefused:
            raise  # it is running and said why: not a question of whether it runs
        except EngineError as exc:
            raise EngineError(f"{self._unready()}: {str(exc).lstrip(': ')}") from exc
        models = self._models()
        if models and self.served_model not in models:
            raise EngineError(
                f"model {self.served_model!r} is not served at {self.base_url}; "
                f"it serves: {', '.join(models)} (set MODEL= to one of them)"
            )

    def _answers(self) -> bool:
        try:
            self.silent = False
            return isinstance(self._models(), list)
        except TimeoutError:
            self.silent = True  # connected, then no answer in time
            raise

    def _unready(self) -> str:
        if getattr(self, "silent", False):
            return (
                f"the server at {self.base_url} accepts connections but never answered "
                "GET /v1/models (a hung server, or not an HTTP server on that port)"
            )
        return f"OpenAI-compatible server at {self.base_url} (is it running? check URL=)"

    def version(self) -> dict[str, Any]:
        return {"engine": "external OpenAI-compatible server", "url": self.base_url}

    def scrape(self) -> dict[str, float]:
        return scrape_prometheus(f"{self.root_url}/metrics", timeout_s=2, headers=self._headers())

    def stop(self) -> None:
        """Not ours to stop."""
