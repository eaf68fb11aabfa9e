#!/usr/bin/env python3
"""Move cpp_tracker's modules into subpackages by responsibility (issue 14).

Run from anywhere, on a committed tree (``git status`` clean makes the result easy to read
and to undo with ``git reset --hard && git clean -fd``)::

    python tools/move_to_packages.py

It ``git mv``-s every module in :data:`MODULES` (a module that does not exist is skipped),
the package data in :data:`DATA_FILES` and each ``tests/unit/test_<module>*.py``; writes the
packages' ``__init__.py`` files; then rewrites every import and every reference by name
(relative and absolute imports, the lazy ``_EXPORTS`` table of ``cpp_tracker/__init__.py``,
``"cpp_tracker.x.y"`` strings such as patch targets, ``python -m`` and
``importlib.import_module`` arguments, ``cpp_tracker/x.py`` and ``tests/unit/test_x.py``
paths, the package data in ``pyproject.toml``, the module files the README names) in
``cpp_tracker/``, ``tests/``, ``benchmarks/``, ``tools/``, ``README.md`` and
``pyproject.toml`` (``ARCHITECTURE.md`` and ``tests/test_architecture.py``, which it wrote
when the layout was made, live in the repository now); and
sorts the rewritten imports with ``ruff`` when it is installed.

Only import statements and dotted names are read, never line numbers or function bodies,
so it works on a tree whose modules have changed since it was written. A second run does
nothing: every reference is first checked against the tree as it is (does the module exist,
does it define the name); only one that does not resolve is rewritten.

Standard library only. Exit status 0, or 1 when something needs a person (listed at the end).
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

# ------------------------------------------------------------------------------------------
# The layout: old module (in cpp_tracker/) -> new module. One line of reason each where the
# home is debatable.
MODULES = {
    "config": "config.settings",  # dataclasses, parsing, validation, hash
    "geometry": "geometry.chambers",  # imports nothing: config validates a file with it
    "video": "video.reader",
    "keyframes": "video.keyframes",  # run BY PATH next to the reader (with_name)
    "background": "tracking.background",  # a tracking stage; visual/setup use its median
    "tracker": "tracking.tracker",
    "segments": "tracking.segments",
    "outputs": "results.outputs",  # atomic writes + the part writer: the result folder's files
    "results": "results.stored",  # reading a stored result folder
    "record": "results.record",  # the typed run.json record (absent until it lands)
    "occupancy": "analysis.occupancy",
    "summary": "analysis.summary",
    "lighting": "analysis.lighting",  # reads the track's light_gain afterwards: not tracking
    "qc": "analysis.qc",  # flags from the stored track alone
    "pipeline": "runs.pipeline",
    "reprocess": "runs.reprocess",
    "batch": "runs.batch",
    "collect": "experiment.collect",
    "design": "experiment.design",
    "agreement": "experiment.agreement",  # raters vs tracker across results
    "propose": "setup.propose",
    "proposal_picture": "setup.proposal_picture",  # init's picture: draws with visual.preview
    "draw_page": "setup.draw_page",
    "preview": "visual.preview",
    "plots": "visual.plots",
    "review": "visual.review",
    "report": "visual.report",  # the batch report page over many results
    "synthetic": "synthetic.scenes",  # cpp_tracker.synthetic re-exports it (facade)
    "cli": "cli.commands",  # cpp_tracker.cli re-exports main (console script, -m)
}
#: Package data (in cpp_tracker/) -> new place; moved with the module that reads it.
DATA_FILES = {"draw_page.html": "setup/draw_page.html"}
#: Packages and their one-line docstrings.
PACKAGES = {
    "config": "The configuration: YAML -> frozen dataclasses, every problem with its key path.",
    "geometry": "Arenas, door lines and chambers as polygons; chambers with hysteresis.",
    "video": "Open a video: frames in decode order, luma, timestamps; the PyAV keyframe script.",
    "tracking": "Frames -> background -> per-frame track, in segments (no pandas/matplotlib).",
    "analysis": "Track -> occupancy -> summary, bins, QC, lighting: pure functions on tables.",
    "results": "The result folder: atomic writes, part files, the run record, stored results.",
    "runs": "track, reprocess, batch: the stages of a run in order, one finish step.",
    "experiment": "Many results and a design -> the experiment's table; agreement with raters.",
    "setup": "Making a config: init's proposed geometry, its picture, the draw page.",
    "visual": "Pictures and pages: preview, QC figure, review clips and overlays, report.",
    "synthetic": "Seeded CPP scenes and videos with exact ground truth (never used at run time).",
    "cli": "The command line: parsing and formatting, the only place that prints or exits.",
}
#: Packages whose __init__ re-exports their module's ``__all__`` (names that are public
#: under the package's name: ``cpp_tracker.cli:main``, ``from cpp_tracker.synthetic import
#: SceneSpec``), with a ``__main__`` for ``python -m cpp_tracker.<package>``.
FACADES = {"cli": "commands", "synthetic": "scenes"}
#: Top-level modules that stay where they are.
STAYS = ("__init__", "__main__", "errors")

PKG = "cpp_tracker"
SELF = Path(__file__).resolve()
SCAN_DIRS = ("cpp_tracker", "tests", "benchmarks", "tools")
TEXT_FILES = ("README.md", "pyproject.toml")
PLACEHOLDERS = {f"{PKG}.{p}" for p in PACKAGES if p not in FACADES}


class Tree:
    """The repository as it is now: which modules exist and what they define."""

    def __init__(self, root: Path):
        self.root = root
        self._names: dict[Path, set[str]] = {}
        self.warnings: list[str] = []
        self.changed: set[Path] = set()

    # -- modules --------------------------------------------------------------------------
    def file_of(self, module: str) -> Path | None:
        base = self.root.joinpath(*module.split("."))
        for path in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if path.is_file():
                return path
        return None

    def exists(self, module: str) -> bool:
        return self.file_of(module) is not None

    def defines(self, module: str) -> set[str]:
        """Names bound at the top of ``module`` (and the keys of a lazy _EXPORTS table)."""
        path = self.file_of(module)
        if path is None:
            return set()
        if path not in self._names:
            self._names[path] = _top_level_names(path)
        return self._names[path]

    def forget(self, path: Path) -> None:
        self._names.pop(path, None)

    def resolves(self, module: str, names: list[str]) -> bool:
        """Whether ``from module import names`` works in the tree as it is now (a name that
        is a new, empty package counts as not found: it stands for the old module)."""
        if not self.exists(module):
            return False
        for name in names:
            sub = f"{module}.{name}"
            if self.exists(sub):
                if sub in PLACEHOLDERS:
                    return False
            elif name != "*" and name not in self.defines(module):
                return False
        return True

    def new_name(self, module: str) -> str | None:
        """The new name of an old module name (``cpp_tracker.video.x`` ->
        ``cpp_tracker.video.reader.x``) if the new module exists, else None."""
        parts = module.split(".")
        if len(parts) < 2 or parts[0] != PKG or parts[1] not in MODULES:
            return None
        new = f"{PKG}.{MODULES[parts[1]]}"
        if not self.exists(new):
            return None
        return ".".join([new, *parts[2:]])

    # -- files ----------------------------------------------------------------------------
    def write(self, path: Path, text: str) -> None:
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            self.changed.add(path)
            self.forget(path)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        print(f"NEEDS A PERSON: {message}")


def _top_level_names(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError:
        return set()
    names: set[str] = set()

    def targets(node) -> None:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)

    def visit(body) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(stmt.name)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    targets(target)
                if (len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                        and stmt.targets[0].id == "_EXPORTS" and isinstance(stmt.value, ast.Dict)):
                    names.update(k.value for k in stmt.value.keys
                                 if isinstance(k, ast.Constant) and isinstance(k.value, str))
            elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
                targets(stmt.target)
            elif isinstance(stmt, ast.Import):
                names.update(a.asname or a.name.split(".")[0] for a in stmt.names)
            elif isinstance(stmt, ast.ImportFrom):
                names.update(a.asname or a.name for a in stmt.names)
            elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(stmt, field, []))
                for handler in getattr(stmt, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


# ------------------------------------------------------------------------------------------
# Step 1: move files and write the packages' __init__ files


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def _move(tree: Tree, src: Path, dst: Path) -> bool:
    """git mv src dst (plain rename when src is not tracked); False when nothing to do."""
    if not src.exists():
        return False
    if dst.exists():
        tree.warn(f"{src.relative_to(tree.root)} and {dst.relative_to(tree.root)} both exist; "
                  "merge them by hand, then run again")
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    done = _git(tree.root, "mv", str(src), str(dst))
    if done.returncode != 0:
        shutil.move(str(src), str(dst))
    print(f"moved {src.relative_to(tree.root)} -> {dst.relative_to(tree.root)}")
    return True


def _create(tree: Tree, path: Path, text: str) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    _git(tree.root, "add", str(path))
    tree.changed.add(path)
    print(f"wrote {path.relative_to(tree.root)}")


def _module_all(path: Path) -> list[str]:
    for stmt in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                 for t in stmt.targets)):
            return [e.value for e in stmt.value.elts if isinstance(e, ast.Constant)]
    return []


def move_modules(tree: Tree) -> None:
    pkg_dir = tree.root / PKG
    for old, new in MODULES.items():
        _move(tree, pkg_dir / f"{old}.py", pkg_dir.joinpath(*new.split(".")).with_suffix(".py"))
    for old, new in DATA_FILES.items():
        _move(tree, pkg_dir / old, pkg_dir / new)
    for package, doc in PACKAGES.items():
        init = pkg_dir / package / "__init__.py"
        if not (pkg_dir / package).is_dir():
            continue
        if package not in FACADES:
            _create(tree, init, f'"""{doc}"""\n')
            continue
        leaf = FACADES[package]
        module = pkg_dir / package / f"{leaf}.py"
        if init.exists() and not module.exists():
            continue  # the facade's module was split since (cli/commands.py): init is kept
        names = _module_all(module) if module.exists() else []
        if not names:
            tree.warn(f"{module.relative_to(tree.root)} has no __all__: write "
                      f"{init.relative_to(tree.root)} by hand")
            continue
        one_line = f"from .{leaf} import {', '.join(sorted(names))}"
        if len(one_line) > 88:
            one_line = f"from .{leaf} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
        listed = ", ".join(f'"{n}"' for n in names)
        quoted = (f"[{listed}]" if len(listed) < 80
                  else "[\n" + "".join(f'    "{n}",\n' for n in names) + "]")
        _create(tree, init, f'"""{doc}"""\n\n{one_line}\n\n__all__ = {quoted}\n')
        if "main" in names:
            _create(tree, pkg_dir / package / "__main__.py",
                    f'"""``python -m {PKG}.{package}`` runs :func:`{PKG}.{package}.{leaf}.main`."""'
                    f"\n\nfrom .{leaf} import main\n\nraise SystemExit(main())\n")


def _test_home(stem: str) -> str | None:
    """tests/unit/<package>/test_<new leaf><rest>.py for test_<old module><rest>.py."""
    found = [m for m in MODULES if stem == m or stem.startswith(m + "_")]
    if not found:
        return None
    old = max(found, key=len)
    package, leaf = MODULES[old].split(".")
    return f"tests/unit/{package}/test_{leaf}{stem[len(old):]}.py"


_PARENTS = re.compile(r"((?<![\w.])Path\(__file__\)(?:\.resolve\(\))?\.parents\[)(\d+)(\])")


def check_unplaced(tree: Tree) -> None:
    """Modules (new since the table was written) that the table does not place."""
    for path in sorted((tree.root / PKG).glob("*.py")):
        if path.stem not in MODULES and path.stem not in STAYS:
            tree.warn(f"{PKG}/{path.name} is in no package: add it to MODULES in "
                      f"tools/move_to_packages.py and run again (its imports are already "
                      "rewritten, so it works where it is)")


def move_tests(tree: Tree) -> None:
    unit = tree.root / "tests" / "unit"
    if not unit.is_dir():
        return
    uses_init = (unit / "__init__.py").exists()
    for path in sorted(unit.glob("test_*.py")):
        home = _test_home(path.stem[len("test_"):])
        if home is None:
            tree.warn(f"tests/unit/{path.name} tests no module of MODULES: move it by hand")
            continue
        dst = tree.root / home
        if uses_init:
            _create(tree, dst.parent / "__init__.py", "")
        if _move(tree, path, dst):
            # one folder deeper: Path(__file__).resolve().parents[n] -> parents[n + 1]
            text = dst.read_text(encoding="utf-8")
            tree.write(dst, _PARENTS.sub(lambda m: f"{m[1]}{int(m[2]) + 1}{m[3]}", text))
            if re.search(r"(?<![\w.])Path\(__file__\)[\w().]*\.parent\b", text):
                tree.warn(f"{home}: Path(__file__).parent... is one folder deeper now; check it")


# ------------------------------------------------------------------------------------------
# Step 2: rewrite imports (ast) and references by name (regular expressions)


def _module_of(tree: Tree, path: Path) -> tuple[str, str]:
    """(module name, package its relative imports are relative to) of a .py file."""
    parts = list(path.relative_to(tree.root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _absolute(package: str, level: int, module: str | None) -> str:
    parts = package.split(".")
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([module] if module else []))


def _relative(target: str, package: str) -> str:
    t, p = target.split("."), package.split(".")
    common = 0
    while common < min(len(t), len(p)) and t[common] == p[common]:
        common += 1
    return "." * (len(p) - common + 1) + ".".join(t[common:])


def _plan_from(tree: Tree, base: str, aliases: list[ast.alias], importer: str,
               old_layout: bool = True):
    """[(module, [(name, asname)])] that makes ``from base import aliases`` work in the new
    layout, or None. ``base`` is an absolute module name as the statement meant it;
    ``old_layout``: it may be an old module name (not for a relative import read from a
    moved module's new place, which is new by definition)."""
    names = [a.name for a in aliases]
    pairs = [(a.name, a.asname) for a in aliases]
    if base != importer and tree.resolves(base, names):
        return [(base, pairs)]
    if not old_layout:
        return None
    new = tree.new_name(base)
    if new and new != importer and tree.resolves(new, names):
        return [(new, pairs)]
    groups: dict[str, list[tuple[str, str | None]]] = {}
    rest = []
    for name, asname in pairs:
        sub = f"{base}.{name}"
        moved = tree.new_name(sub)
        if moved and tree.exists(moved) and (not tree.exists(sub) or sub in PLACEHOLDERS):
            parent, leaf = moved.rsplit(".", 1)
            bound = asname or name
            groups.setdefault(parent, []).append((leaf, None if leaf == bound else bound))
        else:
            rest.append((name, asname))
    if groups and (not rest or tree.resolves(base, [n for n, _ in rest])):
        return ([(base, rest)] if rest else []) + list(groups.items())
    return None


def _offsets(text: str):
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    lines = text.splitlines(keepends=True)

    def at(lineno: int, col: int) -> int:  # ast columns are UTF-8 bytes
        line = lines[lineno - 1] if lineno - 1 < len(lines) else ""
        return starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", "ignore"))

    return at


def _render(module_text: str, pairs, indent: str) -> str:
    names = ", ".join(n if a is None else f"{n} as {a}" for n, a in pairs)
    return f"from {module_text} import {names}"


def rewrite_imports(tree: Tree, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        syntax = ast.parse(text)
    except SyntaxError as e:
        tree.warn(f"{path.relative_to(tree.root)}: cannot parse ({e}); not rewritten")
        return
    module, package = _module_of(tree, path)
    # a module moved by this script wrote its relative imports for cpp_tracker/<old>.py
    moved_here = module.startswith(PKG + ".") and module[len(PKG) + 1:] in MODULES.values()
    at = _offsets(text)
    edits: list[tuple[int, int, str]] = []
    rel = path.relative_to(tree.root)

    def plan_relative(level: int, mod: str | None, aliases):
        bases = [_absolute(package, level, mod)]
        if moved_here and package != PKG:
            bases.append(_absolute(PKG, level, mod))
        for i, base in enumerate(bases):
            plan = _plan_from(tree, base, aliases, module, old_layout=i > 0 or len(bases) == 1)
            if plan is not None:
                return i == 0, plan
        return True, None

    for node in ast.walk(syntax):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] != PKG:
                continue
            start = at(node.lineno, node.col_offset)
            end = at(node.end_lineno, node.end_col_offset)
            if node.level:
                as_is, plan = plan_relative(node.level, node.module, node.names)
            else:
                plan = _plan_from(tree, node.module, node.names, module)
                as_is = True
            if plan is None:
                tree.warn(f"{rel}:{node.lineno}: cannot resolve "
                          f"{text[start:end].splitlines()[0]!r}; left as it is")
                continue
            original = [(a.name, a.asname) for a in node.names]
            if len(plan) == 1 and plan[0][1] == original:
                target = plan[0][0]
                current = _absolute(package, node.level, node.module) if node.level \
                    else node.module
                if as_is and target == current:
                    continue
                new_text = _relative(target, package) if node.level else target
                segment = text[start:end]
                m = re.match(r"from\s+([.\w]+?)\s*(?=import\b)", segment)
                edits.append((start + m.start(1), start + m.end(1), new_text))
                continue
            indent = re.match(r"[ \t]*", text[text.rfind("\n", 0, start) + 1: start])[0]
            statements = [_render(_relative(t, package) if node.level else t, pairs, indent)
                          for t, pairs in plan]
            if "#" in text[start:end]:
                tree.warn(f"{rel}:{node.lineno}: comments inside an import split in "
                          "several were dropped; check them")
            edits.append((start, end, ("\n" + indent).join(statements)))
        elif isinstance(node, ast.Import):
            start = at(node.lineno, node.col_offset)
            end = at(node.end_lineno, node.end_col_offset)
            segment = text[start:end]
            for alias in node.names:
                name = alias.name
                if name.split(".")[0] != PKG:
                    continue
                if tree.exists(name) and name not in PLACEHOLDERS:
                    continue
                new = tree.new_name(name)
                if new is None:
                    tree.warn(f"{rel}:{node.lineno}: cannot resolve 'import {name}'")
                    continue
                segment = re.sub(rf"(?<![\w.]){re.escape(name)}(?![\w.])", new, segment, count=1)
            if segment != text[start:end]:
                edits.append((start, end, segment))
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets
        ) and isinstance(node.value, ast.Dict):
            # the lazy public API: {"name": ".module"} read by importlib.import_module
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if not (isinstance(key, ast.Constant) and isinstance(value, ast.Constant)
                        and isinstance(value.value, str) and value.value.startswith(".")):
                    continue
                level = len(value.value) - len(value.value.lstrip("."))
                mod = value.value[level:] or None
                as_is, plan = plan_relative(level, mod, [ast.alias(name=key.value)])
                if plan is None or len(plan) != 1 or plan[0][1] != [(key.value, None)]:
                    tree.warn(f"{rel}:{value.lineno}: cannot place _EXPORTS[{key.value!r}]")
                    continue
                new_text = _relative(plan[0][0], package)
                if new_text != value.value:
                    edits.append((at(value.lineno, value.col_offset),
                                  at(value.end_lineno, value.end_col_offset), f'"{new_text}"'))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    tree.write(path, text)


