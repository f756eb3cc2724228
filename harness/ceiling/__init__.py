"""How close to the machine's limits: its memory-bandwidth and compute ceilings, the bytes
one decode step reads, and each level's share of the ceiling.

Modules: the GPU table and NVML's bandwidth formula (``gpus``), the CPU tests
(``measure``), the ceilings a run records (``machine``), the bytes per decode step
(``decode_bytes``), a level's figures (``utilisation``) and a job's use of them (``run``).
``python -m harness.ceiling`` prints this machine's ceilings.
"""
