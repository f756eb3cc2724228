"""How many bits a weight takes, per quantization name."""

from __future__ import annotations

import re

from harness.fit.arch import FitError

# Effective bits per weight of a whole model file, so the embeddings and output layer that
# mixed quantizations keep at higher precision are counted. The GGUF K-quant mixes and Q4_0 /
# Q8_0 come from the sizes llama.cpp's `llama-quantize --help` prints for Llama-3-8B (e.g.
# "Q4_K_M : 4.58G"), as GiB x 2^33 / 8.03e9 parameters; IQ4_XS is the 4.25 bpw that table
# states. F32/F16/BF16 are exact; FP8 and AWQ/GPTQ int4 are 8 and 4 bits for the linear
# layers, plus scales (int4: one fp16 scale and zero per 128 weights, +0.25) and the
# embeddings and lm_head that stay 16-bit (about +0.25 on a 70B model, more on small ones).
QUANT_BITS_PER_WEIGHT: dict[str, float] = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.52,
    "Q6_K": 6.57,
    "Q5_K_M": 5.70,
    "Q5_K_S": 5.57,
    "Q4_K_M": 4.90,
    "Q4_K_S": 4.67,
    "Q4_0": 4.64,
    "IQ4_XS": 4.25,
    "Q3_K_M": 4.00,
    "Q2_K": 3.17,
    "FP8": 8.25,
    "AWQ": 4.5,
    "GPTQ": 4.5,
}

# The bit width a quantization is named for; the original write-up's heuristic uses it.
QUANT_NOMINAL_BITS: dict[str, int] = {
    "F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8, "Q6_K": 6, "Q5_K_M": 5, "Q5_K_S": 5,
    "Q4_K_M": 4, "Q4_K_S": 4, "Q4_0": 4, "IQ4_XS": 4, "Q3_K_M": 3, "Q2_K": 2, "FP8": 8,
    "AWQ": 4, "GPTQ": 4,
}  # fmt: skip


def nominal_bits(quant: str) -> int:
    """The bit width a quantization is named for (Q5_1 -> 5, IQ3_M -> 3); 16 if unnamed."""
    name = quant.upper()
    if name in QUANT_NOMINAL_BITS:
        return QUANT_NOMINAL_BITS[name]
    digits = re.match(r"I?Q(\d+)", name)
    return int(digits.group(1)) if digits else 16


def quant_name(value: str, flag: str = "--quant") -> str:
    """The table's spelling of a quantization name, or a FitError listing the known ones."""
    name = value.strip().upper().replace("-", "_")
    if name not in QUANT_BITS_PER_WEIGHT:
        choices = ", ".join(QUANT_BITS_PER_WEIGHT)
        raise FitError(f"{flag}={value!r} is not a known quantization; choose one of: {choices}")
    return name
