"""Child process that runs llama.cpp's server (xllamacpp) until it is signalled.

Run by the llamacpp_embedded engine; not meant to be started by hand:
python -m harness.engines.xllamacpp_server --model M.gguf --port 8080 --parallel 4 ...
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

FLASH_ATTN = {
    "auto": "LLAMA_FLASH_ATTN_TYPE_AUTO",
    "on": "LLAMA_FLASH_ATTN_TYPE_ENABLED",
    "off": "LLAMA_FLASH_ATTN_TYPE_DISABLED",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--ctx-size", type=int, required=True, help="total context, all slots")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--n-gpu-layers", type=int, default=-1, help="-1: the library's default")
    parser.add_argument("--flash-attn", choices=tuple(FLASH_ATTN), default="auto")
    parser.add_argument("--cache-type", default="f16", help="K and V cache type: f16, q8_0, ...")
    parser.add_argument("--cache-ram-mib", type=int, default=0, help="prompt cache; 0: off")
    return parser.parse_args(argv)


def report_devices(xlc: Any) -> None:
    """Say, in llama-server's words, which GPUs the wheel can offload to (the harness reads
    it back from the log: a CPU-only wheel offloads nothing, whatever -ngl says)."""
    gpu_types = {xlc.ggml_backend_dev_type.GGML_BACKEND_DEVICE_TYPE_GPU}
    gpu_types.add(xlc.ggml_backend_dev_type.GGML_BACKEND_DEVICE_TYPE_IGPU)
    gpus = [device for device in xlc.get_device_info() if device["type"] in gpu_types]
    for device in gpus:
        print(f"xllamacpp_server: using device {device['name']} ({device['description']})")
    if not gpus:
        print("xllamacpp_server: no usable GPU found, --n-gpu-layers is ignored")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import xllamacpp as xlc

    report_devices(xlc)
    params = xlc.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx_size
    params.endpoint_metrics = True
    params.endpoint_slots = True
    threads = args.threads or os.cpu_count() or 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.n_gpu_layers = args.n_gpu_layers  # a CPU-only build has no layer to offload
    params.flash_attn_type = getattr(xlc.llama_flash_attn_type, FLASH_ATTN[args.flash_attn])
    cache_type = getattr(xlc.ggml_type, f"GGML_TYPE_{args.cache_type.upper()}")
    params.cache_type_k = cache_type
    params.cache_type_v = cache_type
    params.cache_ram_mib = args.cache_ram_mib
    print(f"xllamacpp_server: prompt cache limit {params.cache_ram_mib} MiB", flush=True)

    stop = threading.Event()
    server = xlc.Server(params)
    # The native server keeps its own threads alive; exit at once on a stop signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"xllamacpp {xlc.__version__} listening on {server.listening_address}", flush=True)
    stop.wait()
    print("stop signal received; exiting", flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
