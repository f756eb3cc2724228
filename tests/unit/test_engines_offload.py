"""Where a llama.cpp server put the model, read from the lines it logs while loading it."""

from __future__ import annotations

import pytest

from harness.engines.llamacpp_props import read_offload

CUDA_BUILD = """\
0.00.010.411 I llama_model_load_from_file_impl: using device CUDA0 (NVIDIA H200) - 142000 MiB free
0.00.310.002 I load_tensors: offloading 18 repeating layers to GPU
0.00.310.004 I load_tensors: offloading output layer to GPU
0.00.310.006 I load_tensors: offloaded 19/19 layers to GPU
0.00.310.010 I load_tensors:        CUDA0 model buffer size =   241.05 MiB
"""
CPU_ONLY_BUILD = """\
warning: no usable GPU found, --gpu-layers option will be ignored
warning: one possible reason is that llama.cpp was compiled without GPU support
0.00.310.010 I load_tensors:   CPU_Mapped model buffer size =   241.05 MiB
"""


@pytest.mark.parametrize(
    ("log", "offloaded", "total", "devices", "on_gpu"),
    [
        (CUDA_BUILD, 19, 19, ("CUDA0 (NVIDIA H200)",), True),
        (CUDA_BUILD.replace("19/19", "0/19"), 0, 19, ("CUDA0 (NVIDIA H200)",), False),
        (CPU_ONLY_BUILD, 0, None, (), False),
        ("xllamacpp_server: no usable GPU found, --n-gpu-layers is ignored\n", 0, None, (), False),
        (
            "xllamacpp_server: using device CUDA0 (NVIDIA H200)\n",
            None,
            None,
            ("CUDA0 (NVIDIA H200)",),
            None,
        ),
        ("srv init: model loaded\n", None, None, (), None),
    ],
    ids=["cuda", "cuda-ngl-0", "cpu-only", "embedded-cpu", "embedded-gpu-unsaid", "silent"],
)
def test_the_offload_is_what_the_log_says(
    log: str,
    offloaded: int | None,
    total: int | None,
    devices: tuple[str, ...],
    on_gpu: bool | None,
) -> None:
    offload = read_offload(log)
    assert (offload.layers_offloaded, offload.layers_total) == (offloaded, total)
    assert offload.gpu_devices == devices
    assert offload.on_gpu is on_gpu
