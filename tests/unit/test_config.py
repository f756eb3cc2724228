"""Config validation: a bad value stops the job before anything starts, and says why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from harness.config import BenchConfig, ConfigError, LoadConfig, register, to_bench_config

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
REPO = Path(__file__).resolve().parents[2]


def compose_bench(*overrides: str) -> BenchConfig:
    register()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return to_bench_config(cfg)


def test_the_default_config_is_valid() -> None:
    bench = compose_bench()
    assert bench.engine.kind == "llamacpp_embedded"
    assert bench.model.source == "package"
    assert bench.load.concurrency == [1, 2, 4, 8]
    assert len(bench.workload.prompts) == 5


def test_every_config_group_option_composes() -> None:
    for group in ("engine", "model", "workload", "load", "telemetry", "experiment"):
        for option in sorted((REPO / "conf" / group).glob("*.yaml")):
            overrides = [f"{group}={option.stem}"]
            if option.stem == "openai":
                overrides.append("engine.url=http://127.0.0.1:1/v1")
            if option.stem == "served":
                overrides.append("model.served_name=x")
            if option.stem == "trace":  # a trace goes with its replay, and only with it
                overrides.append("load=trace" if group == "workload" else "workload=trace")
            bench = compose_bench(*overrides)
            if group == "experiment":
                assert bench.experiment.name == option.stem
                continue
            # every plain value the option file sets is what the job gets
            section = getattr(bench, group)
            declared = yaml.safe_load(option.read_text()) or {}
            checked = 0
            for key, value in declared.items():
                if isinstance(value, str | int | float | bool) and hasattr(section, key):
                    assert getattr(section, key) == value, (option.name, key)
                    checked += 1
            assert checked, f"{option.name} sets no plain value"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("engine.kind=tgi", "engine.kind='tgi' is not valid; choose one of: llamacpp_embedded"),
        ("engine.parallel=0", "engine.parallel=0 is not valid; it must be > 0"),
        ("engine.port=70000", "engine.port=70000 is not valid; it must be in 0..65535"),
        ("load.concurrency=[1,0]", "load.concurrency contains 0; every level must be an integer"),
        ("load.concurrency=[]", "load.concurrency is empty"),
        ("load.mode=sideways", "load.mode='sideways' is not valid; choose one of: concurrency"),
        ("load.requests_per_level=-3", "load.requests_per_level=-3 is not valid"),
        ("workload.api=embeddings", "workload.api='embeddings' is not valid; choose one of: chat"),
        ("workload.max_tokens=0", "workload.max_tokens=0 is not valid; it must be > 0"),
        ("telemetry.gpu=maybe", "telemetry.gpu='maybe' is not valid; choose one of: auto, on, off"),
        ("model.sha256=abc", "model.sha256='abc' is not valid; it must be 64 lowercase hex"),
    ],
)
def test_bad_values_name_the_field_value_and_choices(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        compose_bench(override)
    assert message in str(excinfo.value)


def test_openai_engine_needs_a_url() -> None:
    with pytest.raises(ConfigError, match="engine.url is required"):
        compose_bench("engine=openai")


def test_a_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        compose_bench("engine=openai", "engine.url=ftp://x")


def test_a_served_model_needs_its_name() -> None:
    with pytest.raises(ConfigError, match="model.served_name is required"):
        compose_bench("model=served")


def test_wrong_types_are_refused_while_composing() -> None:
    with pytest.raises(ConfigCompositionException, match="engine.parallel=four") as excinfo:
        compose_bench("engine.parallel=four")
    assert isinstance(excinfo.value.__cause__, ValidationError)
    assert "could not be converted to Integer" in str(excinfo.value.__cause__)


def test_unknown_keys_are_refused_while_composing() -> None:
    with pytest.raises(Exception, match="paralel"):
        compose_bench("engine.paralel=4")


def test_levels_cover_every_worker_at_least_twice() -> None:
    load = LoadConfig(requests_per_level=16, min_requests_per_worker=2)
    assert load.requests_for_level(4) == 16
    assert load.requests_for_level(20) == 40


def run_bench(*overrides: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.bench", f"results={tmp_path}", *overrides],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_the_command_line_refuses_a_bad_value_with_exit_2_and_leaves_no_run(
    tmp_path: Path,
) -> None:
    result = run_bench("engine.parallel=-1", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "config error: engine.parallel=-1 is not valid; it must be > 0" in result.stderr
    assert not list(tmp_path.rglob("summary.json"))
    assert not list(tmp_path.rglob("engine.log"))


def test_the_command_line_lists_the_engines_for_an_unknown_one(tmp_path: Path) -> None:
    result = run_bench("engine=nonesuch", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Could not find 'engine/nonesuch'" in result.stderr
    assert "llamacpp-embedded" in result.stderr and "openai" in result.stderr


@pytest.mark.parametrize(
    "overrides", [("engine.extra_args=[--mlock]",), ("engine=llamacpp", "engine.launcher=embedded",
                  "engine.extra_args=[--mlock]")]
)  # fmt: skip
def test_the_embedded_engine_refuses_arguments_it_cannot_apply(overrides: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        compose_bench(*overrides)
    assert str(excinfo.value).startswith(
        "engine.extra_args=['--mlock'] is not supported by the embedded llama.cpp engine; "
        "allowed: []"
    )


def test_the_embedded_engine_takes_its_knobs_as_fields() -> None:
    bench = compose_bench("engine.kv_cache_type=q8_0", "engine.flash_attn=on")
    assert (bench.engine.kv_cache_type, bench.engine.flash_attn) == ("q8_0", "on")
    with pytest.raises(ConfigError) as excinfo:
        compose_bench("engine.kv_cache_type=q3_k")
    assert str(excinfo.value) == (
        "engine.kv_cache_type (engine.kind='llamacpp_embedded')='q3_k' is not valid; "
        "choose one of: f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1"
    )


def test_a_value_of_the_wrong_type_is_refused_with_exit_2_naming_the_field(
    tmp_path: Path,
) -> None:
    result = run_bench("engine.parallel=four", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Value 'four'" in result.stderr and "engine.parallel" in result.stderr
    assert not list(tmp_path.rglob("summary.json"))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("engine=nonesuch", "Could not find 'engine/nonesuch'"),
        ("engine.parallel=four", "full_key: engine.parallel"),
        ("engine.parallel=0", "engine.parallel=0 is not valid"),
    ],
)
def test_make_up_refuses_a_bad_config_without_a_traceback(override: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.serve", "up", override],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("config error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr


OPENAI = ("engine=openai", "model=served", "model.served_name=x")


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        ((*OPENAI, "engine.url=http://bob:s3cret@127.0.0.1:8000/v1"),
         "engine.url='http://***@127.0.0.1:8000/v1' is not allowed: it carries credentials"),
        ((*OPENAI, "engine.url='http://127.0.0.1:8000/v1?api_key=s3cret&x=1'"),
         "engine.url='http://127.0.0.1:8000/v1?api_key=***&x=1' is not allowed"),
        (("engine=llamacpp-cpu", "engine.extra_args=[--api-key,s3cret]"),
         "engine.extra_args holds --api-key (its value not shown) and is not allowed"),
        (("engine=vllm", "engine.extra_args=['--hf-token=s3cret']"),
         "engine.extra_args holds --hf-token (its value not shown) and is not allowed"),
        (("model.source=gguf_url", "model.url='https://hf.co/m.gguf?token=s3cret'"),
         "HF_TOKEN environment variable"),
    ],
)  # fmt: skip
def test_a_secret_in_the_config_is_refused_without_being_echoed(
    overrides: tuple[str, ...], shown: str
) -> None:
    """Config values are stored with every run, so a secret in one is refused before anything
    starts, and the refusal itself does not print it."""
    with pytest.raises(ConfigError) as excinfo:
        compose_bench(*overrides)
    assert shown in str(excinfo.value)
    assert "s3cret" not in str(excinfo.value)


def test_a_plain_url_and_a_key_by_name_are_fine() -> None:
    bench = compose_bench(*OPENAI, "engine.url=http://127.0.0.1:8000/v1", "engine.api_key_env=K")
    assert (bench.engine.url, bench.engine.api_key_env) == ("http://127.0.0.1:8000/v1", "K")


def test_a_hugging_face_download_carries_the_token_from_the_environment_only_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.engines.provision import _download_request

    monkeypatch.setenv("HF_TOKEN", "hf_s3cret")
    hf = _download_request("https://huggingface.co/org/repo/resolve/main/m.gguf")
    assert hf.get_header("Authorization") == "Bearer hf_s3cret"
    assert _download_request("https://example.org/m.gguf").get_header("Authorization") is None
    assert (
        _download_request("https://huggingface.co.evil.org/m.gguf").get_header("Authorization")
        is None
    )
    monkeypatch.delenv("HF_TOKEN")
    assert _download_request("https://hf.co/m.gguf").get_header("Authorization") is None
