"""Child processes that hold a known amount of memory, for the telemetry tests."""

from __future__ import annotations

import subprocess
import sys

# Host memory: a bytearray whose pages are all touched, then held until stdin closes.
HOST_ALLOCATOR = """
import sys
block = bytearray({mib} * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
print("allocated", flush=True)
sys.stdin.read()
"""

# GPU memory through the CUDA driver API (libcuda ships with the driver NVML needs).
# Prints "context" once a context exists, waits for a line, allocates, prints "allocated".
GPU_ALLOCATOR = """
import ctypes, sys
cuda = ctypes.CDLL("libcuda.so.1")
def check(result, what):
    if result != 0:
        raise SystemExit(f"{what} failed with CUDA error {result}")
check(cuda.cuInit(0), "cuInit")
device, context, pointer = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
check(cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
check(cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device), "cuCtxCreate")
print("context", flush=True)
sys.stdin.readline()
check(cuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t({mib} * 2**20)), "cuMemAlloc")
check(cuda.cuMemsetD8_v2(pointer, 1, ctypes.c_size_t({mib} * 2**20)), "cuMemsetD8")
check(cuda.cuCtxSynchronize(), "cuCtxSynchronize")
print("allocated", flush=True)
sys.stdin.read()
"""


def start(script: str, mib: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script.format(mib=mib)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
