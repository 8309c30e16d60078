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
               "cli_options", "safepath", "escape", "lock", "spec", "runtime", "stats", "datacard", "__init__"}
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
    "audit": {"wordnet", "data", "models", "mining", "training"},
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


# -- import circles ----------------------------------------------------------------------------------------
# The circles that exist today (module level or inside functions), each inside one package; #26 removes them
# and the lead empties this set as those changes land. A circle not listed here fails the test.
KNOWN_CIRCLES: set[frozenset[str]] = set()  # every circle of the refactor (issue 26) is gone: keep it so


def _module_name(path: Path, src: Path = SRC) -> str:
    rel = path.relative_to(src.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _module_graph(src: Path = SRC) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, module-level and function-level imports alike. `from P import
    name` counts as importing the module P.name where that is a module, else P itself."""
    modules = {_module_name(p, src): p for p in src.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: `from . import x`, `from ..data import y`
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
            else:
                continue
            graph[module] |= {t for t in targets if t in modules and t != module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_circle_finder_finds_a_circle_through_a_function_level_import(tmp_path: Path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("from . import a\nfrom .sub.b import f\n")
    graph = _module_graph(pkg)
    assert graph["pkg.d"] == {"pkg.a", "pkg.sub.b"}
    assert _circles(graph) == [frozenset({"pkg.a", "pkg.sub.b", "pkg.c"})]
    (pkg / "c.py").write_text("")
    assert _circles(_module_graph(pkg)) == []


def test_no_import_circle_beyond_the_known_ones():
    circles = _circles(_module_graph())
    new = [sorted(c) for c in circles if c not in KNOWN_CIRCLES]
    assert not new, f"import circle(s): {new}"
    gone = [sorted(c) for c in KNOWN_CIRCLES if c not in circles]
    assert not gone, f"no longer a circle, remove from KNOWN_CIRCLES: {gone}"


# -- file contracts ----------------------------------------------------------------------------------------
# file name -> the modules (paths under src/imagenot) that own it: only they name it in a string literal (the
# name itself or a path ending in /NAME), every other module reads and writes it through them. config.json and
# manifest.json are not listed: every stage writes its own into its output folder (fileio.write_manifest owns
# the manifest's format), so a name check cannot tell a run's record from another stage's.
FILE_CONTRACT_OWNERS = {
    # a run's record and checkpoint (imagenot.rundir, imagenot.checkpoint, imagenot.predictions)
    "result.json": {"rundir.py"},
    "metrics.jsonl": {"rundir.py"},
    "checkpoints/last.pt": {"rundir.py", "checkpoint.py"},
    "predictions.parquet": {"predictions.py"},
    # a mine folder (selected.parquet's owner in imagenot.mining)
    "selected.parquet": {"mining/selected.py", "mining/selection.py"},
    "selection.json": {"mining/selection.py"},
    "mine_stats.json": {"mining/pipeline.py"},
    "mined_classes.tsv": {"mining/pipeline.py"},
    # a dataset folder (the dataset card's owner; download writes the shards' sample table)
    "dataset.json": {"datacard.py"},
    "samples.parquet": {"download/outputs.py"},
    # the stages' own outputs that other stages read
    "audit.json": {"audit/pipeline.py"},
    "stats.json": {"analysis/report.py"},
    "zoo.json": {"zoo/run.py"},
}
# The modules that name another module's file today, per file name: #26 routes them through the owners, and
# the lead trims this table as those changes land (an entry that no longer names the file fails the test).
ALLOWED_TODAY = {
    "predictions.parquet": {"rundir.py"},
    "result.json": {"analysis/results.py"},
    "selected.parquet": {"demo/run.py", "download/card.py", "download/pipeline.py", "mining/cli.py",
                         "mining/folder.py", "mining/pipeline.py"},
    "selection.json": {"download/decide.py", "download/matches.py", "mining/folder.py"},
    "mine_stats.json": {"download/matches.py", "mining/folder.py"},
    "mined_classes.tsv": {"mining/folder.py"},
    "dataset.json": {"data/readers/files.py", "download/export.py"},
    "samples.parquet": {"audit/dataset_meta.py", "download/against.py"},
    "audit.json": {"audit/cli.py", "demo/run.py", "demo/summary.py"},
    "stats.json": {"analysis/outdir.py", "analysis/runs_table.py", "demo/run.py", "demo/summary.py"},
}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _files_named(src: Path = SRC) -> dict[str, set[str]]:
    """{contract file name: the modules with a string literal that is that name or a path ending in it}."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in src.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                for name in FILE_CONTRACT_OWNERS:
                    if node.value == name or node.value.endswith("/" + name):
                        found[name].add(path.relative_to(src).as_posix())
    return found


def test_file_names_are_found_in_paths_and_f_strings_but_not_in_prose(tmp_path: Path):
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "w.py").write_text('"""Writes result.json."""\n'
                                              'def f(out, run):\n    (out / "result.json").write_text("")\n'
                                              '    return f"{run}/audit.json", "see stats.json"\n')
    (tmp_path / "r.py").write_text('NAME = "predictions.parquet.tmp"\n')
    assert _files_named(tmp_path) == {"result.json": {"stage/w.py"}, "audit.json": {"stage/w.py"}}


def test_no_module_names_another_modules_file_contract():
    named = _files_named()
    bad = [f"{module} names {name} (owner: {', '.join(sorted(FILE_CONTRACT_OWNERS[name]))})"
           for name, modules in sorted(named.items())
           for module in sorted(modules - FILE_CONTRACT_OWNERS[name] - ALLOWED_TODAY.get(name, set()))]
    assert not bad, "\n".join(bad)
    stale = [f"{name}: {module}" for name, modules in sorted(ALLOWED_TODAY.items())
             for module in sorted(modules - named.get(name, set()))]
    assert not stale, "no longer names the file, remove from ALLOWED_TODAY:\n" + "\n".join(stale)
