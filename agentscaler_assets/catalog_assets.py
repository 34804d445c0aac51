"""Group `catalog`: API specs in, tool graph, domains (which register the `domain` partitions)."""

import asyncio
from typing import Literal

import polars as pl
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from agentscaler_assets.artefacts import Artefact
from agentscaler_assets.partitions import domain_partitions
from agentscaler_assets.resources import LanguageModels, StorageRoot
from agentscaler_assets.source_assets import (
    api_specs,
    domain_spec_versions,
    report_domain_spec_versions,
    spec_sources,
)
from agentscaler_assets.tables import markdown_table, write_parquet
from agentscaler_assets.versions import code_version, content_version
from envgen.catalog.loaders import load_paths, refused_specs_frame
from envgen.catalog.spec import ToolSpec, frame_to_specs, specs_to_frame
from envgen.environment.admission import (
    MIN_TOOLS,
    admit_domains,
    admitted_share,
    refusal_reasons,
    size_histogram,
    source_funnel,
)
from envgen.funnel.contamination import BenchmarkTool, closest_domains
from envgen.graph.edge_verify import verify_edges
from envgen.graph.embedders import Embedder, OpenAIEmbedder, TfidfEmbedder
from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph
from envgen.tasks.chains import mark_heldout_domains
from evals.benchmark_tools import TAU2_DOMAINS, tau2_tool_schemas
from evals.tau2 import tau2_missing_reason


class CatalogConfig(Config):
    """Spec files or folders to read; empty means the bundled catalog."""

    sources: list[str] = []


HERE = __name__  # each asset's code version covers its own module


@asset(group_name="catalog", deps=[api_specs], code_version=code_version(HERE, "envgen.catalog"))
def api_catalog(
    context: AssetExecutionContext, config: CatalogConfig, storage: StorageRoot
) -> MaterializeResult:
    """Every API spec normalised to a ToolSpec row; refused specs are listed with their reason."""
    paths = spec_sources(config.sources)
    load = load_paths(paths)
    if not load.specs:
        raise ValueError(f"no usable API spec in {', '.join(map(str, paths))}")
    frame = specs_to_frame(load.specs)
    write_parquet(frame, storage.artefact(Artefact.CATALOG))
    refused = refused_specs_frame(load)
    write_parquet(refused, storage.artefact(Artefact.REFUSED_SPECS))
    for r in load.refused:
        context.log.warning(f"refused spec {r.name} from {r.origin}: {r.reason}")
    by_tag = frame.with_columns(pl.col("tags").list.first().alias("tag")).group_by("tag").len().sort("tag")
    return MaterializeResult(
        data_version=content_version(
            storage.artefact(Artefact.CATALOG), storage.artefact(Artefact.REFUSED_SPECS)
        ),
        metadata={
            "apis": len(load.specs),
            "refused": len(load.refused),
            "duplicates_dropped": load.duplicates,
            "variants_dropped": len(load.variants),
            "sources": MetadataValue.json([str(p) for p in paths]),
            "apis_by_tag": MetadataValue.md(markdown_table(by_tag)),
            "preview": MetadataValue.md(markdown_table(frame.select("name", "description").head(8))),
        },
    )


def read_domains(storage: StorageRoot) -> pl.DataFrame:
    """The domains table `domains` wrote, less the domains whose partition failed in this main job
    (`StorageRoot.failed_domains`); one written before general domains were held out has no `heldout`
    column, and none of its domains is held out."""
    table = pl.read_parquet(storage.artefact(Artefact.DOMAINS))
    table = table.filter(~pl.col("slug").is_in(storage.failed_domains))
    return table if "heldout" in table.columns else table.with_columns(heldout=pl.lit(False))


class EmbedderSettings(Config):
    """Which vectoriser turns tools into vectors: the tool graph's, and the contamination report's (which
    must use the same one for its similarities to mean the same)."""

    embedder: str = "tfidf"  # `tfidf` (offline) or `openai` (an OpenAI-compatible embeddings endpoint)
    embeddings_base_url: str = ""
    embeddings_model: str = ""
    embeddings_api_key_env: str = "OPENAI_API_KEY"

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


