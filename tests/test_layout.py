"""The layout keeps the method's order: envgen's stages import only stages below them, the libraries never
import the Dagster layer, and no module sits loose in `envgen/`.

The checker reads imports with `ast` (function-level imports included), so it sees what `import` would do
without importing anything; the second test proves it catches an upward import in a copy of the tree.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Rank of each envgen stage; a stage may import its own modules and stages of a lower rank only.
STAGES = {"catalog": 0, "llm": 0, "graph": 1, "environment": 2, "tasks": 3, "simulate": 4, "funnel": 5}
# Top-level packages the libraries must never import: the Dagster layer and Dagster itself.
LIBRARIES = ("envgen", "train", "evals")
FORBIDDEN_IN_LIBRARIES = ("agentscaler_assets", "dagster")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def layout_violations(root: Path) -> list[str]:
    """Every import in `root` (a checkout) that breaks the layout, as `file:line: reason`."""
    problems = []
    envgen = root / "envgen"
    for path in sorted(envgen.glob("*.py")):
        if path.name != "__init__.py":
            problems.append(f"{path.relative_to(root)}: a module directly in envgen/ belongs in a stage")
    for path in sorted(envgen.rglob("*.py")):
        parts = path.relative_to(envgen).parts
        if len(parts) < 2:
            continue
        stage = parts[0]
        if stage not in STAGES:
            problems.append(f"{path.relative_to(root)}: {stage!r} is not a stage of the method")
            continue
        for line, module in imported_modules(path):
            names = module.split(".")
            if names[0] != "envgen" or len(names) < 2 or names[1] == stage:
                continue
            target = names[1]
            if STAGES.get(target, 99) >= STAGES[stage]:
                problems.append(
                    f"{path.relative_to(root)}:{line}: stage {stage!r} imports {module!r}, which is not "
                    "below it"
                )
    for package in LIBRARIES:
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path):
                if module.split(".")[0] in FORBIDDEN_IN_LIBRARIES:
                    problems.append(f"{path.relative_to(root)}:{line}: library imports {module!r}")
    return problems


def test_the_tree_keeps_the_stage_order():
    assert layout_violations(REPO) == []


def test_an_upward_import_is_caught(tmp_path):
    for package in LIBRARIES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    graph_module = tmp_path / "envgen" / "graph" / "similarity.py"
    graph_module.write_text(graph_module.read_text() + "\nfrom envgen.tasks.chains import Task\n")
    (tmp_path / "envgen" / "loose.py").write_text("")
    (tmp_path / "train" / "bad.py").write_text("def f():\n    import dagster\n")
    problems = layout_violations(tmp_path)
    assert any("envgen/graph/similarity.py" in p and "envgen.tasks.chains" in p for p in problems)
    assert any("envgen/loose.py" in p for p in problems)
    assert any("train/bad.py:2" in p and "dagster" in p for p in problems)
    assert len(problems) == 3
