"""The architecture as a test: rooms, arrows one way, no circles, no private names across.

Read from the source (ast), imports inside functions included: a late import is still an
arrow between rooms.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "adamconf"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, [a.name for a in node.names]))
    return out


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _ours(name: str) -> str | None:
    """The module of ours an import names (a submodule named in 'from pkg import mod' too)."""
    return name if name in MODULES else None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, names in _imports(path):
            if not target.startswith("adamconf"):
                continue
            for name in names:  # 'from adamconf.conformance.report import html': a module
                if f"{target}.{name}" in MODULES:
                    graph[module].add(f"{target}.{name}")
            if target in MODULES and target != module:
                graph[module].add(target)
    return graph


def _package_inits(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ importing its own submodule is how a package exposes its face
    edges = {m: {t for t in ts if m not in _package_inits(t)} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_no_private_name_imported_from_another_module():
    bad = []
    for module, path in MODULES.items():
        for target, names in _imports(path):
            if target.startswith("adamconf") and target != module:
                bad += [f"{module} imports {target}.{n}" for n in names
                        if n.startswith("_") and not n.startswith("__")]
    assert not bad, "\n".join(bad)


def _targets(prefix: str) -> dict[str, set[str]]:
    graph = _graph()
    return {m: ts for m, ts in graph.items() if m == prefix or m.startswith(prefix + ".")}


def test_reference_imports_nothing_of_ours_outside_itself():
    bad = [f"{m} -> {t}" for m, ts in _targets("adamconf.reference").items() for t in ts
           if not t.startswith("adamconf.reference")]
    assert not bad, "\n".join(bad)


def test_adapters_import_only_the_seam():
    bad = [f"{m} -> {t}" for m, ts in _targets("adamconf.adapters").items() for t in ts
           if not t.startswith("adamconf.adapters")]
    assert not bad, "\n".join(bad)


def test_the_worker_needs_only_the_adapter_layer():
    """The worker may run in another Python environment: adapters, numpy and itself."""
    allowed = ("adamconf.adapters", "adamconf.conformance.harness.worker",
               "adamconf.conformance.harness.registry")
    for module in ("adamconf.conformance.harness.worker", "adamconf.conformance.harness.registry"):
        reach, todo = set(), [module]
        while todo:
            m = todo.pop()
            for t in _graph()[m]:
                if t not in reach and m not in _package_inits(t):
                    reach.add(t)
                    todo.append(t)
        bad = [t for t in reach if not t.startswith(allowed) and t not in _package_inits(module)]
        assert not bad, f"{module} reaches {bad}"


def test_the_cli_holds_no_judging_logic():
    """Commands call the Python API and the rooms; nothing below imports the CLI."""
    bad = [f"{m} -> {t}" for m, ts in _graph().items() for t in ts
           if t.startswith("adamconf.conformance.cli") and not m.startswith(
               "adamconf.conformance.cli")]
    assert not bad, "\n".join(bad)


# The rooms, lowest first: a module imports from its own room and the rooms below it, never
# from one above (or beside) it. The package faces (``adamconf``, ``adamconf.conformance``)
# sit on top: they expose what lies below them.
ROOMS: tuple[tuple[str, ...], ...] = (
    ("adamconf.reference",),
    ("adamconf.adapters",),
    ("adamconf.conformance.errors", "adamconf.conformance.files"),
    ("adamconf.conformance.corpus",),
    ("adamconf.conformance.judge",),
    ("adamconf.conformance.harness",),
    ("adamconf.conformance.report",),
    ("adamconf.conformance.api",),
    ("adamconf.conformance.tools",),
    ("adamconf.conformance.cli", "adamconf.conformance.plugin"),
    ("adamconf", "adamconf.conformance"),
)


def _room(module: str) -> tuple[int, str] | None:
    """(rank, room) of a module: the room whose name is its longest prefix."""
    found = [(len(room), rank, room) for rank, rooms in enumerate(ROOMS) for room in rooms
             if module == room or module.startswith(room + ".")]
    return max(found)[1:] if found else None


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import that runs back up: to a room that is not below the importer's. An
    ancestor package (``from adamconf import __version__``) and a package's own submodules
    are neither up nor down."""
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target in _package_inits(module) or module in _package_inits(target):
                continue
            (rank, room), (target_rank, target_room) = _room(module), _room(target)
            if target_room != room and target_rank >= rank:
                bad.append(f"{module} -> {target} ({target_room} is not below {room})")
    return bad


