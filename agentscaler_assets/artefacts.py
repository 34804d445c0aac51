"""Where every asset's files live under the storage root: one table, used by the writers and the readers.

An asset that writes a file and the assets and checks that read it name it here, once, so a path cannot
drift between them. `StorageRoot.artefact(Artefact.X, *more)` resolves a name (and an optional sub-path,
such as a model's folder) inside the root; per-domain files sit in `StorageRoot.domain_dir(slug)` under
the names below.
"""

from enum import Enum

from envgen.funnel.contamination import FLAGGED_FILE


class Artefact(Enum):
    """A file or folder under the storage root, as the parts of its path."""

    CATALOG = ("catalog", "api_catalog.parquet")
    REFUSED_SPECS = ("catalog", "refused.parquet")
    GRAPH_NODES = ("graph", "nodes.parquet")
    GRAPH_EDGES = ("graph", "edges.parquet")
    EDGE_VERDICTS = ("graph", "edge_verdicts.parquet")
    DOMAINS = ("domains", "domains.parquet")
    REFUSED_TOOLS = ("domains", "refused_tools.parquet")
    REFUSED_DOMAINS = ("domains", "refused_domains.parquet")
    DOMAIN_FOLDERS = ("domains",)
    CONTAMINATION = ("contamination",)
    CONTAMINATION_PAIRS = ("contamination", "flagged.parquet")
    CONTAMINATION_FLAGGED_TOOLS = ("contamination", FLAGGED_FILE)
    SFT_PHASE1 = ("sft", "sft_phase1.parquet")
    SFT_PHASE2 = ("sft", "sft_phase2.parquet")
    MODELS = ("models",)  # one folder per model: base, phase1, phase2, vertical_only
    VALIDATION_LOSSES = ("models", "validation_losses.json")
    BASE_SOURCES = ("base_sources",)  # GGUF files assembled from installed model packages
    BENCHMARKS = ("benchmarks",)  # one folder per benchmark partition, each with its scores.json
    SCALING_STUDY = ("studies", "scaling")
    SCALING_RESULT = ("studies", "scaling", "scaling.json")
    EXTERNAL = ("external",)  # default place of benchmark checkouts that are not on PyPI


# Files inside a domain's folder (the environment's own files are envgen.environment.build's).
TASKS_FILE = "tasks.parquet"
TRAJECTORIES_FILE = "trajectories.parquet"
FILTERED_FILE = "filtered.parquet"
SCORES_FILE = "scores.json"  # inside a benchmark's folder
