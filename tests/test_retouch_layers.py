"""The retouch package's layers run one way (issue 22): each module imports only modules below it,
lazy imports inside functions included, and the package is a plain package."""

from __future__ import annotations

import ast
from pathlib import Path

import piaa.retouch

LAYERS = ["ops", "scoring", "full", "core", "cache", "batch", "api"]  # lowest first


def _imports(module: str) -> set[str]:
    tree = ast.parse((Path(piaa.retouch.__file__).parent / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):  # every import, top-level or inside a function
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("piaa.retouch."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("piaa.retouch.")}
    return found


def test_each_layer_imports_only_the_layers_below_it():
    for i, module in enumerate(LAYERS):
        above = set(LAYERS[i:])
        assert not (_imports(module) & above), f"retouch.{module} imports {sorted(_imports(module) & above)}"


def test_every_module_of_the_package_has_a_layer():
    modules = {p.stem for p in Path(piaa.retouch.__file__).parent.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS)


def test_the_package_is_not_a_callable_module_and_the_api_is_on_top():
    assert type(piaa.retouch).__name__ == "module" and not callable(piaa.retouch)
    assert piaa.retouch.retouch_image.__module__ == "piaa.retouch.api"
