"""vLLM's verdict: the shared KV pool must hold one max_model_len sequence; figures by hand.

Llama-3.1-8B: 32 layers x 8 KV heads x head dim 128 x (K and V) x 2 bytes = 128 KiB per
token, so a vLLM block of 16 tokens takes 2 MiB. On an 80 GiB GPU at 0.9, vLLM takes
73728 MiB; activations at 8192 batched tokens are 8192 x (3 x 14336 + 3 x 4096) x 2 bytes
= 864 MiB; overhead is 400 (CUDA context) + 512 (CUDA graphs) = 912 MiB.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.fit import (
    Arch,
    Prediction,
    arch_from_dict,
    kv_bytes_per_token,
    largest_fitting_ctx,
    load_model_yaml,
    predict,
    predict_for_config,
)
from harness.fit.vllm import vllm_activation_bytes

REPO = Path(__file__).resolve().parents[2]
GPU_80_MIB = 80 * 1024.0
WEIGHTS_MIB = 15360.0  # 15 GiB: a round figure, so the pool below is exact


def llama8b() -> Arch:
    return arch_from_dict(load_model_yaml("llama3.1-8b")["arch"], "llama3.1-8b")


def test_llama31_8b_takes_128_kib_of_bf16_kv_per_token() -> None:
    assert kv_bytes_per_token(llama8b(), "bf16") == 32 * 8 * 128 * 2 * 2 == 128 * 1024


def test_the_pool_is_what_the_share_leaves_and_its_capacity_is_whole_blocks() -> None:
    # 73728 - 15360 - 864 - 912 = 56592 MiB = 28296 blocks of 2 MiB = 452736 tokens.
    prediction = predict(llama8b(), "vllm", 4096, 256, WEIGHTS_MIB, "bf16", "gpu", GPU_80_MIB)
    assert prediction.kv_cache_mib == pytest.approx(56592.0)
    assert prediction.kv_tokens_capacity == 452736
    assert prediction.total_mib == pytest.approx(73728.0)


def test_max_num_seqs_times_max_model_len_need_not_fit_the_pool() -> None:
    # 256 x 4096 = 1048576 tokens > 452736, yet vLLM starts: it needs room for one sequence.
    prediction = predict(llama8b(), "vllm", 4096, 256, WEIGHTS_MIB, "bf16", "gpu", GPU_80_MIB)
    assert prediction.fits is True and prediction.kv_cells == 4096
    assert prediction.full_length_sequences == 110  # 452736 // 4096 = 110 (110.5)


def test_full_length_sequences_at_once_are_capped_at_max_num_seqs() -> None:
    prediction = predict(llama8b(), "vllm", 4096, 8, WEIGHTS_MIB, "bf16", "gpu", GPU_80_MIB)
    assert prediction.full_length_sequences == 8


def test_the_longest_context_runs_three_full_length_sequences_on_80_gib() -> None:
    prediction = predict(llama8b(), "vllm", 131072, 256, WEIGHTS_MIB, "bf16", "gpu", GPU_80_MIB)
    assert prediction.fits is True
    assert prediction.full_length_sequences == 3  # 3 x 131072 = 393216 <= 452736 < 4 x 131072


def test_it_does_not_fit_when_the_pool_cannot_hold_one_full_length_sequence() -> None:
    # 24 GiB: 22118.4 - 15360 - 216 (2048 batched tokens) - 912 = 5630.4 MiB -> 2815 blocks
    # = 45040 tokens.
    gpu_24_mib = 24 * 1024.0

    def at(ctx: int) -> Prediction:
        return predict(llama8b(), "vllm", ctx, 256, WEIGHTS_MIB, "bf16", "gpu", gpu_24_mib)

    assert at(65536).kv_tokens_capacity == 45040
    assert at(65536).fits is False and at(65536).full_length_sequences == 0
    assert at(32768).fits is True and at(32768).full_length_sequences == 1
    assert at(45040).fits is True and at(45041).fits is False
    assert largest_fitting_ctx(lambda ctx: bool(at(ctx).fits), 131072) == 45040


def test_a_share_above_the_other_engines_headroom_fits_when_its_pool_holds_a_sequence() -> None:
    prediction = predict(
        llama8b(), "vllm", 4096, 1, WEIGHTS_MIB, "bf16", "gpu", GPU_80_MIB, gpu_util=0.95
    )
    assert prediction.kv_tokens_capacity > 4096 and prediction.fits is True


def test_without_a_gpu_size_it_needs_kv_for_one_sequence_only() -> None:
    prediction = predict(llama8b(), "vllm", 4096, 256, WEIGHTS_MIB, "bf16")
    assert prediction.kv_cache_mib == 512.0  # 4096 tokens x 128 KiB
    assert prediction.fits is None and prediction.kv_tokens_capacity is None


def test_the_harness_vllm_defaults_fit_llama31_8b_on_80_gib() -> None:
    engine = yaml.safe_load((REPO / "conf" / "engine" / "vllm.yaml").read_text())
    model = load_model_yaml("llama3.1-8b")
    prediction = predict_for_config(
        model, "vllm", engine["ctx_size"], engine["parallel"], kv_type=None,
        gpu_total_mib=GPU_80_MIB, gpu_util=engine["gpu_memory_utilization"],
    )  # fmt: skip
    # BF16 weights 8.03e9 x 2 bytes = 15316.01 MiB; pool 56635.99 MiB -> 28317 blocks.
    stored = prediction.to_dict()
    assert stored["fits"] is True
    assert stored["kv_tokens_capacity"] == 28317 * 16 == 453072
    assert stored["full_length_sequences"] == 453072 // 4096 == 110


def test_the_cli_prints_the_pool_in_tokens_and_full_length_sequences() -> None:
    command = [sys.executable, "-m", "harness.fit", "--model", "llama3.1-8b", "--quant", "BF16",
               "--engine", "vllm", "--gpu-gb", "80", "--parallel", "256"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "KV pool holds 453072 tokens" in result.stdout
    assert "110 full-length sequence(s) of 4096 tokens" in result.stdout
    assert "full-length sequences at once: 110 (at most max_num_seqs 256)" in result.stdout
    assert (
        "80 GiB GPU, vLLM's share 73728 MiB (free on an empty card), its KV pool holds one "
        "4096-token sequence: fits"
    ) in result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_fit_passes_engine_to_the_estimator() -> None:
    command = ["make", "-n", "--no-print-directory", "fit", "MODEL=llama3.1-8b", "ENGINE=vllm"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--engine vllm" in result.stdout


def vllm_verdict(util: float, ctx: int, card_gib: float) -> Prediction:
    return predict(llama8b(), "vllm", ctx, 4, WEIGHTS_MIB, kv_type="bf16", device="gpu",
                   gpu_total_mib=card_gib * 1024, gpu_util=util)  # fmt: skip


GRID_UTIL = (0.5, 0.7, 0.9, 0.95, 1.0)
GRID_CTX = (2048, 8192, 32768, 131072)
GRID_CARD_GIB = (12, 24, 48, 80, 141)


def test_the_vllm_verdict_over_a_grid_is_its_pool_holding_one_sequence() -> None:
    """vLLM takes its share by design: the verdict is whether the pool that share leaves
    holds one max_model_len sequence, at every utilisation, context and card size."""
    block_mib = 16 * 128 / 1024  # 2 MiB a block of 16 tokens
    for util in GRID_UTIL:
        for ctx in GRID_CTX:
            for card in GRID_CARD_GIB:
                p = vllm_verdict(util, ctx, card)
                activations = vllm_activation_bytes(llama8b(), 8192 if card >= 70 else 2048)
                pool = max(0.0, util * card * 1024 - WEIGHTS_MIB - activations / 2**20 - 912)
                assert p.kv_tokens_capacity == int(pool // block_mib) * 16
                assert p.fits is (p.kv_tokens_capacity >= ctx), (util, ctx, card)


def test_the_vllm_verdict_only_improves_with_more_share_more_memory_or_less_context() -> None:
    for util, ctx, card in itertools.product(GRID_UTIL, GRID_CTX, GRID_CARD_GIB):
        if not vllm_verdict(util, ctx, card).fits:
            continue
        assert all(vllm_verdict(u, ctx, card).fits for u in GRID_UTIL if u >= util)
        assert all(vllm_verdict(util, c, card).fits for c in GRID_CTX if c <= ctx)
        assert all(vllm_verdict(util, ctx, g).fits for g in GRID_CARD_GIB if g >= card)


def test_a_share_above_the_other_engines_headroom_still_fits() -> None:
    """0.95 of an 80 GiB card, 4096 tokens: the pool holds 570,848 tokens, so it fits, and
    the largest context is the model's own (no 10% headroom rule for vLLM)."""
    result = subprocess.run(
        [sys.executable, "-m", "harness.fit", "--model", "llama3.1-8b", "--quant", "Q4_K_M",
         "--ctx", "4096", "--gpu-gb", "80", "--engine", "vllm", "--gpu-util", "0.95",
         "--vllm-weights", "gguf"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "KV pool holds 570848 tokens" in result.stdout
    assert "its KV pool holds one 4096-token sequence: fits" in result.stdout
    assert "largest context per slot that fits: 131072 tokens" in result.stdout