class GraphSettings(EmbedderSettings):
    similarity_threshold: float = 0.35
    resolution: float = 1.0
    min_domain_size: int = 4
    max_domain_size: int = 40
    family_weight: float = 0.5  # edge weight between tools of one API family (0: none)
    seed: int = 0
    vertical: list[str] = ["retail", "airline", "telecom"]
    max_verified_edges: int = 2000  # with `llm.edge_check = openai`: how many edges the model is asked about

    def graph_config(self) -> GraphConfig:
        return GraphConfig(
            similarity_threshold=self.similarity_threshold,
            resolution=self.resolution,
            min_domain_size=self.min_domain_size,
            max_domain_size=self.max_domain_size,
            family_weight=self.family_weight,
            seed=self.seed,
        )


@asset(
    group_name="catalog",
    deps=[api_catalog],
    code_version=code_version(HERE, "envgen.graph", "envgen.catalog"),
)
def tool_graph(config: GraphSettings, storage: StorageRoot, llm: LanguageModels) -> MaterializeResult:
    """Tools joined by parameter similarity (`similar`) and by outputs feeding inputs (`feeds`); with an
    edge-checking model configured, edges it rejects are dropped and every verdict is kept."""
    specs = frame_to_specs(pl.read_parquet(storage.artefact(Artefact.CATALOG)))
    embedder = config.make_embedder()
    nodes, edges = build_graph(specs, config.graph_config(), embedder)
    metadata: dict = {"embedder": embedder.name, "edges_found": edges.height}
    checker = llm.edge_backend()
    if checker is not None:
        edges, verdicts = asyncio.run(verify_edges(edges, specs, checker, config.max_verified_edges))
        write_parquet(verdicts, storage.artefact(Artefact.EDGE_VERDICTS))
        metadata["edge_verdicts"] = MetadataValue.md(
            markdown_table(verdicts.group_by("kind", "verdict").len().sort("kind", "verdict"))
        )
    write_parquet(nodes, storage.artefact(Artefact.GRAPH_NODES))
    write_parquet(edges, storage.artefact(Artefact.GRAPH_EDGES))
    kinds = edges.group_by("kind").len().sort("kind")
    return MaterializeResult(
        data_version=content_version(
            *(
                storage.artefact(a)
                for a in (Artefact.GRAPH_NODES, Artefact.GRAPH_EDGES, Artefact.EDGE_VERDICTS)
            )
        ),
        metadata={
            "nodes": nodes.height,
            "edges": edges.height,
            "edges_by_kind": MetadataValue.md(markdown_table(kinds)),
            **metadata,
        },
    )


class DomainSettings(GraphSettings):
    """Louvain settings (shared with `tool_graph`) plus how domains are admitted as environments."""

    min_tools: int = MIN_TOOLS  # a domain with fewer working tools gets no partition
    # General domains held out whole (no training task, every task held out): general held-out scores then
    # measure transfer to tools no training set contained.
    heldout_domains: int = Field(default=4, ge=0)
    workers: int = 2  # processes that build and probe the domains' environments
    # When no domain is named like `vertical` (a user's own catalog), phase 2 still needs vertical
    # domains: `similarity` takes, for each of tau2's domains, the admitted domain whose tools are most
    # like its tools; `none` leaves the vertical set empty.
    vertical_fallback: Literal["similarity", "none"] = "similarity"


def similar_vertical(
    accepted: pl.DataFrame, specs: list[ToolSpec], embedder: Embedder
) -> tuple[pl.DataFrame, str]:
    """The admitted domains with `vertical` set on the one most like each of tau2's domains (its agent
    tools, from the installed package), and how they were chosen; unchanged, with the reason, when tau2's
    tools cannot be had."""
    reason = tau2_missing_reason()
    if reason:
        return accepted, f"none: tau2's tools are not available ({reason})"
    tools = [BenchmarkTool.from_openai(d, t) for d in TAU2_DOMAINS for t in tau2_tool_schemas(d)]
    domain_of = {t: slug for slug, ts in zip(accepted["slug"], accepted["tools"], strict=True) for t in ts}
    chosen = closest_domains(specs, domain_of, tools, embedder)
    slugs = [domain for domain, _ in chosen.values()]
    said = ", ".join(f"{bench} -> {domain} ({sim:.2f})" for bench, (domain, sim) in sorted(chosen.items()))
    return accepted.with_columns(vertical=pl.col("slug").is_in(slugs)), f"similarity to tau2's tools: {said}"


