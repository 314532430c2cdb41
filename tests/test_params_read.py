"""Every leaf of params.yaml (and of the schema, `miga.params`) is read by some code (a key nobody reads still
reruns stages when changed), and library code reads params the one way the schema allows.

A leaf key path (`track2.lr`, `pose.mediapipe.workers`) counts as read when its top-level section
and its last key name both appear in the code under miga/ or stages/, found with `ast`, as

- a string constant (`cfg["lr"]`, `section(params, "track2")`, a name in a tuple),
- a keyword argument of a call (`Adam(lr=...)`),
- a parameter that can be passed by keyword with a default, or a keyword-only one
  (`def backend(..., *, workers=1)`: a section splatted as `**options` lands there),
- a class-level annotated field (a dataclass filled with `from_params(section)`),

or when dvc.yaml interpolates the key path (`${synth.imigue_root}`, `${item.root}` in a foreach
over `${datasets}`). Plain attribute access and positional parameters do not count: names like
`features` are common variables. Lists are leaves (their items, e.g. `ensemble.members`, are
read wholesale), and intermediate keys are not checked (`datasets.<name>`, `pose.<backend>` are
looked up by a value: `--dataset`, `pose.backend`). A name-based check: a key that shares its
name with one the code reads passes; it catches keys nobody reads under any name. The keys checked are
params.yaml's laid over the schema's defaults, so a schema key that params.yaml leaves out is checked too.

The schema is the single place a default lives: library code (miga/) reads a validated tree by indexing,
`section["key"]`, never `section.get("key", default)`. Checked by name on the variables that hold params
sections in miga/ (`PARAMS_VARIABLES`): no `.get(...)` on them, and every string key they are indexed with is a
key of the schema (a typo would otherwise be a ConfigError only when that line runs).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

from miga.params import ProjectParams, Section, defaults, merged

REPO = Path(__file__).resolve().parents[1]
CODE_ROOTS = ("miga", "stages")
_VAR = re.compile(r"\$\{\s*([^}]+?)\s*\}")

# Key paths read in a way the check above cannot see ("*" matches one key). Each entry needs its
# reason; empty now: ensemble.members (a list) and datasets.<name>.* (string keys) pass as they are.
ALLOWED: dict[str, str] = {}

# Variables that hold a params section (or the whole tree, `config`) in library code, and the exceptions
# (path under the repo, variable) where such a name holds something else.
PARAMS_VARIABLES = ("options", "entry", "model", "model_params", "train", "train_params", "heatmap", "skeleton", "rgb",
                    "pose_params", "config", "params")
NOT_PARAMS: dict[tuple[str, str], str] = {
    ("miga/pose/mmpose_backend.py", "config"): "an MMEngine model config (a dict of the model's own keys), not params",
    ("miga/params.py", "params"): "the schema module itself",
    ("miga/datasets/imigue_labels.py", "entry"): "one video's rows of iMiGUE's label table",
    ("miga/emotion/pipeline.py", "train"): "the training videos' feature table",
}


def code_names(roots: Iterable[Path] = tuple(REPO / r for r in CODE_ROOTS)) -> set[str]:
    """The names under which code can read a params key (see the module doc)."""
    names: set[str] = set()
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    names.add(node.value)
                elif isinstance(node, ast.keyword) and node.arg:
                    names.add(node.arg)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    args = node.args
                    positional = args.posonlyargs + args.args
                    with_default = positional[len(positional) - len(args.defaults):] if args.defaults else []
                    names.update(a.arg for a in with_default + args.kwonlyargs if a not in args.posonlyargs)
                elif isinstance(node, ast.ClassDef):
                    names.update(s.target.id for s in node.body
                                 if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name))
    return names


def leaf_paths(params: dict, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Key paths of the leaves (non-empty mappings are walked; lists and scalars are leaves)."""
    for key, value in params.items():
        if isinstance(value, dict) and value:
            yield from leaf_paths(value, prefix + (str(key),))
        else:
            yield prefix + (str(key),)


