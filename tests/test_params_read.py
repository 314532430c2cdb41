"""Every leaf of params.yaml is read by some code (a key nobody reads still reruns stages when changed).

A leaf key path (`track2.lr`, `pose.mediapipe.workers`) counts as read when its top-level section
and its last key name both appear in the code under miga/ or stages/, found with `ast`, as

- a string constant (`cfg["lr"]`, `cfg.get("lr")`, `section(params, "track2")`, a name in a tuple),
- a keyword argument of a call (`Adam(lr=...)`),
- a parameter that can be passed by keyword with a default, or a keyword-only one
  (`def backend(..., *, workers=1)`: a section splatted as `**options` lands there),
- a class-level annotated field (a dataclass filled with `from_params(section)`),

or when dvc.yaml interpolates the key path (`${synth.imigue_root}`, `${item.root}` in a foreach
over `${datasets}`). Plain attribute access and positional parameters do not count: names like
`features` are common variables. Lists are leaves (their items, e.g. `ensemble.members`, are
read wholesale), and intermediate keys are not checked (`datasets.<name>`, `pose.<backend>` are
looked up by a value: `--dataset`, `pose.backend`). A name-based check: a key that shares its
name with one the code reads passes; it catches keys nobody reads under any name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CODE_ROOTS = ("miga", "stages")
_VAR = re.compile(r"\$\{\s*([^}]+?)\s*\}")

# Key paths read in a way the check above cannot see ("*" matches one key). Each entry needs its
# reason; empty now: ensemble.members (a list) and datasets.<name>.* (string keys) pass as they are.
ALLOWED: dict[str, str] = {}


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


def check_params(params_path: Path = REPO / "params.yaml", dvc_path: Path = REPO / "dvc.yaml") -> list[str]:
    params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))
    dvc = yaml.safe_load(Path(dvc_path).read_text(encoding="utf-8")) if Path(dvc_path).is_file() else {}
    return unread_keys(params, code_names(), dvc_references(dvc, params))


def test_every_params_key_is_read():
    unread = check_params()
    assert not unread, ("params.yaml keys that no code under miga/ or stages/ reads (nor dvc.yaml interpolates); "
                        f"remove them or read them: {', '.join(unread)}")


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
