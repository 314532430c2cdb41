"""dvc.yaml's code deps match what each stage imports (DVC does not follow imports).

For every stage (foreach stages expanded with params.yaml), the import closure of its
`python -m stages.X` module inside the repo is computed with `ast` (module-level and in-function
imports, `from pkg import submodule`, relative imports, the package `__init__.py` files Python
runs on the way) and every file of it must lie under one of the stage's deps. Every code dep
(under miga/ or stages/) must exist. The closure is computed afresh each run, so new modules
(e.g. under miga/datasets/) are picked up without editing this test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CODE_ROOTS = ("miga", "stages")  # deps under these are code: they must exist
_CMD = re.compile(r"\bpython(?:3)?\s+-m\s+([A-Za-z_][\w.]*)")
_VAR = re.compile(r"\$\{\s*([^}]+?)\s*\}")


# ---------------------------------------------------------------- imports -> files


def _in_repo_packages(repo: Path) -> set[str]:
    """Top-level import names that are this repo's own packages (folders with an __init__.py)."""
    return {p.parent.name for p in repo.glob("*/__init__.py") if not p.parent.name.startswith(".")}


def module_file(name: str, repo: Path = REPO) -> Path | None:
    """The file a dotted module name is loaded from inside `repo` (a module or a package's __init__.py)."""
    parts = name.split(".")
    if not parts or parts[0] not in _in_repo_packages(repo):
        return None
    base = repo.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _with_parents(name: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`, `a.b.c`]: importing a module runs every enclosing package's __init__."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _imported_names(path: Path, module: str) -> set[str]:
    """Dotted names a module's imports may load (anywhere in the file, in functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target:
                continue
            names.update(_with_parents(target))
            for alias in node.names:
                if alias.name != "*":
                    names.add(f"{target}.{alias.name}")  # kept only when it is a submodule (has a file)
    return names


def import_closure(module: str, repo: Path = REPO) -> dict[str, Path]:
    """Every in-repo module `python -m module` can import: {dotted name: file}."""
    todo = _with_parents(module)
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, repo)
        if path is None:
            continue
        seen[name] = path
        todo.extend(n for n in _imported_names(path, name) if n not in seen)
    return seen


# ---------------------------------------------------------------- dvc.yaml -> stages


def _lookup(expr: str, params: dict, key=None, item=None):
    if expr == "key":
        return key
    parts = expr.split(".")
    value = item if parts[0] == "item" else params
    for part in parts[1:] if parts[0] == "item" else parts:
        value = value[part]
    return value


def _expand(value, params: dict, key=None, item=None):
    """Resolve `${...}` (params.yaml keys, foreach `${key}` / `${item...}`) in strings, lists and dicts."""
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), params, key, item)
        return _VAR.sub(lambda m: str(_lookup(m.group(1), params, key, item)), value)
    if isinstance(value, list):
        return [_expand(v, params, key, item) for v in value]
    if isinstance(value, dict):
        return {_expand(k, params, key, item): _expand(v, params, key, item) for k, v in value.items()}
    return value


def dvc_stages(dvc_path: Path = REPO / "dvc.yaml", params_path: Path = REPO / "params.yaml") -> dict[str, dict]:
    """{stage name (`name@key` for foreach stages): stage definition with ${...} resolved}."""
    dvc = yaml.safe_load(dvc_path.read_text(encoding="utf-8"))
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    params = {**params, **{k: v for d in dvc.get("vars", []) if isinstance(d, dict) for k, v in d.items()}}
    stages = {}
    for name, stage in dvc["stages"].items():
        if "foreach" in stage:
            items = _expand(stage["foreach"], params)
            pairs = items.items() if isinstance(items, dict) else ((str(i), i) for i in items)
            for key, item in pairs:
                stages[f"{name}@{key}"] = _expand(stage["do"], params, key, item)
        else:
            stages[name] = _expand(stage, params)
    return stages


def _dep_paths(stage: dict) -> list[str]:
    return [next(iter(d)) if isinstance(d, dict) else str(d) for d in stage.get("deps", [])]


def uncovered_files(stage: dict, repo: Path = REPO) -> tuple[str, list[str]]:
    """(entry module, the closure's files no dep covers, relative to the repo)."""
    match = _CMD.search(stage["cmd"])
    assert match, f"cmd is not `python -m MODULE ...`: {stage['cmd']!r}"
    module = match.group(1)
    deps = [Path(d.rstrip("/")) for d in _dep_paths(stage)]
    files = sorted({p.relative_to(repo) for p in import_closure(module, repo).values()})
    missing = [str(f) for f in files if not any(f == d or d in f.parents for d in deps)]
    return module, missing


STAGES = dvc_stages()


def test_every_stage_runs_an_in_repo_module():
    assert STAGES
    for name, stage in STAGES.items():
        match = _CMD.search(stage["cmd"])
        assert match and module_file(match.group(1)) is not None, f"{name}: cmd runs no module of the repo: {stage['cmd']!r}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_its_import_closure(name):
    module, missing = uncovered_files(STAGES[name])
    assert not missing, (
        f"dvc.yaml stage {name!r} (python -m {module}) imports files none of its deps cover; "
        f"add them (or their folder) to its deps: {', '.join(missing)}"
    )


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_code_deps_exist(name):
    stale = [d for d in _dep_paths(STAGES[name])
             if Path(d).parts and Path(d).parts[0] in CODE_ROOTS and not (REPO / d).exists()]
    assert not stale, f"dvc.yaml stage {name!r} lists code deps that do not exist: {', '.join(stale)}"


# ---------------------------------------------------------------- the checker itself


def test_closure_follows_submodules_relative_and_function_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (tmp_path / "entry").mkdir()
    (tmp_path / "entry" / "__init__.py").write_text("")
    (tmp_path / "entry" / "main.py").write_text("from pkg import sub\nimport os\n\ndef f():\n    import pkg.late\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .inner import thing\nfrom . import sibling\n")
    (pkg / "sub" / "inner.py").write_text("from ..helpers import x\nthing = 1\n")
    (pkg / "sub" / "sibling.py").write_text("")
    (pkg / "helpers.py").write_text("x = 1\n")
    (pkg / "late.py").write_text("")
    (pkg / "unused.py").write_text("")
    files = {str(p.relative_to(tmp_path)) for p in import_closure("entry.main", tmp_path).values()}
    assert files == {"entry/__init__.py", "entry/main.py", "pkg/__init__.py", "pkg/sub/__init__.py",
                     "pkg/sub/inner.py", "pkg/sub/sibling.py", "pkg/helpers.py", "pkg/late.py"}
    stage = {"cmd": "python -m entry.main --x 1", "deps": ["entry/main.py", "pkg/sub", "pkg/helpers.py"]}
    assert uncovered_files(stage, tmp_path) == ("entry.main", ["entry/__init__.py", "pkg/__init__.py", "pkg/late.py"])


def test_foreach_stages_are_expanded_from_params(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    foreach: ${datasets}\n    do:\n      cmd: python -m stages.x --d ${key}\n"
        "      deps:\n        - ${item.root}\n        - data/${key}/m.parquet\n        - ${other.path}\n")
    (tmp_path / "params.yaml").write_text("datasets:\n  a: {root: raw/a}\n  b: {root: raw/b}\nother: {path: p}\n")
    stages = dvc_stages(tmp_path / "dvc.yaml", tmp_path / "params.yaml")
    assert sorted(stages) == ["s@a", "s@b"]
    assert stages["s@b"]["cmd"] == "python -m stages.x --d b"
    assert _dep_paths(stages["s@b"]) == ["raw/b", "data/b/m.parquet", "p"]
