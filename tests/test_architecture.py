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
