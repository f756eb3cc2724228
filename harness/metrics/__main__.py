"""`python -m harness.metrics` prints the metric table the README embeds."""

from harness.metrics.definitions import metrics_markdown

print(metrics_markdown(), end="")
