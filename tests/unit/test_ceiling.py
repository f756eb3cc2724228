"""The ceilings' arithmetic against hand-worked examples: NVML's bandwidth formula, the GPU
table, bytes per decode step of real GGUF files written here and of config.json
checkpoints, and a level's utilisation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gguf import GGUFWriter

from harness.ceiling.decode_bytes import (
    DecodeBytes,
    DecodeWeights,
    decode_bytes_per_step,
    hf_decode_weights,
)
from harness.ceiling.gpus import gpu_ceilings, gpu_peak, nvml_bandwidth_gbs
from harness.ceiling.utilisation import FAR_FROM_CEILING_BELOW, far_from_ceiling, level_ceiling
from harness.config import ConfigError, MachineConfig
from harness.fit.arch import Arch
from harness.telemetry.nvml import Nvml

HIDDEN, VOCAB, FFN = 8, 32, 16


def test_nvml_bandwidth_of_an_rtx_4090_is_its_published_1008_gbs() -> None:
    # 10,501 MHz x 384 bit x 2 (DDR) / 8 = 1,008,096 MB/s
    assert nvml_bandwidth_gbs(10_501, 384) == pytest.approx(1008.1, abs=0.05)


def test_nvml_bandwidth_of_an_h100_sxm_is_its_published_3_35_tbs() -> None:
    assert nvml_bandwidth_gbs(2619, 5120) == pytest.approx(3352.3, abs=0.1)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"),
        ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("rtx 4090", "RTX 4090"),
        ("Tesla T4", "T4"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
    ],
)
def test_gpu_names_find_their_row_of_the_table(name: str, label: str) -> None:
    row = gpu_peak(name)
    assert row is not None and row.label == label


def test_an_unknown_gpu_has_no_row() -> None:
    assert gpu_peak("Radeon 7900") is None


def test_gpu_ceilings_take_bandwidth_from_nvml_and_compute_from_the_table() -> None:
    spec = {"index": 0, "name": "NVIDIA GeForce RTX 4090",
            "max_memory_clock_mhz": 10_501, "memory_bus_width_bits": 384}  # fmt: skip
    figures = gpu_ceilings(spec)
    assert figures["memory_bandwidth_gbs"] == pytest.approx(1008.1, abs=0.05)
    assert "NVML" in figures["memory_bandwidth_source"]
    assert figures["compute_tflops"] == 165.2
    assert "whitepaper" in figures["compute_source"]


def test_gpu_ceilings_fall_back_to_the_table_without_a_clock() -> None:
    figures = gpu_ceilings({"index": 0, "name": "NVIDIA H100 80GB HBM3"})
    assert figures["memory_bandwidth_gbs"] == 3350.0
    assert "NVML gave no clock" in figures["memory_bandwidth_source"]


class FakeNvml:
    """NVML's calls for one RTX 4090 (a fake of the library, to test our own reading)."""

    NVML_CLOCK_MEM = 2

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return "h0"

    def nvmlDeviceGetName(self, handle: str) -> str:
        return "NVIDIA GeForce RTX 4090"

    def nvmlDeviceGetMaxClockInfo(self, handle: str, kind: int) -> int:
        assert kind == self.NVML_CLOCK_MEM
        return 10_501

    def nvmlDeviceGetMemoryBusWidth(self, handle: str) -> int:
        return 384


def test_nvml_memory_specs_read_clock_and_bus_width() -> None:
    specs = Nvml(FakeNvml()).memory_specs()
    assert specs == [{"index": 0, "name": "NVIDIA GeForce RTX 4090",
                      "max_memory_clock_mhz": 10_501, "memory_bus_width_bits": 384}]  # fmt: skip


