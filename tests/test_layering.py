"""Every import in lxclab/ points where README.md's table of layers allows: read with ast, never by running it.

The table ("The layers of the code") names each layer, its modules (`name/` a package,
`name` a module) and the layers it may import; a module may always import its own layer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lxclab"
ROW = re.compile(r"^\| (\w+) \| (`[^|]*`) \|\s*([\w, ]*?)\s*\|$")


def read_layers(readme: str) -> tuple[list[str], dict[str, str], dict[str, set[str]]]:
    """The README table as (layer names top first, {module or package name: layer}, {layer: layers it may import})."""
    order, placed, allowed = [], {}, {}
    for line in readme.splitlines():
        row = ROW.match(line)
        if row:
            layer, modules, imports = row.groups()
            order.append(layer)
            allowed[layer] = {name.strip() for name in imports.split(",") if name.strip()}
            for name in re.findall(r"`([^`]+)`", modules):
                assert name.rstrip("/") not in placed, f"{name} is placed twice in README's table of layers"
                placed[name.rstrip("/")] = layer
    return order, placed, allowed


ORDER, PLACED, ALLOWED = read_layers((ROOT / "README.md").read_text())


def module_name(path: Path) -> str:
    """The dotted name of a file of the package: lxclab/engine/run.py -> lxclab.engine.run."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def exists(name: str) -> bool:
    """Whether a dotted name is a module or package of lxclab."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(path: Path) -> set[str]:
    """The lxclab modules a file imports anywhere (in functions too), relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.update(f"{base}.{alias.name}" if exists(f"{base}.{alias.name}") else base for alias in node.names)
    return {module for module in found if module == "lxclab" or module.startswith("lxclab.")}


def layer_of(module: str) -> str:
    """The layer of a dotted lxclab name: its own row in the table, or its package's (the first name under lxclab)."""
    parts = module.split(".")
    return PLACED["__init__" if len(parts) == 1 else parts[1]]


def violations(imports: dict[str, set[str]]) -> list[str]:
    """Each import of {module: the modules it imports} that the table does not allow, in words."""
    found = []
    for module, targets in sorted(imports.items()):
        source = layer_of(module)
        for target in sorted(targets):
            if layer_of(target) != source and layer_of(target) not in ALLOWED[source]:
                found.append(f"{module} ({source}) imports {target} ({layer_of(target)})")
    return found


def package_imports() -> dict[str, set[str]]:
    """{module: the lxclab modules it imports} for every file of the package."""
    return {module_name(path): imported(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_of_the_package_is_placed_in_a_layer_and_every_placed_name_exists():
    tops = {path.stem if path.suffix else path.name for path in PACKAGE.iterdir()
            if (path.suffix == ".py" or (path / "__init__.py").is_file())}
    assert tops == set(PLACED), f"unplaced: {sorted(tops - set(PLACED))}; placed but missing: {sorted(set(PLACED) - tops)}"


def test_layers_may_import_only_layers_below_them_and_the_two_columns_never_each_other():
    for layer, below in ALLOWED.items():
        assert below <= set(ORDER[ORDER.index(layer) + 1:]), f"{layer} may import a layer above it: {below}"
    assert "kernel" not in ALLOWED["io"] and "io" not in ALLOWED["kernel"]
    joined = [layer for layer in ORDER if {"io", "kernel"} <= ALLOWED[layer]]
    assert joined == ["tools", "engine"]  # engine joins the columns; the tools above it use everything


def test_no_import_points_against_the_layers():
    assert violations(package_imports()) == []


def test_an_import_against_the_layers_is_caught():
    assert violations({"lxclab.unionfs.overlay": {"lxclab._linux", "lxclab._libc"}}) == [
        "lxclab.unionfs.overlay (io) imports lxclab._linux (kernel)"]
    assert violations({"lxclab.procfs": {"lxclab.cgroups.group"}}) == ["lxclab.procfs (system) imports "
                                                                      "lxclab.cgroups.group (kernel)"]


def test_relative_imports_are_resolved_against_the_importing_package():
    assert {"lxclab._libc", "lxclab.procfs", "lxclab.paths", "lxclab.errors", "lxclab.layers.stage"} <= imported(
        PACKAGE / "unionfs" / "overlay.py")
    assert "lxclab.engine.lxcrun" in imported(PACKAGE / "engine" / "runtimes.py")  # from . import lxcrun
    assert "lxclab.lxc" in imported(PACKAGE / "footprint.py")  # imported inside a function
