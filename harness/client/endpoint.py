"""What a request asks for and where it goes: the spec, its prepared bytes, the endpoint.

Two wire protocols: OpenAI-compatible streaming (`chat`, `completions`: server-sent events
under /v1) and Ollama's native streaming API (`ollama_chat`, `ollama_generate`: one JSON
object a line under /api), which honours `num_predict` and reports the engine's own
timings (eval_count, eval_duration, prompt_eval_duration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from yarl import URL

OPENAI_APIS = ("chat", "completions")
OLLAMA_APIS = ("ollama_chat", "ollama_generate")
APIS = OPENAI_APIS + OLLAMA_APIS


@dataclass
class RequestSpec:
    """What one request asks for."""

    prompt: str
    max_tokens: int


@dataclass(frozen=True)
class PreparedRequest:
    """A request's bytes, built once before a level so the event loop only sends them."""

    body: bytes
    max_tokens: int
    api: str = "chat"


@dataclass
class Endpoint:
    """Where and how to send requests."""

    base_url: str  # ends in /v1
    model: str
    api: str = "chat"  # one of APIS
    ignore_eos: bool = True
    temperature: float = 0.0
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise ValueError(f"api={self.api!r} is not one of {', '.join(APIS)}")

    @property
    def url(self) -> str:
        if self.api in OLLAMA_APIS:
            root = self.base_url.rstrip("/").removesuffix("/v1")
            return f"{root}/api/{'chat' if self.api == 'ollama_chat' else 'generate'}"
        path = "chat/completions" if self.api == "chat" else "completions"
        return f"{self.base_url.rstrip('/')}/{path}"

    def headers(self) -> dict[str, str]:
        accept = "application/x-ndjson" if self.api in OLLAMA_APIS else "text/event-stream"
        headers = {"Content-Type": "application/json", "Accept": accept}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def payload(self, spec: RequestSpec) -> dict[str, Any]:
        if self.api in OLLAMA_APIS:
            return self._ollama_payload(spec)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": spec.max_tokens,
            "temperature": self.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": spec.prompt}]
        else:
            body["prompt"] = spec.prompt
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    def _ollama_payload(self, spec: RequestSpec) -> dict[str, Any]:
        # Ollama has no ignore_eos: num_predict caps the output, and the short_outputs
        # flag says where the model stopped before it
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "options": {"num_predict": spec.max_tokens, "temperature": self.temperature},
        }
        if self.api == "ollama_chat":
            body["messages"] = [{"role": "user", "content": spec.prompt}]
        else:
            body["prompt"] = spec.prompt
        return body

    def prepare(self, spec: RequestSpec) -> PreparedRequest:
        return PreparedRequest(orjson.dumps(self.payload(spec)), spec.max_tokens, self.api)

    def target(self) -> tuple[URL, dict[str, str]]:
        """The parsed URL and the headers, shared by every request of a level."""
        return URL(self.url), self.headers()
