"""A free port taken by another program before the engine binds it costs a retry, not the run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.engines import create_engine, host, llamacpp_embedded
from harness.engines.base import EngineError, http_get
from tests.unit.test_engines_compose_file import compose_bench

pytestmark = pytest.mark.engine


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_the_embedded_engine_moves_to_another_port_when_its_port_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squatter = _listening_socket()
    taken = squatter.getsockname()[1]
    picks = iter([taken])  # the race, made certain: the first pick is already taken
    monkeypatch.setattr(
        llamacpp_embedded, "free_port", lambda h: next(picks, None) or host.free_port(h)
    )
    bench = compose_bench("engine.parallel=1")
    engine = create_engine(bench.engine, bench.model, tmp_path)
    assert engine.port == taken
    engine.provision()
    try:
        engine.start()
        engine.wait_ready()
        assert engine.port != taken
        assert http_get(f"{engine.root_url}/health")[0] == 200
    finally:
        engine.stop()
        squatter.close()
    log = engine.log_path.read_text()
    assert f"port: {taken}" in log and "couldn't bind" in log


def test_a_port_the_user_chose_is_not_silently_replaced(tmp_path: Path) -> None:
    squatter = _listening_socket()
    taken = squatter.getsockname()[1]
    bench = compose_bench("engine.parallel=1", f"engine.port={taken}")
    engine = create_engine(bench.engine, bench.model, tmp_path)
    try:
        with pytest.raises(EngineError, match=f"port {taken} on 127.0.0.1 is taken"):
            engine.preflight()  # before the model is provisioned
        engine.provision()
        squatter.close()
        squatter = _listening_socket_on(taken)  # taken again between preflight and start
        engine.start()
        with pytest.raises(EngineError, match="couldn't bind"):
            engine.wait_ready()
        assert engine.port == taken
    finally:
        engine.stop()
        squatter.close()


def _listening_socket_on(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock
