"""The package's shape: its public API is what docs/api.md lists, internals
live in underscore-prefixed modules, no import cycles, no upward imports."""
import ast
import importlib
import re
from pathlib import Path

import pyg_mspipe

ROOT = Path(pyg_mspipe.__file__).parent
API_DOC = ROOT.parent / "docs" / "api.md"
# Lower layers never import higher ones (the program's engine and command
# line sit on top of the library).
LAYERS = [
    {"_cuda", "_scatter", "_threads", "_validation"},
    {"nn"},
    {"pipeline"},
    {"loader"},
    {"checkpoint", "datasets", "distributed"},
    {"__init__"},
    {"engine"},
    {"cli", "__main__"},
]
PROGRAM = {"engine", "cli", "__main__"}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(("pyg_mspipe",) + parts)
        yield name.removesuffix(".__init__"), path, parts


def _layer(parts) -> int:
    top = parts[0]
    return next(i for i, group in enumerate(LAYERS) if top in group)


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel).is_dir()


def _imports(path: Path, package: str):
    # Module-level imports only (those run at import time), as module names.
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("pyg_mspipe"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    yield sub if _is_module(sub) else node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pyg_mspipe"):
                    yield alias.name


def _library_modules():
    return [(name, path, parts) for name, path, parts in _modules()
            if parts[0] not in PROGRAM]


def test_no_import_cycles():
    graph = {name: set(_imports(path, name)) for name, path, _ in _modules()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt == node:
                continue
            assert state.get(nxt) != "open", " -> ".join(stack + [node, nxt])
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_no_module_imports_a_higher_layer():
    bad = []
    for name, path, parts in _modules():
        own = _layer(parts)
        for target in _imports(path, name):
            tparts = target.split(".")[1:] or ["__init__"]
            if _layer(tparts) > own:
                bad.append(f"{name} imports {target}")
    assert not bad, bad


def test_public_api_is_small_and_has_no_internals():
    assert len(pyg_mspipe.__all__) <= 25
    for name, _path, parts in _library_modules():
        module = importlib.import_module(name)
        internal = any(p.startswith("_") and p != "__init__" for p in parts)
        if internal:
            assert not hasattr(module, "__all__"), f"{name} is internal but has __all__"
            continue
        for export in getattr(module, "__all__", ()):
            obj = getattr(module, export)
            origin = getattr(obj, "__module__", name) or name
            if export == "__version__" or not origin.startswith("pyg_mspipe"):
                continue
            assert not any(p.startswith("_") for p in origin.split(".")[1:]), \
                f"{name} exports {export} from {origin}"


def test_api_doc_lists_exactly_the_public_api():
    public = set()
    for name in ("pyg_mspipe", "pyg_mspipe.nn", "pyg_mspipe.loader", "pyg_mspipe.pipeline",
                 "pyg_mspipe.distributed", "pyg_mspipe.datasets"):
        module = importlib.import_module(name)
        public |= {getattr(module, n).__name__ for n in module.__all__
                   if n != "__version__" and hasattr(getattr(module, n), "__name__")}
    text = API_DOC.read_text()
    documented = set(re.findall(r"auto(?:class|function):: [\w.]*?\.(\w+)\n", text))
    automodule = "automodule:: pyg_mspipe.datasets" in text
    datasets = importlib.import_module("pyg_mspipe.datasets")
    if automodule:
        documented |= {getattr(datasets, n).__name__ for n in datasets.__all__
                       if hasattr(getattr(datasets, n), "__name__")}
    assert public - documented == set(), "exported but not in docs/api.md"
    assert documented - public == set(), "in docs/api.md but not exported"
