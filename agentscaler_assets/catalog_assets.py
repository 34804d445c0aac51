"""Group `catalog`: API specs in, tool graph, domains (which register the `domain` partitions)."""

import asyncio
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from agentscaler_assets.partitions import domain_partitions
from agentscaler_assets.resources import LanguageModels, StorageRoot
from agentscaler_assets.tables import markdown_table, write_parquet
from envgen.catalog.loaders import bundled_catalog_dir, load_paths
from envgen.catalog.spec import frame_to_specs, specs_to_frame
from envgen.edge_verify import verify_edges
from envgen.embedders import Embedder, OpenAIEmbedder, TfidfEmbedder
from envgen.graph import GraphConfig, assign_domains, build_graph


class CatalogConfig(Config):
    """Spec files or folders to read; empty means the bundled catalog."""

    sources: list[str] = []


@asset(group_name="catalog")
def api_catalog(
    context: AssetExecutionContext, config: CatalogConfig, storage: StorageRoot
) -> MaterializeResult:
    """Every API spec normalised to a ToolSpec row; refused specs are listed with their reason."""
    paths = [Path(p) for p in config.sources] or [bundled_catalog_dir()]
    load = load_paths(paths)
    if not load.specs:
        raise ValueError(f"no usable API spec in {', '.join(map(str, paths))}")
    frame = specs_to_frame(load.specs)
    write_parquet(frame, storage.path("catalog", "api_catalog.parquet"))
    refused = pl.DataFrame(
        [vars(r) for r in load.refused], schema={"origin": pl.String, "name": pl.String, "reason": pl.String}
    )
    write_parquet(refused, storage.path("catalog", "refused.parquet"))
    for r in load.refused:
        context.log.warning(f"refused spec {r.name} from {r.origin}: {r.reason}")
    by_tag = frame.with_columns(pl.col("tags").list.first().alias("tag")).group_by("tag").len().sort("tag")
    return MaterializeResult(
        metadata={
            "apis": len(load.specs),
            "refused": len(load.refused),
            "duplicates_dropped": load.duplicates,
            "sources": MetadataValue.json([str(p) for p in paths]),
            "apis_by_tag": MetadataValue.md(markdown_table(by_tag)),
            "preview": MetadataValue.md(markdown_table(frame.select("name", "description").head(8))),
        }
    )


class GraphSettings(Config):
    similarity_threshold: float = 0.35
    resolution: float = 1.0
    min_domain_size: int = 4
    seed: int = 0
    vertical: list[str] = ["retail", "airline", "telecom"]
    embedder: str = "tfidf"  # `tfidf` (offline) or `openai` (an OpenAI-compatible embeddings endpoint)
    embeddings_base_url: str = ""
    embeddings_model: str = ""
    embeddings_api_key_env: str = "OPENAI_API_KEY"
    max_verified_edges: int = 2000  # with `llm.edge_check = openai`: how many edges the model is asked about

    def graph_config(self) -> GraphConfig:
        return GraphConfig(
            similarity_threshold=self.similarity_threshold,
            resolution=self.resolution,
            min_domain_size=self.min_domain_size,
            seed=self.seed,
        )

    def make_embedder(self) -> Embedder:
        if self.embedder == "tfidf":
            return TfidfEmbedder()
        if self.embedder == "openai":
            return OpenAIEmbedder(
                base_url=self.embeddings_base_url,
                model=self.embeddings_model,
                api_key_env=self.embeddings_api_key_env,
            )
        raise ValueError(f"unknown embedder {self.embedder!r} (tfidf | openai)")


@asset(group_name="catalog", deps=[api_catalog])
def tool_graph(config: GraphSettings, storage: StorageRoot, llm: LanguageModels) -> MaterializeResult:
    """Tools joined by parameter similarity (`similar`) and by outputs feeding inputs (`feeds`); with an
    edge-checking model configured, edges it rejects are dropped and every verdict is kept."""
    specs = frame_to_specs(pl.read_parquet(storage.path("catalog", "api_catalog.parquet")))
    embedder = config.make_embedder()
    nodes, edges = build_graph(specs, config.graph_config(), embedder)
    metadata: dict = {"embedder": embedder.name, "edges_found": edges.height}
    checker = llm.edge_backend()
    if checker is not None:
        edges, verdicts = asyncio.run(verify_edges(edges, specs, checker, config.max_verified_edges))
        write_parquet(verdicts, storage.path("graph", "edge_verdicts.parquet"))
        metadata["edge_verdicts"] = MetadataValue.md(
            markdown_table(verdicts.group_by("kind", "verdict").len().sort("kind", "verdict"))
        )
    write_parquet(nodes, storage.path("graph", "nodes.parquet"))
    write_parquet(edges, storage.path("graph", "edges.parquet"))
    kinds = edges.group_by("kind").len().sort("kind")
    return MaterializeResult(
        metadata={
            "nodes": nodes.height,
            "edges": edges.height,
            "edges_by_kind": MetadataValue.md(markdown_table(kinds)),
            **metadata,
        }
    )


@asset(group_name="catalog", deps=[tool_graph])
def domains(context: AssetExecutionContext, config: GraphSettings, storage: StorageRoot) -> MaterializeResult:
    """Louvain communities of the tool graph; adds and retires the `domain` partitions to match."""
    specs = frame_to_specs(pl.read_parquet(storage.path("catalog", "api_catalog.parquet")))
    edges = pl.read_parquet(storage.path("graph", "edges.parquet"))
    frame, dropped = assign_domains(specs, edges, config.graph_config(), tuple(config.vertical))
    write_parquet(frame, storage.path("domains", "domains.parquet"))
    instance = context.instance
    existing = set(instance.get_dynamic_partitions(domain_partitions.name))
    wanted = frame["slug"].to_list()
    added = [s for s in wanted if s not in existing]
    retired = sorted(existing - set(wanted))
    if added:
        instance.add_dynamic_partitions(domain_partitions.name, added)
    for slug in retired:
        instance.delete_dynamic_partition(domain_partitions.name, slug)
    return MaterializeResult(
        metadata={
            "domains": frame.height,
            "vertical_domains": MetadataValue.json(frame.filter(pl.col("vertical"))["slug"].to_list()),
            "partitions_added": MetadataValue.json(added),
            "partitions_retired": MetadataValue.json(retired),
            "tools_without_domain": len(dropped),
            "domain_sizes": MetadataValue.md(
                markdown_table(frame.select("slug", "name", "n_tools", "vertical"))
            ),
        }
    )
