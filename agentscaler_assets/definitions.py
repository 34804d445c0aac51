"""The one `Definitions` of the platform: every asset of the AgentScaler lineage, its checks, the stage jobs
that the schedule and sensors launch, and its resources.

Resources come from the profile named by `AGENTSCALER_PROFILE` (local | endpoint | cluster); assets are the
same in every profile. Schedules and sensors start stopped unless AGENTSCALER_AUTOMATION=1 (see
docs/operating.md).
"""

from dagster import Definitions

from agentscaler_assets.catalog_assets import api_catalog, domains, tool_graph
from agentscaler_assets.checks import ALL_CHECKS
from agentscaler_assets.contamination_assets import contamination_report
from agentscaler_assets.environment_assets import domain_environment, domain_tasks
from agentscaler_assets.evaluation_assets import benchmark_scores
from agentscaler_assets.experience_assets import (
    filtered_trajectories,
    sft_phase1_dataset,
    sft_phase2_dataset,
    trajectories,
)
from agentscaler_assets.jobs import catalog_stage_job, domain_stage_job
from agentscaler_assets.resources import resources_for_profile
from agentscaler_assets.rl_assets import phase3_rl_model
from agentscaler_assets.scaling_assets import scaling_study
from agentscaler_assets.schedules import ALL_SCHEDULES
from agentscaler_assets.sensors import ALL_SENSORS
from agentscaler_assets.source_assets import api_specs, domain_spec
from agentscaler_assets.training_assets import (
    base_model,
    phase1_model,
    phase2_model,
    vertical_only_model,
)

ALL_ASSETS = [
    api_catalog,
    tool_graph,
    domains,
    domain_environment,
    domain_tasks,
    trajectories,
    filtered_trajectories,
    contamination_report,
    sft_phase1_dataset,
    sft_phase2_dataset,
    base_model,
    phase1_model,
    phase2_model,
    vertical_only_model,
    phase3_rl_model,
    benchmark_scores,
    scaling_study,
]

# What the lineage reads from outside, observed for its data version (source_assets.py).
SOURCE_ASSETS = [api_specs, domain_spec]

ALL_JOBS = [catalog_stage_job, domain_stage_job]

defs = Definitions(
    assets=[*SOURCE_ASSETS, *ALL_ASSETS],
    asset_checks=ALL_CHECKS,
    jobs=ALL_JOBS,
    schedules=ALL_SCHEDULES,
    sensors=ALL_SENSORS,
    resources=resources_for_profile(),
)