def _write_gguf(
    path: Path, tensors: dict[str, np.ndarray], experts: tuple[int, int] | None
) -> Path:
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_embedding_length(HIDDEN)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_context_length(64)
    if experts:
        writer.add_expert_count(experts[0])
        writer.add_expert_used_count(experts[1])
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _layer(dtype: type = np.float16) -> dict[str, np.ndarray]:
    return {
        "blk.0.attn_norm.weight": np.ones(HIDDEN, dtype=np.float32),  # 32 bytes, no matmul
        "blk.0.attn_q.weight": np.ones((HIDDEN, HIDDEN), dtype=dtype),  # 64 params
        "blk.0.attn_k.weight": np.ones((4, HIDDEN), dtype=dtype),  # 32
        "blk.0.attn_v.weight": np.ones((4, HIDDEN), dtype=dtype),  # 32
        "blk.0.attn_output.weight": np.ones((HIDDEN, HIDDEN), dtype=dtype),  # 64
    }


def test_dense_gguf_counts_every_matrix_and_skips_the_embedding_lookup(tmp_path: Path) -> None:
    tensors = {
        "token_embd.weight": np.ones((VOCAB, HIDDEN), dtype=np.float16),  # lookup: not read
        **_layer(),
        "blk.0.ffn_up.weight": np.ones((FFN, HIDDEN), dtype=np.float16),  # 128
        "output.weight": np.ones((VOCAB, HIDDEN), dtype=np.float32),  # 256 params, 4 bytes
    }
    path = _write_gguf(tmp_path / "dense.gguf", tensors, None)
    weights = decode_bytes_per_step("f16", gguf_path=path).weights
    # by hand: norm 32 B + (64+32+32+64+128) x 2 B + 256 x 4 B = 32 + 640 + 1024
    assert weights.weight_bytes == 1696
    assert weights.active_params == 64 + 32 + 32 + 64 + 128 + 256
    assert weights.output_params == 256


def test_tied_embedding_gguf_reads_the_embedding_once_as_the_output(tmp_path: Path) -> None:
    tensors = {"token_embd.weight": np.ones((VOCAB, HIDDEN), dtype=np.float16), **_layer()}
    path = _write_gguf(tmp_path / "tied.gguf", tensors, None)
    weights = decode_bytes_per_step("f16", gguf_path=path).weights
    # norm 32 B + 192 x 2 B + the embedding, once: 256 x 2 B
    assert weights.weight_bytes == 32 + 384 + 512
    assert weights.output_params == 256


def test_moe_gguf_counts_only_the_active_experts(tmp_path: Path) -> None:
    tensors = {
        "token_embd.weight": np.ones((VOCAB, HIDDEN), dtype=np.float16),
        **_layer(),
        "blk.0.ffn_gate_inp.weight": np.ones((4, HIDDEN), dtype=np.float32),  # router: 32 x 4 B
        "blk.0.ffn_up_exps.weight": np.ones((4, FFN, HIDDEN), dtype=np.float16),  # 4 x 128
        "blk.0.ffn_down_exps.weight": np.ones((4, HIDDEN, FFN), dtype=np.float16),  # 4 x 128
    }
    path = _write_gguf(tmp_path / "moe.gguf", tensors, experts=(4, 2))
    weights = decode_bytes_per_step("f16", gguf_path=path).weights
    experts_bytes = (4 * 128 * 2 + 4 * 128 * 2) * 2 / 4  # 2 of 4 experts
    assert weights.weight_bytes == 32 + 384 + 128 + experts_bytes + 512
    assert weights.active_params == 192 + 32 + 2 * 128 * 2 + 256


def test_gguf_dequantised_costs_the_dtype_per_weight(tmp_path: Path) -> None:
    tensors = {"token_embd.weight": np.ones((VOCAB, HIDDEN), dtype=np.float32), **_layer()}
    path = _write_gguf(tmp_path / "q.gguf", tensors, None)
    weights = decode_bytes_per_step("auto", gguf_path=path, dtype_bytes=2.0).weights
    assert weights.weight_bytes == (8 + 192 + 256) * 2


BF16_CONFIG = {
    "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
    "vocab_size": 1000, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}  # fmt: skip


def test_bf16_checkpoint_is_its_parameters_times_two_bytes() -> None:
    weights = hf_decode_weights(BF16_CONFIG)
    # per layer: q,o 64x64 each + k,v 64x32 each = 12,288; MLP 3 x 64 x 128 = 24,576
    # two layers 73,728; the output projection 1000 x 64 = 64,000; the lookup not counted
    assert weights.active_params == 137_728
    assert weights.weight_bytes == 275_456
    assert weights.output_params == 64_000