_DOTTED = re.compile(r"(?<![\w.])" + PKG + r"((?:\.[A-Za-z_]\w*)+)")
_IMPORTING = re.compile(r"(?:\bimport\s+(?:[\w.]+\s*,\s*)*|import_module\(\s*[\"'])$")
_FROM_NAMES = re.compile(
    r"\s+import\s+\(?\s*(\w+(?:\s+as\s+\w+)?(?:\s*,\s*\w+(?:\s+as\s+\w+)?)*)")


def _dotted_reference(tree: Tree, match: re.Match, text: str) -> str:
    """The new spelling of a dotted ``cpp_tracker.x...`` in code, strings or comments."""
    parts = match[1][1:].split(".")
    first = f"{PKG}.{parts[0]}"
    if parts[0] not in MODULES or tree.new_name(first) is None:
        return match[0]
    where = tree.file_of(first)
    if where is not None:
        if where.name != "__init__.py":
            return match[0]  # the old module is still there
        # a new package named like the old module: cpp_tracker.video, cpp_tracker.cli
        if len(parts) > 1:
            if tree.exists(f"{first}.{parts[1]}") or parts[1] in tree.defines(first):
                return match[0]  # already new: cpp_tracker.video.reader, cpp_tracker.cli.main
        elif first not in PLACEHOLDERS:
            return match[0]  # the package itself: cpp_tracker.synthetic, cpp_tracker.cli
        else:
            # bare and empty: the old module only where something is imported from it
            after = _FROM_NAMES.match(text, match.end())
            before = text[max(0, match.start() - 200): match.start()]
            if after:
                names = [n.split()[0] for n in re.split(r"\s*,\s*", after[1].strip())]
                if tree.resolves(first, names):
                    return match[0]
            elif not _IMPORTING.search(before):
                return match[0]
    return ".".join([tree.new_name(first), *parts[1:]])


