"""What each engine is given as weights and how what it served is read back and named."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engines import vllm_weights
from harness.engines.base import EngineError
from harness.engines.vllm import Vllm
from harness.engines.weights import file_type_name, finish, weights_id, weights_label
from tests.unit.test_engines_compose_file import engine_for

GGUF_INFO = {
    "name": "llama3.1-8b",
    "source": "gguf_file",
    "path": "/data/gguf/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
    "size_bytes": 4_920_734_016,
    "sha256": "ab" * 32,
}
LINE_010 = (
    "INFO 07-30 10:00:00 [core.py:71] Initializing a V1 LLM engine (v0.10.0) with config: "
    "model='hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', speculative_config=None, "
    "tokenizer='hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', skip_tokenizer_init=False, "
    "dtype=torch.float16, max_seq_len=4096, download_dir=None, load_format=LoadFormat.AUTO, "
    "tensor_parallel_size=1, quantization=awq_marlin, enforce_eager=False, "
    "kv_cache_dtype=auto, device_config=cuda"
)
LINE_GGUF = (
    "(EngineCore pid=7) INFO 04-19 10:09:51 [core.py:107] Initializing a V1 LLM engine "
    "(v0.19.2) with config: model='/models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf', "
    "speculative_config=None, dtype=torch.bfloat16, load_format=gguf, "
    "quantization=gguf, quantization_config=None, kv_cache_dtype=auto"
)


def vllm(tmp_path: Path, *overrides: str) -> Vllm:
    engine = engine_for(tmp_path, "engine=vllm", *overrides)
    assert isinstance(engine, Vllm)
    return engine


def test_vllm_serves_the_checkpoint_with_hf_weights(tmp_path: Path) -> None:
    engine = vllm(tmp_path, "model=llama3.1-8b")
    assert engine.native_command()[:3] == ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]
    assert engine.native_command()[3] == "--served-model-name"


def test_vllm_serves_the_same_gguf_with_the_checkpoints_tokenizer(tmp_path: Path) -> None:
    engine = vllm(tmp_path, "model=llama3.1-8b", "engine.vllm_weights=gguf")
    engine.gguf = GGUF_INFO
    assert engine.native_command()[:8] == [
        "vllm", "serve", GGUF_INFO["path"],
        "--tokenizer", "meta-llama/Llama-3.1-8B-Instruct",
        "--hf-config-path", "meta-llama/Llama-3.1-8B-Instruct",
        "--served-model-name",
    ]  # fmt: skip
    env = engine.compose_env()
    assert env["VLLM_MODEL"] == (
        "/models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf --tokenizer "
        "meta-llama/Llama-3.1-8B-Instruct --hf-config-path meta-llama/Llama-3.1-8B-Instruct"
    )
    assert env["VLLM_MODELS_DIR"] == "/data/gguf"


def test_vllm_serves_an_awq_repository_of_the_model(tmp_path: Path) -> None:
    repo = "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"
    engine = vllm(tmp_path, "model=llama3.1-8b", "engine.vllm_weights=awq",
                  f"model.vllm_quant_repo={repo}")  # fmt: skip
    assert engine.native_command()[:4] == ["vllm", "serve", repo, "--served-model-name"]
    assert engine.compose_env()["VLLM_MODEL"] == repo
    assert "VLLM_MODELS_DIR" not in engine.compose_env()


def test_the_engine_config_line_is_read_in_old_and_new_spellings() -> None:
    assert vllm_weights.loaded_config(LINE_010) == {
        "version": "0.10.0",
        "model": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
        "dtype": "float16",
        "quantization": "awq_marlin",
        "load_format": "auto",
    }
    loaded = vllm_weights.loaded_config(LINE_GGUF)
    assert (loaded["dtype"], loaded["quantization"], loaded["load_format"]) == (
        "bfloat16", "gguf", "gguf",
    )  # fmt: skip
    assert vllm_weights.loaded_config("INFO nothing of the kind") == {}


def test_each_choice_is_labelled_by_what_vllm_says_it_loaded() -> None:
    assert vllm_weights.quant_of("awq", vllm_weights.loaded_config(LINE_010), None) == "AWQ_MARLIN"
    assert (
        vllm_weights.quant_of("gguf", vllm_weights.loaded_config(LINE_GGUF), "Q4_K_M") == "Q4_K_M"
    )
    plain = LINE_GGUF.replace("quantization=gguf", "quantization=None")
    assert vllm_weights.quant_of("hf", vllm_weights.loaded_config(plain), None) == "BF16"
    assert vllm_weights.quant_of("hf", {}, None) is None  # no line: not read back


def test_a_method_other_than_the_one_asked_for_is_named() -> None:
    plain = vllm_weights.loaded_config(LINE_GGUF.replace("quantization=gguf", "quantization=None"))
    assert vllm_weights.method_mismatch("gguf", plain) == (
        "engine.vllm_weights=gguf asks for gguf, but vLLM loaded quantization=none"
    )
    assert vllm_weights.method_mismatch("awq", vllm_weights.loaded_config(LINE_010)) is None
    assert vllm_weights.method_mismatch("hf", plain) is None


def test_vllm_that_loaded_other_weights_stops_the_job(tmp_path: Path) -> None:
    engine = vllm(tmp_path, "model=llama3.1-8b", "engine.vllm_weights=awq",
                  "model.vllm_quant_repo=o/awq")  # fmt: skip
    engine.startup_log = lambda: LINE_GGUF.replace("quantization=gguf", "quantization=fp8")  # type: ignore[method-assign]
    with pytest.raises(EngineError, match="asks for awq, but vLLM loaded quantization=fp8"):
        engine.served_weights({"name": "llama3.1-8b", "source": "hf_repo"})


def test_awq_needs_its_repository(tmp_path: Path) -> None:
    from harness.config import ConfigError, EngineConfig

    with pytest.raises(EngineError, match="engine.vllm_weights='awq' needs model.vllm_quant_repo"):
        vllm(tmp_path, "engine.vllm_weights=awq").check_model()
    with pytest.raises(ConfigError, match="engine.vllm_weights='int4' is not valid"):
        EngineConfig(vllm_weights="int4").validate()


def test_file_types_are_spelt_as_llama_cpp_and_ollama_spell_them() -> None:
    assert [file_type_name(t) for t in (15, 7, 0, 1, 32)] == [
        "Q4_K_M",
        "Q8_0",
        "F32",
        "F16",
        "BF16",
    ]
    assert file_type_name(None) is None
    assert file_type_name(9999) == "file_type 9999"


def test_the_same_file_in_another_quantisation_is_other_weights() -> None:
    gguf = {"format": "gguf", "quant": "Q4_K_M", "sha256": "ab" * 32}
    dequantised = {**gguf, "format": "safetensors", "quant": "BF16", "dequantised_from": "Q4_K_M"}
    assert weights_id(gguf) != weights_id(dequantised)
    assert weights_label(gguf) == "Q4_K_M gguf abababababab"
    assert weights_label(dequantised) == "BF16 from gguf abababababab (dequantised)"
    library = {"quant": "Q8_0", "source": "Ollama library", "tag": "gemma3:270m"}
    assert weights_label(library) == "Q8_0 Ollama library gemma3:270m"


def test_a_config_quant_the_engine_does_not_serve_is_kept_beside_it() -> None:
    served = finish({"quant": "Q8_0", "sha256": "cd" * 32, "format": "gguf"}, "Q4_K_M")
    assert (served["quant"], served["config_quant"]) == ("Q8_0", "Q4_K_M")
    assert "config_quant" not in finish({"quant": "q4_k_m", "format": "gguf"}, "Q4_K_M")


@pytest.mark.parametrize(
    ("line", "mib"),
    [
        ("srv    load_model: prompt cache is enabled, size limit: 8192 MiB", 8192),
        ("srv    load_model: prompt cache is enabled, size limit: no limit", -1),
        ("srv    load_model: prompt cache is disabled - use `--cache-ram N` to enable it", 0),
        ("0.01.170 W srv          init: --cache-idle-slots requires --cache-ram, disabling", 0),
        ("xllamacpp_server: prompt cache limit 0 MiB", 0),
        ("srv    load_model: loading model", None),
    ],
)
def test_the_prompt_cache_is_read_from_what_the_server_logged(line: str, mib: int | None) -> None:
    from harness.engines.llamacpp_props import prompt_cache_mib

    assert prompt_cache_mib(f"earlier line\n{line}\nlater line") == mib