def dvc_references(dvc: dict, params: dict) -> set[tuple[str, ...]]:
    """Key paths dvc.yaml interpolates: `${a.b}` -> ("a", "b"); `${item.x}` in `foreach: ${s}` -> (s, k, "x") per key k."""
    refs: set[tuple[str, ...]] = set()

    def strings(value) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from strings(k)
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    for stage in (dvc.get("stages") or {}).values():
        over: tuple[str, ...] | None = None
        foreach = stage.get("foreach") if isinstance(stage, dict) else None
        if isinstance(foreach, str) and (m := _VAR.fullmatch(foreach)):
            over = tuple(m.group(1).split("."))  # iterated for its keys: not a read of its leaves
        for text in strings(stage.get("do", stage) if isinstance(stage, dict) else stage):
            for expr in _VAR.findall(text):
                parts = tuple(expr.split("."))
                if parts[0] == "item" and over is not None:
                    node = params
                    for part in over:
                        node = node.get(part, {}) if isinstance(node, dict) else {}
                    refs.update(over + (str(k),) + parts[1:] for k in (node if isinstance(node, dict) else {}))
                elif parts[0] not in ("item", "key"):
                    refs.add(parts)
    return refs


def _allowed(path: tuple[str, ...], allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        parts = pattern.split(".")
        if len(parts) <= len(path) and all(p in ("*", k) for p, k in zip(parts, path)):
            return True
    return False


def unread_keys(params: dict, names: set[str], dvc_refs: set[tuple[str, ...]] = frozenset(),
                allowed: Iterable[str] = ALLOWED) -> list[str]:
    """Dotted leaf paths of `params` that no code reads (see the module doc)."""
    unread = []
    for path in leaf_paths(params):
        in_dvc = any(path[: len(ref)] == ref for ref in dvc_refs)
        if not (in_dvc or _allowed(path, allowed) or (path[0] in names and path[-1] in names)):
            unread.append(".".join(path))
    return unread


def schema_defaults() -> dict:
    """Every section's defaults from the schema (`datasets` has none: its entries are params.yaml's own)."""
    return {name: defaults(name) for name, field in ProjectParams.model_fields.items() if not field.is_required()}


def schema_keys() -> set[str]:
    """Every key name the schema knows: sections and the fields of every section model (nested ones included)."""
    import miga.params as schema

    models = [m for m in vars(schema).values() if isinstance(m, type) and issubclass(m, Section)]
    return {name for model in models for name in model.model_fields}


def check_params(params_path: Path = REPO / "params.yaml", dvc_path: Path = REPO / "dvc.yaml") -> list[str]:
    params = merged(schema_defaults(), yaml.safe_load(Path(params_path).read_text(encoding="utf-8")))
    dvc = yaml.safe_load(Path(dvc_path).read_text(encoding="utf-8")) if Path(dvc_path).is_file() else {}
    return unread_keys(params, code_names(), dvc_references(dvc, params))


def test_every_params_key_is_read():
    unread = check_params()
    assert not unread, ("params.yaml keys that no code under miga/ or stages/ reads (nor dvc.yaml interpolates); "
                        f"remove them or read them: {', '.join(unread)}")


def _params_reads(roots: Iterable[Path] = (REPO / "miga",)) -> Iterator[tuple[str, int, str, str, str]]:
    """(path, line, variable, how, key) of each `var["key"]` ("index") and `var.get(...)` ("get") on a params variable."""
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            where = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in PARAMS_VARIABLES
                        and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
                    variable, how, key = node.value.id, "index", node.slice.value
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id in PARAMS_VARIABLES):
                    variable, how = node.func.value.id, "get"
                    key = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else "?"
                else:
                    continue
                if (where, variable) not in NOT_PARAMS:
                    yield where, node.lineno, variable, how, str(key)


def test_params_yaml_keys_are_in_the_schema():
    from miga.params import load_params

    tree = load_params(REPO / "params.yaml")  # a ConfigError names a key the schema does not know
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    assert set(raw) <= set(tree) and all(set(raw[s] or {}) <= set(tree[s]) for s in raw if isinstance(raw[s], dict))


def test_library_code_indexes_params_and_never_gets_them():
    reads = list(_params_reads())
    gets = [f"{path}:{line}: {variable}.get({key!r})" for path, line, variable, how, key in reads if how == "get"]
    assert not gets, ("library code reads params by indexing (the schema fills every default); "
                      f"replace these with section[key]: {', '.join(gets)}")
    known = schema_keys() | set(ProjectParams.model_fields)
    unknown = [f"{path}:{line}: {variable}[{key!r}]" for path, line, variable, how, key in reads if how == "index" and key not in known]
    assert not unknown, f"keys indexed on params that the schema (miga/params.py) does not define: {', '.join(unknown)}"
    assert any(how == "index" for *_, how, _ in reads)  # the check sees the reads at all


