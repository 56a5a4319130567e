"""python/eigengru/_core.pyi, the core's interface for type checkers, names every class,
function, method and property that the compiled module has, and nothing it lacks."""

from __future__ import annotations

import ast
import inspect
import pathlib

import eigengru._core as core

STUB = pathlib.Path(__file__).resolve().parent.parent / "python" / "eigengru" / "_core.pyi"


def stub_names() -> set[str]:
    names = set()
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names |= {f"{node.name}.{item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef)}
    return names


def module_names() -> set[str]:
    names = set()
    for name, value in vars(core).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(value):
            names.add(name)
            names |= {f"{name}.{member}" for member in vars(value)
                      if not member.startswith("_") or member == "__init__"}
        elif callable(value):
            names.add(name)
    return names


def test_the_stub_names_what_the_module_has():
    stub, module = stub_names(), module_names()
    assert stub == module, (f"in the module only: {sorted(module - stub)}; "
                            f"in the stub only: {sorted(stub - module)}")
