"""`make calibrate` refuses bad lists naming the flag; the reference server bad delays."""

from __future__ import annotations

import pytest

from harness.calibrate import main
from harness.reference_server import Behaviour


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--streams", "1,x"], "argument --streams: '1,x' is not a comma list of int values"),
        (["--rates", "0"], "argument --rates: '0': give one or more values, each > 0"),
        (["--throughput-streams", ""], "argument --throughput-streams: '': give one or more"),
    ],
)
def test_a_bad_list_is_refused_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


def test_the_reference_server_refuses_negative_delays_with_their_values() -> None:
    with pytest.raises(ValueError, match=r"ttft_ms=-1, itl_ms=5 are not valid; each must be >= 0"):
        Behaviour(ttft_ms=-1, itl_ms=5)
