"""Names and units shared by several layers, defined once; this module imports nothing."""

MIB = 1024 * 1024  # bytes in a mebibyte

# Load shapes (load.mode; trace: the workload's own send times) and open-loop arrival
# schedules (load.arrival).
LOAD_MODES = ("concurrency", "rate", "burst", "trace")
ARRIVALS = ("poisson", "constant")

# The environment variable a Hugging Face token is read from; the token is never stored.
HF_TOKEN_ENV = "HF_TOKEN"
