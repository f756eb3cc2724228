"""GGUF -> a Hugging Face folder (safetensors) that vLLM loads: the same weights as the
GGUF that llama.cpp serves, dequantised, with the tokenizer set up as the GGUF says.

Run by the harness with the interpreter of vLLM's own virtualenv (``make setup-vllm``),
which has torch, transformers and gguf; it imports nothing of the harness:

    .venv-vllm/bin/python harness/engines/vllm_convert.py MODEL.gguf OUT_DIR --dtype bfloat16

transformers' GGUF loader leaves two things out that change what vLLM generates: the
tokenizer does not add the BOS token the GGUF asks for (Gemma without BOS degenerates into
repetition) and carries no chat template (chat requests then fail). Both are taken from the
GGUF's metadata and checked before the folder is published; the folder appears under its
final name only when complete, with ``conversion.json`` saying what was done.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

CONVERSION_FILE = "conversion.json"
CHECK_TEXT = "The capital of France is"
# A GGUF without a chat template of its own (a base model, such as the packaged Gemma 3
# 270M) is chatted with in ChatML by llama-server, its fallback. vLLM gets the same turns, so
# both engines see the same prompt tokens; BOS comes first when the GGUF asks for one
# (vLLM's chat endpoint adds no special tokens itself).
CHATML_TURNS = (
    "{% if add_bos %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def gguf_field(reader: Any, key: str) -> Any:
    """A scalar or string field of a GGUF header, or None."""
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def tokenizer_facts(gguf_path: Path) -> dict[str, Any]:
    """What the GGUF says about its tokenizer: BOS/EOS wanted, their ids, the chat template."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    architecture = gguf_field(reader, "general.architecture")
    template = gguf_field(reader, "tokenizer.chat_template")
    add_bos = bool(gguf_field(reader, "tokenizer.ggml.add_bos_token"))
    fallback = CHATML_TURNS.replace("add_bos", "true" if add_bos else "false")
    return {
        "add_bos_token": add_bos,
        "add_eos_token": bool(gguf_field(reader, "tokenizer.ggml.add_eos_token")),
        "bos_token_id": gguf_field(reader, "tokenizer.ggml.bos_token_id"),
        "chat_template": template or fallback,
        "chat_template_source": "gguf" if template else "chatml (llama-server's fallback)",
        "architecture": architecture,
    }


def convert(gguf_path: Path, out_dir: Path, dtype_name: str) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    started = time.monotonic()
    facts = tokenizer_facts(gguf_path)
    dtype = getattr(torch, dtype_name)
    folder, name = str(gguf_path.parent), gguf_path.name
    print("reading the tokenizer", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    print(f"dequantising the weights to {dtype_name}", file=sys.stderr)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=dtype, quantization_config=GgufConfig(dequantize=True)
    )
    # the GGUF's own tokenizer rules, which the loader drops
    tokenizer.add_bos_token = facts["add_bos_token"]
    tokenizer.add_eos_token = facts["add_eos_token"]
    if facts["chat_template"]:
        tokenizer.chat_template = facts["chat_template"]
    # dequantised, the model is a plain one: without the loader's quantisation marker it
    # saves as ordinary safetensors, and vLLM does not look for GGUF kernels
    model.hf_quantizer = None
    model.is_quantized = False
    for config in (model.config, getattr(model.config, "text_config", None)):
        if config is not None and hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
    check = check_tokenizer(tokenizer, facts)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    _force_tokenizer_config(partial, facts)
    record = {
        "gguf": str(gguf_path),
        "gguf_size": gguf_path.stat().st_size,
        "dtype": dtype_name,
        "architecture": facts["architecture"],
        "add_bos_token": facts["add_bos_token"],
        "chat_template": facts["chat_template_source"],
        "check": check,
        "seconds": round(time.monotonic() - started, 1),
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
    }
    (partial / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(partial, out_dir)
    return record


def check_tokenizer(tokenizer: Any, facts: dict[str, Any]) -> dict[str, Any]:
    """The saved tokenizer adds BOS when the GGUF asks for it and renders a chat."""
    ids = tokenizer(CHECK_TEXT)["input_ids"]
    if facts["add_bos_token"] and ids[:1] != [facts["bos_token_id"]]:
        raise SystemExit(
            f"conversion check failed: the tokenizer does not start {CHECK_TEXT!r} with BOS "
            f"id {facts['bos_token_id']} (got {ids[:3]})"
        )
    rendered = None
    if facts["chat_template"]:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
        )
    return {"first_ids": ids[:3], "chat_prompt": rendered}


def _force_tokenizer_config(folder: Path, facts: dict[str, Any]) -> None:
    """Write the BOS rule and the template into tokenizer_config.json, where vLLM reads them."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    config["add_bos_token"] = facts["add_bos_token"]
    config["add_eos_token"] = facts["add_eos_token"]
    if facts["chat_template"]:
        config["chat_template"] = facts["chat_template"]
    path.write_text(json.dumps(config, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    args = parser.parse_args(argv)
    record = convert(args.gguf, args.out, args.dtype)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
