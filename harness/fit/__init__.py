"""Will this model fit? Predicted memory per engine, from the model's architecture.

    python -m harness.fit --model llama3.1-8b --quant Q4_K_M --ctx 32768 --gpu-gb 12

Modules: the model (``arch``, ``gguf_header``, ``hf_config``, ``quant``, ``model``), the KV
cache (``kv``), each engine's rule (``llamacpp``, ``vllm``), the prediction (``prediction``,
``predict``), the write-up's rule of thumb (``heuristic``) and the command line
(``__main__``). The names below are importable from here.
"""

from harness.constants import MIB
from harness.fit.arch import Arch, FitError, arch_from_dict, estimate_params_b
from harness.fit.gguf_header import arch_from_gguf, read_gguf_metadata
from harness.fit.heuristic import Heuristic, original_heuristic
from harness.fit.hf_config import arch_from_hf_config
from harness.fit.kv import (
    KV_BYTES_PER_ELEMENT,
    CacheCells,
    kv_bytes_per_element,
    kv_bytes_per_token,
    kv_cache_bytes,
)
from harness.fit.llamacpp import (
    CPU_RUNTIME_MIB,
    KV_PAD_CELLS,
    N_UBATCH,
    llamacpp_cells,
    llamacpp_compute_bytes,
)
from harness.fit.model import (
    MODEL_DIR,
    ModelFacts,
    available_models,
    load_model_yaml,
    model_gguf_path,
    resolve_model,
)
from harness.fit.predict import (
    ENGINES,
    engine_rule,
    largest_fitting_ctx,
    predict,
    predict_for_config,
    predict_model,
)
from harness.fit.prediction import CUDA_CONTEXT_MIB, DEVICES, HEADROOM, Prediction
from harness.fit.quant import QUANT_BITS_PER_WEIGHT, nominal_bits, quant_name
from harness.fit.vllm import (
    VLLM_CPU_KV_SPACE_MIB,
    VLLM_CPU_RUNTIME_MIB,
    VLLM_GPU_UTIL,
    full_length_sequences,
    vllm_activation_bytes,
    vllm_batched_tokens,
    vllm_kv_tokens,
)

__all__ = [
    "CPU_RUNTIME_MIB",
    "CUDA_CONTEXT_MIB",
    "DEVICES",
    "ENGINES",
    "HEADROOM",
    "KV_BYTES_PER_ELEMENT",
    "KV_PAD_CELLS",
    "MIB",
    "MODEL_DIR",
    "N_UBATCH",
    "QUANT_BITS_PER_WEIGHT",
    "VLLM_CPU_KV_SPACE_MIB",
    "VLLM_CPU_RUNTIME_MIB",
    "VLLM_GPU_UTIL",
    "Arch",
    "CacheCells",
    "FitError",
    "Heuristic",
    "ModelFacts",
    "Prediction",
    "arch_from_dict",
    "arch_from_gguf",
    "arch_from_hf_config",
    "available_models",
    "engine_rule",
    "estimate_params_b",
    "full_length_sequences",
    "kv_bytes_per_element",
    "kv_bytes_per_token",
    "kv_cache_bytes",
    "largest_fitting_ctx",
    "llamacpp_cells",
    "llamacpp_compute_bytes",
    "load_model_yaml",
    "model_gguf_path",
    "nominal_bits",
    "original_heuristic",
    "predict",
    "predict_for_config",
    "predict_model",
    "quant_name",
    "read_gguf_metadata",
    "resolve_model",
    "vllm_activation_bytes",
    "vllm_batched_tokens",
    "vllm_kv_tokens",
]
