from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.support.servers import reference_server


@pytest.fixture
def start_reference_server() -> Iterator[Callable[..., str]]:
    """Factory: start a reference server with the given behaviour; stopped after the test."""
    with ExitStack() as stack:
        yield lambda **options: stack.enter_context(reference_server(**options))
