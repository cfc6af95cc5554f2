"""docs/architecture.md is true to the code, and imports run one way: ingest → index →
assistant → ui."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest", "index", "assistant", "ui")  # left to right
DOC = REPO / "docs" / "architecture.md"
_LINE = re.compile(r"^- `(\w+\.py)`(.*)$")
_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def _files(pkg: str) -> list[Path]:
    """A package's modules, its subpackages' (index/model/, ...) included."""
    return sorted((REPO / pkg).rglob("*.py"))


def _modules() -> set[str]:
    return {
        p.relative_to(REPO).as_posix()
        for pkg in PACKAGES
        for p in _files(pkg)
        if p.name != "__init__.py"
    }


def _documented() -> dict[str, str]:
    """`pkg/module.py` (`pkg/sub/module.py` under a subpackage's heading) → the rest of its
    line (continuation lines joined)."""
    out: dict[str, str] = {}
    pkg, current = None, None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            pkg, current = line[3:].split(" ")[0].rstrip("/"), None
            continue
        m = _LINE.match(line)
        if m and pkg:
            current = f"{pkg}/{m.group(1)}"
            out[current] = m.group(2)
        elif current and line.startswith("  "):
            out[current] += " " + line.strip()
        else:
            current = None
    return out


def test_every_module_is_named_once_and_every_named_module_exists() -> None:
    documented = _documented()
    assert set(documented) == _modules()


def _attr(obj: object, name: str) -> object:
    """An attribute, or a field a class only declares (a protocol's or dataclass's)."""
    if not hasattr(obj, name) and name in getattr(obj, "__annotations__", {}):
        return obj.__annotations__[name]
    return getattr(obj, name)


def _resolve(name: str, module: str) -> object:
    """A dotted name: from its package when it starts with one, else inside `module`."""
    parts = name.split(".")
    if parts[0] in (*PACKAGES, "tests"):
        for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ModuleNotFoundError:
                continue
            for attr in parts[i:]:
                obj = _attr(obj, attr)
            return obj
        raise ModuleNotFoundError(name)
    obj = importlib.import_module(module)
    for attr in parts:
        obj = _attr(obj, attr)
    return obj


@pytest.mark.parametrize("path", sorted(_documented()))
def test_every_name_the_map_lists_exists(path: str) -> None:
    module = path.removesuffix(".py").replace("/", ".")
    missing = []
    for span in re.findall(r"`([^`]+)`", _documented()[path]):
        m = _NAME.match(span)
        if not m or span.endswith(".py") or span.startswith("cmd_<"):
            continue
        try:
            _resolve(m.group(), module)
        except (AttributeError, ModuleNotFoundError):
            missing.append(m.group())
    assert not missing, f"{path} lists names it does not have: {missing}"


def _imports(path: Path) -> list[str]:
    """Top-level packages a module imports, lazy and TYPE_CHECKING imports included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_package_imports_from_its_right(pkg: str) -> None:
    allowed = set(PACKAGES[: PACKAGES.index(pkg) + 1])
    forbidden = (set(PACKAGES) - allowed) | {"tests", "bench"}
    wrong = {
        f"{pkg}/{p.name} imports {name}"
        for p in _files(pkg)
        for name in _imports(p)
        if name in forbidden
    }
    assert not wrong


def test_the_import_check_sees_lazy_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from ui.cli import main\n    import assistant.answer\n")
    assert _imports(src) == ["ui", "assistant"]


def test_crossing_languages_has_one_owner() -> None:
    """Only assistant/crossing.py opens the cross-language tables and the query map; the other
    product modules reach them through `crossing()` (the implementations' own modules aside)."""
    owners = {"assistant/crossing.py", "assistant/align.py", "assistant/glossary.py"}
    tables = ("glossary.tsv", "terms.tsv", "translations.tsv", "alignment.npz")
    loaders = ("read_terms", "read_translations", "load_alignment", "language_axes")
    wrong = []
    for pkg in PACKAGES:
        for p in _files(pkg):
            rel = p.relative_to(REPO).as_posix()
            if rel in owners:
                continue
            tree = ast.parse(p.read_text(encoding="utf-8"))
            strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                       and isinstance(n.value, str) and n.value in tables]  # fmt: skip
            names = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                     for a in n.names if a.name in loaders]  # fmt: skip
            wrong += [f"{rel}: {x}" for x in strings + names]
    assert not wrong


