"""Partition sets: `domain` is discovered from the tool graph by the `domains` asset; benchmarks are fixed."""

from dagster import DynamicPartitionsDefinition, StaticPartitionsDefinition

domain_partitions = DynamicPartitionsDefinition(name="domain")

BENCHMARKS = ["synthetic_heldout"]
benchmark_partitions = StaticPartitionsDefinition(BENCHMARKS)
