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
    """What one request asks for, and what the workload knows about it (copied into its
    record): the prompt tokens it built and how it counted them, its prefix group, its
    session and turn, its send time in a trace."""

    prompt: str
    max_tokens: int
    system: str | None = None  # a system message (chat) or the prompt's start (completions)
    prompt_tokens_expected: int | None = None
    prompt_tokens_expected_source: str | None = None
    prefix_group: int | None = None
    session: int | None = None  # multi-turn: turns of one session are sent one by one
    turn: int | None = None
    think_time_s: float = 0.0  # multi-turn: the user's pause before this turn
    send_at_s: float | None = None  # trace replay: seconds after the trace's start


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

    def messages(
        self, spec: RequestSpec, history: list[dict[str, str]] | None = None
    ) -> list[dict[str, str]]:
        """The chat messages of a request: its system message, the history, its prompt."""
        system = [{"role": "system", "content": spec.system}] if spec.system else []
        return [*system, *(history or ()), {"role": "user", "content": spec.prompt}]

    def completion_prompt(self, spec: RequestSpec) -> str:
        return f"{spec.system}\n\n{spec.prompt}" if spec.system else spec.prompt

    def payload(
        self, spec: RequestSpec, history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        if self.api in OLLAMA_APIS:
            return self._ollama_payload(spec, history)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": spec.max_tokens,
            "temperature": self.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.api == "chat":
            body["messages"] = self.messages(spec, history)
        else:
            body["prompt"] = self.completion_prompt(spec)
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    def _ollama_payload(
        self, spec: RequestSpec, history: list[dict[str, str]] | None
    ) -> dict[str, Any]:
        # Ollama has no ignore_eos: num_predict caps the output, and the short_outputs
        # flag says where the model stopped before it
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "options": {"num_predict": spec.max_tokens, "temperature": self.temperature},
        }
        if self.api == "ollama_chat":
            body["messages"] = self.messages(spec, history)
        else:
            body["prompt"] = self.completion_prompt(spec)
        return body

    def prepare(
        self, spec: RequestSpec, history: list[dict[str, str]] | None = None
    ) -> PreparedRequest:
        body = orjson.dumps(self.payload(spec, history))
        return PreparedRequest(body, spec.max_tokens, self.api)

    def target(self) -> tuple[URL, dict[str, str]]:
        """The parsed URL and the headers, shared by every request of a level."""
        return URL(self.url), self.headers()