def _path_reference(tree: Tree, match: re.Match) -> str:
    name = match[1]
    pkg_dir = tree.root / PKG
    if name.endswith(".py") and name[:-3] in MODULES and not (pkg_dir / name).exists():
        new = MODULES[name[:-3]].replace(".", "/") + ".py"
    elif name in DATA_FILES and not (pkg_dir / name).exists():
        new = DATA_FILES[name]
    else:
        return match[0]
    return f"{PKG}/{new}" if (pkg_dir / new).exists() else match[0]


def _test_reference(tree: Tree, match: re.Match, sep: str) -> str:
    """tests.unit.test_x / tests/unit/test_x.py -> its new place, once it has moved."""
    stem = match[1]
    home = _test_home(stem[len("test_"):])
    if home is None or (tree.root / "tests" / "unit" / f"{stem}.py").exists():
        return match[0]
    if not (tree.root / home).exists():
        return match[0]
    return home[: -len(".py")].replace("/", ".") if sep == "." else home


def rewrite_references(tree: Tree, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    new = _DOTTED.sub(lambda m: _dotted_reference(tree, m, text), text)
    new = re.sub(r"(?<![\w/.-])" + PKG + r"/([\w.]+\.(?:py|html))\b",
                 lambda m: _path_reference(tree, m), new)
    new = re.sub(r"(?<![\w.])tests\.unit\.(test_\w+)", lambda m: _test_reference(tree, m, "."),
                 new)
    new = re.sub(r"(?<![\w/.-])tests/unit/(test_\w+)\.py\b",
                 lambda m: _test_reference(tree, m, "/"), new)
    # importlib.resources.files("cpp_tracker") / "draw_page.html": the data file's package
    for data, place in DATA_FILES.items():
        if data in new and not (tree.root / PKG / data).exists():
            package = ".".join([PKG, *Path(place).parent.parts])
            new = re.sub(r"(\bfiles\(\s*)([\"'])" + PKG + r"\2", rf"\1\g<2>{package}\2", new)
    if path.suffix == ".py" and new != text:
        new = _wrap_lengthened(tree, path, text, new)
    tree.write(path, new)


def _line_length(tree: Tree) -> int:
    pyproject = tree.root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""
    found = re.search(r"^line-length\s*=\s*(\d+)", text, re.M)
    return int(found[1]) if found else 88


def _wrap_lengthened(tree: Tree, path: Path, old: str, new: str) -> str:
    """Re-wrap the comment and docstring lines that a longer module name made too long."""
    limit = _line_length(tree)
    old_lines, lines = old.split("\n"), new.split("\n")
    if len(old_lines) != len(lines):
        return new
    try:
        syntax = ast.parse(new)
    except SyntaxError:
        return new
    docstrings = {}  # line -> last line of its docstring
    for node in ast.walk(syntax):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            for line in range(body[0].lineno, body[0].end_lineno + 1):
                docstrings[line] = body[0].end_lineno
    rel = path.relative_to(tree.root)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if len(line) <= limit or len(old_lines[i]) > limit or line == old_lines[i]:
            out.append(line)
            i += 1
            continue
        comment = re.match(r"[ \t]*#+ ?", line)
        if comment:
            prefix = comment[0]
            last = i
        elif (i + 1) in docstrings:
            prefix = re.match(r"[ \t]*", line)[0]
            last = docstrings[i + 1] - 1
        else:
            tree.warn(f"{rel}:{i + 1}: longer than {limit} characters now; wrap it by hand")
            out.append(line)
            i += 1
            continue
        cut = line.rfind(" ", len(prefix) + 1, limit + 1)
        if cut < 0:
            tree.warn(f"{rel}:{i + 1}: longer than {limit} characters now; wrap it by hand")
            out.append(line)
            i += 1
            continue
        head, tail = line[:cut].rstrip(), line[cut + 1:]
        out.append(head)
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        same_paragraph = (
            nxt is not None
            and (nxt.startswith(prefix) if comment else i + 1 <= last)
            and nxt[len(prefix):].strip()
            and re.match(r"[ \t]*", nxt)[0] == re.match(r"[ \t]*", prefix)[0]
            and not re.match(r"\s*(#+ ?)?(- |\* |:|\.\.|>>>|\"\"\"|\'\'\')", nxt)
        )
        merged = prefix + tail + " " + nxt[len(prefix):].lstrip() if same_paragraph else None
        if merged is not None and len(merged) <= limit:
            out.append(merged)
            i += 2
            continue
        # a line of its own: cut near the middle rather than leave one word on it
        middle = (len(prefix) + len(line)) // 2
        spaces = [j for j in range(len(prefix) + 1, cut + 1) if line[j] == " "]
        cut = min(spaces, key=lambda j: abs(j - middle))
        out[-1] = line[:cut].rstrip()
        out.append(prefix + line[cut + 1:])
        i += 1
    return "\n".join(out)


def check_siblings(tree: Tree) -> None:
    """A module that names a file next to it by path (``with_name("keyframes.py")``) must
    have it next to it still."""
    files = {f"{m}.py": MODULES[m] for m in MODULES} | {
        d: Path(p).with_suffix("").as_posix().replace("/", ".") for d, p in DATA_FILES.items()}
    for old, new in MODULES.items():
        path = (tree.root / PKG).joinpath(*new.split(".")).with_suffix(".py")
        if not path.exists():
            continue
        for name in set(re.findall(r"[\"']([\w]+\.(?:py|html))[\"']", path.read_text("utf-8"))):
            other = files.get(name)
            if other and name != f"{old}.py" and other.split(".")[:-1] != new.split(".")[:-1]:
                tree.warn(f"{path.relative_to(tree.root)} names {name!r}, which now lives in "
                          f"{other.rsplit('.', 1)[0]}/: fix the path by hand")


# ------------------------------------------------------------------------------------------
# Step 3: pyproject package data, README, ARCHITECTURE.md, the layout test


def rewrite_pyproject(tree: Tree) -> None:
    path = tree.root / "pyproject.toml"
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    section = re.search(r"^\[tool\.setuptools\.package-data\]\n((?:(?!\[).*\n?)*)", text, re.M)
    if not section:
        return
    body = section[1]
    for data, place in DATA_FILES.items():
        if (tree.root / PKG / data).exists() or not (tree.root / PKG / place).exists():
            continue
        package = ".".join([PKG, *Path(place).parent.parts])
        if re.search(rf'^"?{re.escape(package)}"?\s*=', body, re.M):
            continue
        line = re.search(rf'^"?{PKG}"?[ \t]*=[ \t]*\[(.*)\][ \t]*$', body, re.M)
        if not line:
            tree.warn(f"pyproject.toml: add {data} to [tool.setuptools.package-data] by hand")
            continue
        patterns = re.findall(r"[\"']([^\"']+)[\"']", line[1])
        still_used = any(
            p for p in patterns for f in (tree.root / PKG).glob(p) if f.is_file())
        new_line = f'"{package}" = [{line[1]}]'
        if still_used:
            body = body.replace(line[0], line[0] + "\n" + new_line, 1)
        else:
            body = body.replace(line[0], new_line, 1)
    tree.write(path, text[: section.start(1)] + body + text[section.end(1):])


README_POINTER = ("The package's folders follow these steps; [ARCHITECTURE.md](ARCHITECTURE.md) "
                  "draws the\ndata flow and says what each folder owns and may import.\n")


def rewrite_readme(tree: Tree) -> None:
    path = tree.root / "README.md"
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")

    def module_file(m: re.Match) -> str:
        name = m[1]
        if name not in MODULES or (tree.root / PKG / f"{name}.py").exists():
            return m[0]
        new = MODULES[name].replace(".", "/") + ".py"
        return f"`{new}`" if (tree.root / PKG / new).exists() else m[0]

    text = re.sub(r"`(\w+)\.py`", module_file, text)
    heading = re.search(r"^## How it works\n\n", text, re.M)
    if heading and "ARCHITECTURE.md" not in text and (tree.root / "ARCHITECTURE.md").exists():
        text = text[: heading.end()] + README_POINTER + "\n" + text[heading.end():]
    tree.write(path, text)


# ARCHITECTURE.md and tests/test_architecture.py were written by this script when the layout
# was made; they now live in the repository (a branch merged with main gets them), so their
# templates are no longer kept here (they were 400 lines repeated).


# ------------------------------------------------------------------------------------------


def check_table() -> None:
    """A new module named like an old one must be that old module (else a reference could
    be read both ways)."""
    for new in MODULES.values():
        package, leaf = new.split(".")
        assert package in PACKAGES, f"{new}: package {package} missing from PACKAGES"
        if leaf in MODULES:
            assert MODULES[leaf] == new, f"{new} is named like old module {leaf}"
        assert leaf not in PACKAGES, f"{new}: a module named like a package"
    for package, leaf in FACADES.items():
        assert f"{package}.{leaf}" in MODULES.values()


def sort_imports(tree: Tree) -> None:
    py = sorted(str(p) for p in tree.changed if p.suffix == ".py" and p.exists() and p != SELF)
    if not py:
        return
    ruff = shutil.which("ruff") or (
        str(Path(sys.executable).with_name("ruff")) if Path(sys.executable).with_name(
            "ruff").exists() else None)
    if ruff is None:
        tree.warn("ruff not found: run `ruff check --select I --fix .` to sort the imports")
        return
    subprocess.run([ruff, "check", "--quiet", "--select", "I", "--fix", *py], cwd=tree.root,
                   check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=SELF.parents[1],
                        help="repository root (default: the one holding this script)")
    args = parser.parse_args(argv)
    check_table()
    tree = Tree(args.root.resolve())
    if not (tree.root / PKG).is_dir():
        print(f"error: no {PKG}/ in {tree.root}", file=sys.stderr)
        return 2

    move_modules(tree)
    move_tests(tree)
    for folder in SCAN_DIRS:
        for path in sorted((tree.root / folder).rglob("*.py")):
            if path.resolve() == SELF or ".venv" in path.parts:
                continue
            rewrite_imports(tree, path)
            rewrite_references(tree, path)
    for name in TEXT_FILES:
        if (tree.root / name).exists():
            rewrite_references(tree, tree.root / name)
    rewrite_pyproject(tree)
    rewrite_readme(tree)
    check_siblings(tree)
    check_unplaced(tree)
    sort_imports(tree)

    changed = sorted(p.relative_to(tree.root).as_posix() for p in tree.changed)
    print(f"{len(changed)} files written" + (":\n  " + "\n  ".join(changed) if changed else ""))
    if tree.warnings:
        print(f"\n{len(tree.warnings)} things need a person:\n  " + "\n  ".join(tree.warnings))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
