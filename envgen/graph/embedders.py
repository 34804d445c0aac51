"""Turn tool descriptions into vectors for the tool graph: TF-IDF offline, or any embeddings endpoint.

An embedder maps a list of texts to one row per text (sparse or dense); `envgen.graph.similarity` normalises
rows itself, so an embedder need not. TF-IDF is the offline default: it needs no model and, on API
specs, whose parameter names are distinctive, it separates domains well. An OpenAI-compatible embeddings
endpoint (OpenAI, vLLM `--task embed`, TEI, Ollama) captures synonyms TF-IDF misses (`zip` vs `postcode`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer


@runtime_checkable
class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> sp.spmatrix | np.ndarray: ...


@dataclass
class TfidfEmbedder:
    """Sublinear TF-IDF over identifier-like tokens (so `order_id` survives as one token)."""

    name: str = "tfidf"

    def embed(self, texts: list[str]) -> sp.csr_matrix:
        vec = TfidfVectorizer(
            stop_words="english",
            sublinear_tf=True,
            token_pattern=r"[A-Za-z][A-Za-z_]+",
            dtype=np.float32,
        )
        return vec.fit_transform(texts).tocsr()


@dataclass
class OpenAIEmbedder:
    """Any OpenAI-compatible `/embeddings` endpoint, in batches; the key comes from the environment."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = 256
    timeout_s: float = 120.0
    max_retries: int = 5
    http_client: object | None = None  # an httpx.Client, for tests and proxies

    def __post_init__(self) -> None:
        if not (self.base_url and self.model):
            raise ValueError("the openai embedder needs base_url and model")
        self.name = f"openai:{self.model}"

    def embed(self, texts: list[str]) -> np.ndarray:
        from openai import OpenAI

        client = OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(self.api_key_env) or "not-needed",
            timeout=self.timeout_s,
            max_retries=self.max_retries,
            **({"http_client": self.http_client} if self.http_client is not None else {}),
        )
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            resp = client.embeddings.create(model=self.model, input=batch)
            got = sorted(resp.data, key=lambda d: d.index)
            if len(got) != len(batch):
                raise ValueError(
                    f"embeddings endpoint {self.base_url} returned {len(got)} vectors for the {len(batch)} "
                    f"texts starting at #{start}"
                )
            rows += [d.embedding for d in got]
        out = np.asarray(rows, dtype=np.float32)
        if out.ndim != 2:
            raise ValueError(f"embeddings endpoint {self.base_url} returned vectors of different lengths")
        return out
