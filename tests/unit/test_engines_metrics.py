"""Reading the engines' own metrics: vLLM's Prometheus text, Ollama's /api/ps and pull stream."""

from __future__ import annotations

import json

import pytest
from tqdm import tqdm

from harness.engines.base import EngineError, parse_prometheus
from harness.engines.ollama import ps_metrics, pull_progress
from harness.engines.vllm import keep_metric, split_labels

VLLM_METRICS = """\
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="llama"} 0.25
vllm:num_preemptions_total{engine="0",model_name="llama"} 3.0
vllm:num_requests_waiting{engine="0",model_name="llama"} 7.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="llama"} 1.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="llama"} 12.5
vllm:e2e_request_latency_seconds_count{engine="0",model_name="llama"} 9.0
vllm:cache_config_info{block_size="16",cache_dtype="auto",num_gpu_blocks="27000"} 1.0
python_gc_objects_collected_total{generation="0"} 100.0
"""


def test_vllm_keeps_its_own_gauges_and_counters_without_histogram_buckets() -> None:
    kept = {k: v for k, v in parse_prometheus(VLLM_METRICS).items() if keep_metric(k)}
    assert kept['vllm:kv_cache_usage_perc{engine="0",model_name="llama"}'] == 0.25
    assert kept['vllm:num_preemptions_total{engine="0",model_name="llama"}'] == 3.0
    assert kept['vllm:num_requests_waiting{engine="0",model_name="llama"}'] == 7.0
    assert kept['vllm:e2e_request_latency_seconds_count{engine="0",model_name="llama"}'] == 9.0
    assert not [k for k in kept if "_bucket" in k or k.startswith("python_")]


def test_labels_are_split_from_a_series_name() -> None:
    key = 'vllm:cache_config_info{block_size="16",cache_dtype="auto",num_gpu_blocks="27000"}'
    name, labels = split_labels(key)
    assert name == "vllm:cache_config_info"
    assert labels == {"block_size": "16", "cache_dtype": "auto", "num_gpu_blocks": "27000"}


def test_ollama_ps_becomes_gauges_per_loaded_model() -> None:
    ps = {
        "models": [
            {"name": "llama3.1:8b", "size": 6_000, "size_vram": 5_000, "context_length": 4096}
        ]
    }
    assert ps_metrics(ps) == {
        "ollama:models_loaded": 1.0,
        'ollama:size_vram_bytes{model="llama3.1:8b"}': 5000.0,
        'ollama:size_bytes{model="llama3.1:8b"}': 6000.0,
        'ollama:context_length{model="llama3.1:8b"}': 4096.0,
    }


def _lines(*events: dict[str, object]) -> list[bytes]:
    return [json.dumps(event).encode() + b"\n" for event in events]


def test_pull_progress_follows_each_layer_to_success() -> None:
    stream = _lines(
        {"status": "pulling manifest"},
        {"status": "pulling a", "digest": "sha256:aaaaaaaaaaaa1", "total": 100, "completed": 50},
        {"status": "pulling a", "digest": "sha256:aaaaaaaaaaaa1", "total": 100, "completed": 100},
        {"status": "pulling b", "digest": "sha256:bbbbbbbbbbbb2", "total": 10, "completed": 10},
        {"status": "success"},
    )
    with tqdm(disable=True) as bar:
        last = pull_progress([*stream, b"\n"], bar)
        assert (bar.total, bar.n) == (10, 10)
    assert last == {"status": "success"}


def test_a_pull_error_event_stops_with_its_text() -> None:
    stream = _lines(
        {"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}
    )
    with tqdm(disable=True) as bar, pytest.raises(EngineError, match="file does not exist"):
        pull_progress(stream, bar)
