"""The Dagster layer of agentscaler: assets, resources, partitions and the `agentscaler` command.

`dagster asset materialize -m agentscaler_assets --select ...` loads `defs` from here.
"""

from agentscaler_assets.definitions import defs

__all__ = ["defs"]
