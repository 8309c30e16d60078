"""The package structure docs/architecture.md states, enforced on the import graph.

Dependencies point one way: the CLI over stages, stages over the shared foundations, and a stage imports
another stage only where the table below allows it. Building the CLI (what `imagenot --help` does) imports
nothing heavy, so the command line answers in a fraction of a second.
"""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "imagenot"

FOUNDATIONS = {"config", "errors", "fileio", "registry", "rundir", "checkpoint", "predictions", "progress",
               "cli_options", "safepath", "escape", "lock", "__init__",
               "stats", "datacard"}
# stage -> the stages it may import (foundations are always allowed). Keep in sync with docs/architecture.md.
ALLOWED = {
    "wordnet": set(),
    "models": set(),
    "analysis": set(),
    "mining": {"wordnet"},
    "data": {"wordnet", "models"},
    "download": {"wordnet", "data", "mining"},
    "training": {"models", "data"},
    "transfer": {"training", "models", "data"},
    "evaluation": {"training", "models", "data", "wordnet"},
    "zoo": {"training", "evaluation", "models"},
    "audit": {"wordnet", "data", "models", "mining"},
    "demo": {"wordnet", "mining", "download", "data", "models", "training", "transfer", "evaluation", "analysis",
             "audit", "zoo"},
}
HEAVY = ("torch", "torchvision", "numpy", "pyarrow", "matplotlib", "scipy", "sentence_transformers", "ray", "PIL",
         "nltk", "sklearn", "pandas", "webdataset", "img2dataset", "cleanlab", "statsmodels")


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    """imagenot top-level units imported anywhere in the file (module level or inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("imagenot."):
                out.add(node.module.split(".")[1])
            elif node.module == "imagenot":
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("imagenot."))
    return out


def _graph() -> dict[str, dict[str, set[str]]]:
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in SRC.rglob("*.py"):
        unit = _unit(path)
        for target in _imports(path) - {unit}:
            graph[unit][target].add(str(path.relative_to(SRC)))
    return graph


def test_stages_import_only_what_the_architecture_allows():
    graph = _graph()
    bad = []
    for unit, targets in graph.items():
        if unit in ("cli", "__main__"):
            continue
        for target, files in targets.items():
            if target in FOUNDATIONS or target == "__version__":
                continue
            if unit in FOUNDATIONS:
                bad.append(f"foundation {unit} imports stage {target} ({', '.join(sorted(files))})")
            elif target not in ALLOWED.get(unit, set()):
                bad.append(f"{unit} imports {target} ({', '.join(sorted(files))})")
    assert not bad, "\n".join(bad)
    assert set(ALLOWED) == {u for u in graph if u not in FOUNDATIONS | {"cli", "__main__"}} | set(ALLOWED)


def test_no_stage_imports_another_stages_private_names():
    bad = []
    for path in SRC.rglob("*.py"):
        unit = _unit(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("imagenot."):
                target = node.module.split(".")[1]
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                if target != unit and private:
                    bad.append(f"{path.relative_to(SRC)} imports {node.module}.{', '.join(private)}")
    assert not bad, "\n".join(bad)


def test_building_the_cli_imports_nothing_heavy():
    code = ("import sys; from imagenot.cli import build_parser; build_parser(); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "", f"building the CLI imported {out.stdout.strip()}"