@asset(
    group_name="catalog",
    deps=[tool_graph],
    code_version=code_version(
        HERE,
        "envgen.graph",
        "envgen.catalog",
        "envgen.environment",
        "envgen.tasks.chains",
        "envgen.funnel.contamination",
    ),
)
def domains(
    context: AssetExecutionContext, config: DomainSettings, storage: StorageRoot
) -> MaterializeResult:
    """Louvain communities of the tool graph, each built and probed once: domains whose tools run get a
    `domain` partition (with only their working tools); partitions of vanished domains are retired.
    The metadata's funnel says where every API went, and why tools and domains were refused."""
    specs = frame_to_specs(pl.read_parquet(storage.artefact(Artefact.CATALOG)))
    edges = pl.read_parquet(storage.artefact(Artefact.GRAPH_EDGES))
    found, dropped = assign_domains(specs, edges, config.graph_config(), tuple(config.vertical))
    step = max(1, found.height // 10)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            context.log.info(f"domains built and probed: {done}/{total}")

    admission = admit_domains(
        found, specs, dropped, min_tools=config.min_tools, workers=config.workers, progress=progress
    )
    refused_specs = pl.read_parquet(storage.artefact(Artefact.REFUSED_SPECS))
    if "kind" not in refused_specs.columns:  # written before repeats were recorded
        refused_specs = refused_specs.with_columns(pl.lit("refused").alias("kind"))
    by_source = source_funnel(specs, refused_specs, found, dropped, admission)
    accepted, vertical_by = admission.domains, "names"
    if not accepted["vertical"].any() and accepted.height and config.vertical_fallback == "similarity":
        accepted, vertical_by = similar_vertical(accepted, specs, config.make_embedder())
        context.log.info(f"vertical domains chosen by similarity: {vertical_by}")
    frame = mark_heldout_domains(accepted, config.heldout_domains, config.seed)
    held = int(frame["heldout"].sum())
    if held < config.heldout_domains:
        context.log.warning(
            f"held out {held} general domains, not {config.heldout_domains}: one must be left to train on"
        )
    write_parquet(frame, storage.artefact(Artefact.DOMAINS))
    write_parquet(admission.refused_tools, storage.artefact(Artefact.REFUSED_TOOLS))
    write_parquet(admission.refused_domains, storage.artefact(Artefact.REFUSED_DOMAINS))
    for r in admission.refused_domains.iter_rows(named=True):
        context.log.warning(f"domain {r['slug']} refused: {r['reason']}")
    instance = context.instance
    existing = set(instance.get_dynamic_partitions(domain_partitions.name))
    wanted = frame["slug"].to_list()
    added = [s for s in wanted if s not in existing]
    retired = sorted(existing - set(wanted))
    if added:
        instance.add_dynamic_partitions(domain_partitions.name, added)
    for slug in retired:
        instance.delete_dynamic_partition(domain_partitions.name, slug)
    changed = report_domain_spec_versions(instance, domain_spec_versions(storage))
    refused = {}
    if admission.refused_tools.height:
        refused["refused_tool_reasons"] = MetadataValue.md(
            markdown_table(refusal_reasons(admission.refused_tools))
        )
        refused["refused_tools"] = MetadataValue.md(markdown_table(admission.refused_tools))
    if admission.refused_domains.height:
        refused["refused_domains"] = MetadataValue.md(markdown_table(admission.refused_domains))
    return MaterializeResult(
        data_version=content_version(
            *(
                storage.artefact(a)
                for a in (Artefact.DOMAINS, Artefact.REFUSED_TOOLS, Artefact.REFUSED_DOMAINS)
            )
        ),
        metadata={
            "domains": frame.height,
            "domains_changed": MetadataValue.json(changed),
            "domains_refused": admission.refused_domains.height,
            "tools_refused": admission.refused_tools.height,
            "tools_without_domain": len(dropped),
            "funnel": MetadataValue.md(markdown_table(admission.funnel)),
            "admitted_share": admitted_share(by_source),
            # offered, refused on import, in a domain, admitted, and why every lost tool was lost
            "source_funnel": MetadataValue.md(markdown_table(by_source, max_rows=200)),
            "domain_size_histogram": MetadataValue.md(
                markdown_table(size_histogram(frame["n_tools"].to_list()))
            ),
            "vertical_domains": MetadataValue.json(frame.filter(pl.col("vertical"))["slug"].to_list()),
            "vertical_chosen_by": vertical_by,
            "heldout_domains": MetadataValue.json(frame.filter(pl.col("heldout"))["slug"].to_list()),
            "partitions_added": MetadataValue.json(added),
            "partitions_retired": MetadataValue.json(retired),
            "domain_sizes": MetadataValue.md(
                markdown_table(
                    frame.select("slug", "name", "n_tools", "n_refused", "vertical", "heldout"), max_rows=60
                )
            ),
            **refused,
        },
    )