def test_params_read_check_flags_gets_and_unknown_keys(tmp_path):
    (tmp_path / "m.py").write_text(
        "def f(options, entry, model, state):\n"
        "    return options['lr'], options.get('lr', 0.1), entry['tset_truth'], model.get('dropout'), state.get('x')\n")
    reads = {(variable, how, key) for _, _, variable, how, key in _params_reads([tmp_path])}
    assert reads == {("options", "index", "lr"), ("options", "get", "lr"), ("entry", "index", "tset_truth"),
                     ("model", "get", "dropout")}
    assert "tset_truth" not in schema_keys() and {"lr", "test_truth", "dropout", "track2"} <= schema_keys() | set(ProjectParams.model_fields)


def test_a_schema_key_params_yaml_leaves_out_is_checked_too(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["track1"]["heatmap"].pop("sigma", None)  # still in the schema, with its default: still checked (and read)
    fake = tmp_path / "params.yaml"
    fake.write_text(yaml.safe_dump(params, sort_keys=False))
    assert check_params(fake) == []
    assert ("track1", "heatmap", "sigma") in set(leaf_paths(merged(schema_defaults(), params)))


def test_allowlist_entries_name_existing_keys():
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for pattern in ALLOWED:
        assert any(_allowed(p, [pattern]) for p in leaf_paths(params)), f"ALLOWED entry {pattern!r} matches no params key"


def test_checker_flags_keys_nobody_reads(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["track2"]["zz_unread_knob"] = 3  # a known section, an unknown key
    params["zz_unread_section"] = {"seed": 1}  # a key name the code reads, in a section nobody reads
    params["pose"]["mediapipe"]["zz_unread_option"] = True
    fake = tmp_path / "params.yaml"
    fake.write_text(yaml.safe_dump(params, sort_keys=False))
    flagged = set(check_params(fake)) - set(check_params())
    assert flagged == {"pose.mediapipe.zz_unread_option", "track2.zz_unread_knob", "zz_unread_section.seed"}


def test_code_names_count_reads_not_variables(tmp_path):
    (tmp_path / "m.py").write_text(
        "from dataclasses import dataclass\n"
        "def run(cfg, positional, with_default=1, *, kw_only):\n"
        "    obj.attribute_only = positional\n"
        "    return cfg['by_string'], cfg.get('by_get'), call(by_keyword=1)\n"
        "@dataclass\nclass Config:\n    by_field: int = 0\n")
    names = code_names([tmp_path])
    assert {"by_string", "by_get", "by_keyword", "with_default", "kw_only", "by_field"} <= names
    assert not {"positional", "attribute_only", "cfg", "obj"} & names
    # on a parsed dict: the section must be read too; an allowlist pattern ("*": any key) exempts
    params = {"sec": {"by_string": 1, "zz": 2}, "other": {"by_get": 3}}
    assert unread_keys(params, names | {"sec"}) == ["sec.zz", "other.by_get"]
    assert unread_keys(params, names | {"sec"}, allowed=["sec.*", "other"]) == []


def test_dvc_interpolation_counts_as_read():
    params = {"synth": {"only_dvc": "a"}, "sets": {"x": {"root": "r", "zz": 1}}}
    dvc = {"stages": {"s": {"cmd": "echo ${synth.only_dvc}"},
                      "f": {"foreach": "${sets}", "do": {"cmd": "run ${key}", "deps": ["${item.root}"]}}}}
    refs = dvc_references(dvc, params)
    assert ("synth", "only_dvc") in refs and ("sets", "x", "root") in refs
    assert unread_keys(params, set(), refs) == ["sets.x.zz"]


def test_every_shipped_config_overlay_validates():
    """configs/*.yaml are overrides of params.yaml (`scripts/exp-with.sh`): each must fit the schema when laid over it."""
    from miga.params import validated

    base = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    overlays = sorted((REPO / "configs").glob("*.yaml"))
    assert overlays
    for path in overlays:
        validated(merged(base, yaml.safe_load(path.read_text(encoding="utf-8")) or {}), path)  # a ConfigError names the key