def test_moe_checkpoint_counts_the_experts_per_token_and_the_router() -> None:
    config = {**BF16_CONFIG, "num_local_experts": 8, "num_experts_per_tok": 2}
    weights = hf_decode_weights(config)
    # MLP per layer: 2 experts x 24,576 + router 64 x 8
    assert weights.active_params == 2 * (12_288 + 2 * 24_576 + 512) + 64_000


ARCH = Arch("toy", n_layers=2, n_heads=4, kv_heads=(2, 2), head_dim_k=16, head_dim_v=16,
            hidden_size=64)  # fmt: skip


def _decode(weight_bytes: float = 1e9) -> DecodeBytes:
    return DecodeBytes(DecodeWeights(weight_bytes, 1e9, 2e8, "hand"), ARCH, "f16")


def test_kv_bytes_per_sequence_follow_the_fit_formula() -> None:
    # 2 layers x 2 heads x (16 + 16) x 2 bytes = 256 bytes a token
    assert _decode().kv_bytes(100) == 25_600


def _level(**extra: object) -> dict:
    level = {"concurrency": 1, "mode": "concurrency", "requests_ok": 4,
             "prompt_tokens_total": 400, "output_tokens_total": 400,
             "tpot_ms": {"mean": 20.0}, "ttft_ms": {"mean": 100.0},
             "steady_output_tokens_per_s": 45.0}  # fmt: skip
    return {**level, **extra}


def test_level_utilisation_by_hand() -> None:
    ceilings = {"device": "gpu", "memory_bandwidth_gbs": 100.0, "compute_tflops": 10.0}
    figures = level_ceiling(_level(), _decode(), ceilings)
    # depth 100 + 100/2 = 150 tokens: KV 38,400 B; step 1e9 + 38,400 B; 50 steps/s
    inputs = figures["ceiling_inputs"]
    assert inputs["mean_context_depth_tokens"] == 150 and inputs["running_sequences"] == 1
    assert figures["decode_bandwidth_utilisation"] == pytest.approx((1e9 + 38_400) * 50 / 1e11)
    assert figures["decode_ceiling_tokens_per_s"] == pytest.approx(1e11 / (1e9 + 38_400))
    # prefill: 2 x (1e9 - 2e8) x 100 + 2 x 2e8 FLOP in 0.1 s of 10 TFLOP/s
    assert figures["prefill_compute_utilisation"] == pytest.approx((1.6e11 + 4e8) / 0.1 / 1e13)


def test_running_sequences_come_from_tok_s_times_tpot_capped_at_the_concurrency() -> None:
    ceilings = {"device": "cpu", "memory_bandwidth_gbs": 100.0, "compute_tflops": None}
    level = _level(concurrency=4, steady_output_tokens_per_s=150.0)  # 150 / 50 steps
    figures = level_ceiling(level, _decode(), ceilings)
    assert figures["ceiling_inputs"]["running_sequences"] == 3.0
    assert figures["prefill_compute_utilisation"] is None  # not one stream
    capped = level_ceiling(_level(concurrency=2, steady_output_tokens_per_s=150.0), _decode(),
                           ceilings)  # fmt: skip
    assert capped["ceiling_inputs"]["running_sequences"] == 2.0


def test_far_from_ceiling_only_for_a_gpu_single_stream_under_a_quarter() -> None:
    low = {"concurrency": 1, "decode_bandwidth_utilisation": FAR_FROM_CEILING_BELOW - 0.01}
    assert far_from_ceiling(low, "gpu")
    assert not far_from_ceiling(low, "cpu")
    assert not far_from_ceiling({**low, "concurrency": 4}, "gpu")
    assert not far_from_ceiling({**low, "decode_bandwidth_utilisation": 0.3}, "gpu")


def test_machine_config_refuses_a_negative_bandwidth() -> None:
    with pytest.raises(ConfigError, match=r"machine.mem_bw_gbs=-1"):
        MachineConfig(mem_bw_gbs=-1).validate()