def test_every_module_lives_in_a_room():
    faces = ROOMS[-1]
    homeless = [m for m in MODULES if m not in faces and _room(m)[1] in faces]
    assert not homeless, f"modules in no room (add them to ROOMS): {homeless}"


def test_no_import_runs_back_up():
    assert not _upward(_graph()), "\n".join(_upward(_graph()))


def test_an_upward_import_is_refused():
    """The check itself: the report reading the API (as findings once did), the API and the
    CLI side by side with the plugin, and the spec importing an adapter are all refused."""
    graph = {"adamconf.conformance.report.findings": {"adamconf.conformance.api"},
             "adamconf.conformance.cli.run": {"adamconf.conformance.plugin"},
             "adamconf.reference.config": {"adamconf.adapters.base"},
             "adamconf.conformance.api": {"adamconf.conformance.report.findings",
                                          "adamconf.conformance.judge.outcome"},
             "adamconf.conformance.report.text": {"adamconf"}}
    assert _upward(graph) == [
        "adamconf.conformance.cli.run -> adamconf.conformance.plugin "
        "(adamconf.conformance.plugin is not below adamconf.conformance.cli)",
        "adamconf.conformance.report.findings -> adamconf.conformance.api "
        "(adamconf.conformance.api is not below adamconf.conformance.report)",
        "adamconf.reference.config -> adamconf.adapters.base "
        "(adamconf.adapters is not below adamconf.reference)"]


def test_every_room_is_a_package_with_a_docstring():
    for room in ("judge", "corpus", "harness", "report", "cli", "tools"):
        init = ROOT / "conformance" / room / "__init__.py"
        assert init.is_file(), room
        assert ast.get_docstring(ast.parse(init.read_text())), f"{room}/__init__.py says nothing"


_LOOKUPS = {"get_format", "as_format"}  # a dtype's name made a format


def _name_lookups(source: str) -> list[str]:
    """Every lookup of a format by name outside a literal at module level and outside the
    public functions (the entry points that take a name from outside): where, and the call."""
    bad: list[str] = []

    def visit(node: ast.AST, where: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, where + [child.name])
                continue
            func = getattr(child, "func", None) if isinstance(child, ast.Call) else None
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in _LOOKUPS:
                private = any(part.startswith("_") for part in where)
                literal = all(isinstance(a, ast.Constant) for a in child.args)
                if private or (not where and not literal):
                    bad.append(f"{'.'.join(where) or 'module level'}: {ast.unparse(child)}")
            visit(child, where)

    visit(ast.parse(source), [])
    return bad


def test_a_dtype_name_is_looked_up_only_where_judging_begins():
    """judge/ makes a dtype's name a format (get_format, as_format) only in a constant at
    module level or in a public function that takes the name from outside (judge_case, judge,
    error_bounds, search_model, …); every helper below is handed the format."""
    bad = [f"{m}: {lookup}" for m, path in MODULES.items()
           if m.startswith("adamconf.conformance.judge")
           for lookup in _name_lookups(path.read_text(encoding="utf-8"))]
    assert not bad, "\n".join(bad)


def test_a_lookup_below_an_entry_point_is_refused():
    source = (
        "_F32 = get_format('float32')\n"
        "def judge(dtype):\n"
        "    return _inner(as_format(dtype))\n"
        "def _inner(fmt):\n"
        "    return floats.get_format(fmt.name)\n"
        "class _Judge:\n"
        "    def __init__(self, dtype):\n"
        "        self.fmt = get_format(dtype)\n"
        "F = get_format(NAME)\n")
    assert _name_lookups(source) == ["_inner: floats.get_format(fmt.name)",
                                     "_Judge.__init__: get_format(dtype)",
                                     "module level: get_format(NAME)"]
