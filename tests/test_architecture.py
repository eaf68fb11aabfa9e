"""The package's layout as ARCHITECTURE.md draws it, checked on the source with ``ast``.

Every module of ``cpp_tracker`` and ``benchmarks`` is parsed (never imported); every import,
at the top, in a function or under TYPE_CHECKING, is a dependency. Checked: the folders
import only what the table in ARCHITECTURE.md allows; no import cycle between modules or
between folders; no private name (``_x``) used across folders; the benchmarks use public
names only and do not patch ``sys.path``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "cpp_tracker"

#: Which folders each folder may import (ARCHITECTURE.md, "Packages"). Every folder may
#: also import ``errors``, ``processes`` and ``cpp_tracker.__version__``.
ALLOWED = {
    "geometry": set(),
    "config": {"geometry"},
    "video": set(),
    "results": {"config"},
    "tracking": {"video", "config", "results"},
    "analysis": {"geometry", "config"},
    "visual": {"tracking", "analysis", "results", "video", "geometry", "config"},
    "runs": {"tracking", "analysis", "results", "visual", "video", "geometry", "config"},
    "experiment": {"analysis", "results", "visual", "config"},
    "setup": {"visual", "tracking", "results", "video", "geometry", "config"},
    "synthetic": set(),
    "cli": {"runs", "experiment", "setup", "visual", "tracking", "analysis", "results",
            "video", "geometry", "config"},
}
EVERYONE = {"errors", "processes", PKG}  # cpp_tracker itself: only its __version__
ENTRY = {"__main__": {"cli"}}  # python -m cpp_tracker

#: Violations found when the layout was made; each is a job for the module's owner.
#: Remove an entry when it is fixed (the tests fail on a stale entry, so the set only
#: shrinks). (kind, where, what).
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()


def _modules(folder: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules(ROOT / PKG)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _part(module: str) -> str:
    """The folder a module belongs to: tracking, config, ..., errors, __main__ or cpp_tracker."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PKG


def _target(base: str, name: str | None) -> str:
    """The module an import reaches: ``from base import name`` may import a submodule."""
    if name and f"{base}.{name}" in MODULES:
        return f"{base}.{name}"
    return base


def _imports(module: str, path: Path):
    """(line, imported module, imported name or None, alias bound) of every import."""
    package = _package_of(module, path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PKG:
                continue
            for alias in node.names:
                yield node.lineno, _target(base, alias.name), alias.name, alias.asname or alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PKG:
                    yield node.lineno, alias.name, None, alias.asname


def _private(name: str | None) -> bool:
    return bool(name) and name.startswith("_") and not name.startswith("__")


def _private_uses(module: str, path: Path):
    """(line, what) for every private name of another folder this file uses: imported by
    name, or read off an imported module (``pipeline._now``)."""
    here = _part(module) if module.startswith(PKG) else module
    aliases = {}
    for line, target, name, bound in _imports(module, path):
        if target.split(".")[0] != PKG or _part(target) == here:
            continue
        if name is not None and target.endswith("." + name):
            aliases[bound] = target  # a module imported by name
        elif name is None and bound:
            aliases[bound] = target
        elif _private(name):
            yield line, f"{target}.{name}"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and _private(node.attr)):
            yield node.lineno, f"{aliases[node.value.id]}.{node.attr}"


def _edges():
    """(importer, imported, line) between modules of the package."""
    for module, path in MODULES.items():
        for line, target, _, _ in _imports(module, path):
            if target in MODULES and target != module:
                yield module, target, line


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _check(kind: str) -> None:
    found = CHECKS[kind]()
    known = {(where, what) for k, where, what in KNOWN_VIOLATIONS if k == kind}
    new = sorted(set(found) - known)
    fixed = sorted(known - set(found))
    lines = [f"  {where}" + (f" -> {what}" if what else "") + found[(where, what)]
             for where, what in new]
    assert not new, f"{kind}: new violations of ARCHITECTURE.md:\n" + "\n".join(lines)
    assert not fixed, (f"{kind}: fixed, remove from KNOWN_VIOLATIONS: "
                       + ", ".join(f"{w} -> {x}" if x else w for w, x in fixed))


def test_every_folder_is_in_the_table():
    parts = {_part(m) for m in MODULES} - EVERYONE - set(ENTRY)
    missing = sorted(parts - set(ALLOWED))
    assert not missing, f"add {missing} to ALLOWED and to ARCHITECTURE.md"