def test_given_figures_replace_the_measured_ones_and_skip_the_tests(tmp_path: Path) -> None:
    from harness.ceiling.machine import machine_ceilings

    machine = MachineConfig(mem_bw_gbs=50.0, compute_tflops=1.5)
    ceilings = machine_ceilings(machine, False, tmp_path, "box", nvml=SimpleNamespace())
    assert ceilings["memory_bandwidth_gbs"] == 50.0 and ceilings["compute_tflops"] == 1.5
    assert ceilings["memory_bandwidth_source"] == "given: machine.mem_bw_gbs"
    assert not (tmp_path / "_machines").exists()  # nothing measured, nothing cached


def test_cpu_ceilings_are_measured_once_then_read_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.ceiling import machine as machine_module
    from harness.ceiling.measure import CpuCeilings

    calls = []

    def fake_measure() -> CpuCeilings:
        calls.append(1)
        return CpuCeilings(20.0, "measured", 0.3, "measured", (19.0, 20.0))

    monkeypatch.setattr(machine_module, "measure_cpu", fake_measure)
    first = machine_module.cpu_ceilings(tmp_path, "box")
    second = machine_module.cpu_ceilings(tmp_path, "box")
    assert len(calls) == 1 and first["cached"] is None and second["cached"]
    machine_module.cpu_ceilings(tmp_path, "box", remeasure=True)
    assert len(calls) == 2


def test_the_read_test_measures_a_positive_bandwidth() -> None:
    from harness.ceiling.measure import read_bandwidth_gbs

    rates = read_bandwidth_gbs(size_mib=64, repeats=2)
    assert len(rates) == 2 and all(0.1 < rate < 10_000 for rate in rates)


def test_fit_gives_the_decode_ceiling_of_the_packaged_model_on_a_given_bandwidth() -> None:
    from harness.fit.__main__ import main, parse_args, report

    result = report(parse_args(["--model", "gemma3-270m", "--gpu-bw", "30"]))
    speed = result["decode_ceiling"]
    # its GGUF's tensors less the lookup: 246,587,904 bytes a token
    assert speed["weight_bytes_per_step"] == 246_587_904
    assert speed["tokens_per_s_empty_context"] == pytest.approx(30e9 / 246_587_904)
    assert speed["tokens_per_s_full_context"] < speed["tokens_per_s_empty_context"]
    assert main(["--model", "gemma3-270m", "--gpu", "no such gpu"]) == 2


def test_fit_names_the_gpu_table_row_it_used() -> None:
    from harness.fit.__main__ import format_report, parse_args, report

    args = parse_args(["--model", "llama3.1-8b", "--quant", "Q4_K_M", "--gpu", "RTX 4090"])
    text = format_report(report(args))
    assert "how fast at most on RTX 4090 (1008 GB/s" in text


def test_a_gpu_level_far_below_its_ceiling_is_flagged() -> None:
    from harness.ceiling.run import JobCeilings

    ceilings = {"device": "gpu", "memory_bandwidth_gbs": 1000.0, "compute_tflops": 100.0}
    level = _level(flags=[])  # 50 steps/s of 1 GB: 5% of 1,000 GB/s
    JobCeilings(ceilings, _decode()).apply(level)
    assert level["decode_bandwidth_utilisation"] == pytest.approx(0.05, rel=1e-3)
    assert level["flags"] == ["far_from_ceiling"]


def test_a_model_it_cannot_size_leaves_the_levels_as_they_were(tmp_path: Path) -> None:
    from harness.ceiling.run import JobCeilings
    from harness.config import BenchConfig

    bench = BenchConfig()
    bench.model.name, bench.model.source = "served", "served"
    bench.machine.mem_bw_gbs, bench.machine.compute_tflops = 10.0, 1.0
    bench.results = str(tmp_path)
    job = JobCeilings.find(bench, {}, on_gpu=False, machine_id="box", here=False)
    level = _level()
    job.apply(level)
    assert job.decode is None and job.record() == {"weights": None}
    assert "decode_bandwidth_utilisation" not in level
    assert job.ceilings["memory_bandwidth_gbs"] == 10.0