def _module_name(path: Path) -> str:
    return (
        path.relative_to(REPO)
        .with_suffix("")
        .as_posix()
        .replace("/", ".")
        .removesuffix(".__init__")
    )


def _graph() -> dict[str, set[str]]:
    """Each module of the four packages → the modules of theirs it imports (lazy and
    TYPE_CHECKING imports included; `from index.postgres import terms` names the module)."""
    files = [p for pkg in PACKAGES for p in _files(pkg)]
    ours = {_module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        graph[_module_name(path)] = (deps & ours) - {_module_name(path)}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of imports a depth-first walk meets (none when the graph is layered)."""
    done: set[str] = set()
    path: list[str] = []
    found: list[list[str]] = []

    def visit(mod: str) -> None:
        if mod in path:
            found.append([*path[path.index(mod) :], mod])
        elif mod not in done:
            path.append(mod)
            for dep in sorted(graph.get(mod, ())):
                visit(dep)
            path.pop()
            done.add(mod)

    for mod in sorted(graph):
        visit(mod)
    return found


def test_no_two_modules_import_each_other() -> None:
    """No circle of imports, of two modules or more (`from index.model import tune` counts as
    importing index.model.tune)."""
    graph = _graph()
    assert not _circles(graph)


def test_the_circle_check_sees_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


# The rooms of index/ and what each may not import. The model knows no store; the embedded
# store knows nothing of PostgreSQL; the PostgreSQL store reuses only the embedded store's
# ranking rules (index.embedded.vectors.choose_backend and FLAT_MAX, index.embedded.lexical's
# top_k), so both stores rank alike; the modules at the top of index/ that both stores import
# (config, manifest, protocol, plan) import no store; index/library.py alone picks one.
STORES = ("index.embedded", "index.postgres", "index.library")
ROOMS = {
    "index.model": (*STORES, "index.plan", "index.protocol"),
    "index.embedded": ("index.postgres", "index.library"),
    "index.postgres": (
        "index.library",
        "index.embedded.store",
        "index.embedded.generation",
        "index.embedded.writer",
        "index.embedded.storage",
    ),
    "index.protocol": (*STORES, "index.plan"),
    "index.plan": STORES,
    "index.config": ("index",),
    "index.manifest": ("index",),
}


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_of_index_imports_only_what_it_may(room: str) -> None:
    def inside(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    wrong = {
        f"{mod} imports {dep}"
        for mod, deps in _graph().items()
        if inside(mod, room)
        for dep in deps
        if any(inside(dep, f) for f in ROOMS[room])
    }
    assert not wrong


def test_the_environment_is_read_in_one_place() -> None:
    """Only ingest/settings.py reads environment variables (others may set them for a
    worker process), and the README's table names each one."""
    readers = {
        f"{p.relative_to(REPO)}:{node.lineno}"
        for pkg in PACKAGES
        for p in _files(pkg)
        if p.name != "settings.py"
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _reads_environment(node.func)
    }
    assert not readers
    from ingest.settings import SETTINGS

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert [s.name for s in SETTINGS if f"| `{s.name}` |" not in readme] == []


def _reads_environment(func: ast.Attribute) -> bool:
    """os.environ.get(...), os.environ[...] is left to reviews; os.getenv(...)."""
    return func.attr == "getenv" or (func.attr == "get" and "environ" in ast.unparse(func.value))


def test_the_environment_check_sees_both_ways_of_reading() -> None:
    calls = [ast.parse(s).body[0].value.func for s in ("os.environ.get('A')", "os.getenv('A')")]
    assert all(_reads_environment(f) for f in calls)
    assert not _reads_environment(ast.parse("d.get('A')").body[0].value.func)
