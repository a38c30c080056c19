"""Dependencies point one way (docs: DESIGN.md, "Planes").

    api -> services -> store | bus        media -> bus (| segments)
    types, errors, config, clock import nothing of ours
    app and cli are the composition roots and may import anything

Every import counts: at the top, inside functions, under TYPE_CHECKING, relative or not.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "majlis"

LEAVES = frozenset({"types", "errors", "config", "clock", "signing"})
ANYTHING = frozenset({"*"})

# layer -> the other layers of ours it may import (its own modules are always fine)
ALLOWED: dict[str, frozenset[str]] = {
    "__init__": frozenset(),
    "types": frozenset(),
    "errors": frozenset(),
    "config": frozenset(),
    "clock": frozenset(),
    "signing": frozenset(),
    # HTTP serving (uvicorn and its acceptor): knows no Majlis code.
    "serving": frozenset(),
    # The contract between the planes: typed media commands and the MediaPlane interface.
    "plane": frozenset({"types", "errors"}),
    "offers": frozenset({"errors"}),
    "store": LEAVES,
    "bus": LEAVES,
    "segments": LEAVES,
    "services": LEAVES | {"store", "bus", "plane", "offers"},
    # serving's contract too: the refusals a connection writes before the app (early.py).
    "api": LEAVES | {"services", "store", "bus", "plane", "serving"},
    # The media plane talks to the control plane only through the bus and HTTP.
    "media": LEAVES | {"bus", "segments", "plane", "offers"},
    "edge": LEAVES,
    # The control plane's side of a cluster: finds nodes on the bus, talks HTTP to them.
    "cluster": LEAVES | {"bus", "plane"},
    # Command-line clients speak HTTP and WebRTC to a server: no control-plane code.
    "client": LEAVES | {"media"},
    "app": ANYTHING,
    "cli": ANYTHING,
}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    """majlis.api.spaces -> api; majlis.app -> app; majlis -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(source: str, module: str, package: bool, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import of ours in `source`."""
    here = module.split(".") if package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from majlis import api` imports the package majlis.api
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                relative = Path(*candidate.split(".")[1:])
                if (root / relative).is_dir() or (root / relative).with_suffix(".py").exists():
                    found.append((node.lineno, candidate))
    return [(line, name) for line, name in found if name == "majlis" or name.startswith("majlis.")]


def violations_in(source: str, module: str, package: bool, root: Path = SRC) -> list[Violation]:
    layer = layer_of(module)
    allowed = ALLOWED[layer]
    out = []
    for line, imported in imports_of(source, module, package, root):
        target = layer_of(imported)
        if imported == "majlis" or target == layer or "*" in allowed:
            continue
        if target not in allowed:
            out.append(Violation(module, line, imported))
    return out


# Inside media/: its parts in one direction. The media thread's runtime composes them; a
# speaker's WebRTC feeds the mixer; the packager writes the recording; formats are shared.
MEDIA_PARTS: dict[str, frozenset[str]] = {
    "audio": frozenset(),
    "formats": frozenset({"audio"}),
    "mixing": frozenset({"audio", "formats"}),
    "rtc": frozenset({"audio", "formats", "mixing"}),
    "recording": frozenset({"audio", "formats"}),
    "hls": frozenset({"audio", "formats", "recording"}),
    # Speech to text: voice activity, utterances, the model, the live captioner. The
    # runtime feeds it the mix and writes its lines into the hls rendition.
    "captions": frozenset({"audio"}),
    "runtime": frozenset({"audio", "formats", "mixing", "rtc", "recording", "hls", "captions"}),
}


def media_part(module: str) -> str | None:
    """majlis.media.mixing.mixer -> mixing; None outside media/ or for media itself."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "media" else None


def test_the_parts_of_media_import_one_way() -> None:
    found = []
    for path in python_files():
        module = module_name(path, SRC)
        part = media_part(module)
        if part is None:
            continue
        assert part in MEDIA_PARTS, f"media/{part} is a new part: place it in MEDIA_PARTS"
        for line, imported in imports_of(path.read_text(), module, is_package(path), SRC):
            other = media_part(imported)
            if other is not None and other != part and other not in MEDIA_PARTS[part]:
                found.append(f"{module}:{line} imports {imported}")
    assert found == []


def python_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_there_is_code_to_check() -> None:
    layers = {layer_of(module_name(p, SRC)) for p in python_files()}
    assert {"api", "services", "store", "bus", "media", "types", "errors"} <= layers


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = {layer_of(module_name(p, SRC)) for p in python_files()} - set(ALLOWED)
    assert not unknown, f"add {sorted(unknown)} to ALLOWED in tests/test_architecture.py"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_dependencies_point_one_way(layer: str) -> None:
    found: list[Violation] = []
    for path in python_files():
        module = module_name(path, SRC)
        if layer_of(module) == layer:
            found += violations_in(path.read_text(encoding="utf-8"), module, is_package(path))
    assert not found, "\n".join(map(str, found))


# the checker itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "package", "source", "bad"),
    [
        ("majlis.services.spaces", False, "from majlis.api.http import x", "majlis.api.http"),
        ("majlis.services.spaces", False, "from ..api import http", "majlis.api"),
        ("majlis.services.spaces", False, "from majlis import api", "majlis.api"),
        ("majlis.store.sqlite", False, "import majlis.services.roles", "majlis.services.roles"),
        ("majlis.bus.redis", False, "def f():\n    from majlis.media import node", "majlis.media"),
        (
            "majlis.media.mixing.mixer",
            False,
            "from majlis.services import roles",
            "majlis.services",
        ),
        (
            "majlis.media.mixing.mixer",
            False,
            "from majlis.store.base import Store",
            "majlis.store.base",
        ),
        ("majlis.types", False, "from majlis.errors import BadRequest", "majlis.errors"),
        ("majlis.config", False, "from . import clock", "majlis.clock"),
        ("majlis.api", True, "from .. import media", "majlis.media"),
        (
            "majlis.services.roles",
            False,
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from majlis.api import x",
            "majlis.api",
        ),
    ],
)
def test_the_checker_finds_a_wrong_way_import(
    module: str, package: bool, source: str, bad: str
) -> None:
    found = [v.imported for v in violations_in(source, module, package)]
    # `from majlis.x import y` names majlis.x, and majlis.x.y too when y is a module
    assert bad in found
    assert {layer_of(name) for name in found} == {layer_of(bad)}


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("majlis.api.spaces", "from majlis.services.spaces import Spaces"),
        ("majlis.api.middleware", "from majlis.bus.base import Bus"),
        ("majlis.services.roles", "from majlis.store.base import Store\nimport majlis.bus.base"),
        ("majlis.services.roles", "from .spaces import Spaces"),
        (
            "majlis.media.runtime.node",
            "from majlis.bus.base import Bus\nfrom majlis.clock import Clock",
        ),
        ("majlis.app", "from majlis.api.routing import routes\nfrom majlis import __version__"),
        ("majlis.types", "import enum\nfrom dataclasses import dataclass"),
    ],
)
def test_the_checker_allows_the_right_way(module: str, source: str) -> None:
    assert violations_in(source, module, False) == []
