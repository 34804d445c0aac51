"""Partition sets: `domain` is discovered from the tool graph by the `domains` asset; benchmarks are fixed."""

from dagster import DynamicPartitionsDefinition, StaticPartitionsDefinition

domain_partitions = DynamicPartitionsDefinition(name="domain")

# tau2_* run tau2-bench's own environments and evaluator (evals/tau2); tau-bench v1 and ACEBench loaders
# are not built yet, so their partitions do not exist yet either.
BENCHMARKS = ["synthetic_heldout", "tau2_telecom", "tau2_retail", "tau2_airline"]
benchmark_partitions = StaticPartitionsDefinition(BENCHMARKS)
