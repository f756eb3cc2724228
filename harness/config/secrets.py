"""Secrets never enter the config: config values are stored with every run (environment.json,
.hydra/) and engine command lines are logged, so a secret is refused without being echoed."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

from harness.config.checks import ConfigError

SECRET_ARGUMENTS = ("--api-key", "--hf-token", "--token")
SECRET_QUERY_NAME = re.compile(r"key|token|secret|passw|signature|sig$", re.IGNORECASE)
SECRET_ADVICE = (
    "a secret in the config would be stored with every run; "
    "to measure a server that wants a key, start it yourself and use engine=openai with "
    "engine.api_key_env=NAME (the name of an environment variable that holds the key)"
)


def redacted_url(url: str) -> str:
    """The URL with its user/password and secret-looking query values shown as ***."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"***@{host}" if parts.username or parts.password else host
    query = "&".join(
        f"{name}={'***' if SECRET_QUERY_NAME.search(name) else urllib.parse.quote(value)}"
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def refuse_secret_in_url(field_name: str, url: str | None, advice: str = SECRET_ADVICE) -> None:
    """Credentials in a URL (user:password@, ?api_key=...) are refused, never echoed."""
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    names = [name for name, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    if parts.username or parts.password or any(SECRET_QUERY_NAME.search(n) for n in names):
        raise ConfigError(
            f"{field_name}={redacted_url(url)!r} is not allowed: it carries credentials "
            f"(shown as ***); {advice}"
        )


def refuse_secret_arguments(field_name: str, arguments: Iterable[str]) -> None:
    """Key arguments (--api-key ...) are refused, naming the argument but not its value."""
    for argument in arguments:
        name = str(argument).split("=", 1)[0]
        if name in SECRET_ARGUMENTS:
            raise ConfigError(
                f"{field_name} holds {name} (its value not shown) and is not allowed: "
                f"{SECRET_ADVICE}; an engine the harness starts listens on 127.0.0.1 "
                "and needs no key"
            )