def test_the_table_is_the_one_in_architecture_md():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    items = re.findall(r"^- \*\*`(\w+)/`\*\* (.*?)(?=^- |^$)", text, re.M | re.S)
    written = {}
    for folder, line in items:
        allowed = " ".join(line.split()).partition("May import ")[2].partition("(")[0]
        written[folder] = set(re.findall(r"`(\w+)`", allowed))
    assert written == ALLOWED


def test_the_table_points_one_way():
    assert _cycles(ALLOWED) == []


def test_the_table_points_down_the_levels_of_architecture_md():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = re.search(r"## Dependency direction\n\n```\n(.*?)```", text, re.S)[1]
    level = {}
    for number, names in re.findall(r"^ *(\d+) +(.*)$", block, re.M):
        level.update((name, int(number)) for name in names.split())
    assert set(level) == set(ALLOWED) - {"synthetic"}
    upward = [(a, b) for a, allowed in ALLOWED.items() for b in allowed if level[b] >= level[a]]
    assert upward == []


def _direction_violations() -> dict[tuple[str, str], str]:
    found = {}
    for module, target, line in _edges():
        here, there = _part(module), _part(target)
        if here == there or there in EVERYONE:
            continue
        if there not in ALLOWED.get(here, ENTRY.get(here, set())):
            found[(module, target)] = f"  (line {line})"
    return found


def _module_cycles() -> dict[tuple[str, str], str]:
    graph: dict[str, set[str]] = {}
    for module, target, _ in _edges():
        graph.setdefault(module, set()).add(target)
    return {(" <-> ".join(c), ""): "" for c in _cycles(graph)}


def _folder_cycles() -> dict[tuple[str, str], str]:
    graph: dict[str, set[str]] = {}
    for module, target, _ in _edges():
        if target != PKG:  # cpp_tracker's own __init__ imports nothing when loaded
            graph.setdefault(_part(module), set()).add(_part(target))
    for part in graph:
        graph[part].discard(part)
    return {(" <-> ".join(c), ""): "" for c in _cycles(graph)}


def _private_violations() -> dict[tuple[str, str], str]:
    found = {}
    for module, path in MODULES.items():
        for line, what in _private_uses(module, path):
            found[(module, what)] = f"  (line {line})"
    return found


def _patches_sys_path(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        target = node.func.value if isinstance(node, ast.Call) and isinstance(
            node.func, ast.Attribute) else None
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            target = next((t for t in targets if isinstance(t, ast.Attribute)), None)
        if (isinstance(target, ast.Attribute) and target.attr == "path"
                and isinstance(target.value, ast.Name) and target.value.id == "sys"):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "addsitedir"):
            return True
    return False


def _benchmarks() -> list[tuple[str, Path]]:
    return [(p.relative_to(ROOT).as_posix(), p) for p in sorted((ROOT / "benchmarks").glob("*.py"))]


def _benchmark_private() -> dict[tuple[str, str], str]:
    return {(name, what): f"  (line {line})" for name, path in _benchmarks()
            for line, what in _private_uses(name, path)}


def _benchmark_sys_path() -> dict[tuple[str, str], str]:
    return {(name, ""): "" for name, path in _benchmarks()
            if _patches_sys_path(ast.parse(path.read_text(encoding="utf-8")))}


CHECKS = {
    "direction": _direction_violations,
    "module cycle": _module_cycles,
    "folder cycle": _folder_cycles,
    "private": _private_violations,
    "benchmark private": _benchmark_private,
    "benchmark sys.path": _benchmark_sys_path,
}


def violations() -> set[tuple[str, str, str]]:
    """Every violation found, as (kind, where, what): the form of KNOWN_VIOLATIONS."""
    return {(kind, where, what) for kind, find in CHECKS.items() for where, what in find()}


def test_folders_import_only_what_the_table_allows():
    _check("direction")


def test_no_import_cycle_between_modules():
    _check("module cycle")


def test_no_import_cycle_between_folders():
    _check("folder cycle")


def test_no_private_name_across_folders():
    _check("private")


def test_benchmarks_use_public_names():
    _check("benchmark private")


def test_benchmarks_leave_sys_path_alone():
    _check("benchmark sys.path")
