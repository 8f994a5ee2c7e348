"""The layout of components/airflow/ (map in its __init__.py): imports flow one way, from the shared
pieces through the containers (pod/) to the objects and the ComponentResource, with no cycles; every
module loads on its own; modules stay small."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "components"
AIRFLOW = COMPONENTS / "airflow"
MAX_LINES = 300
# Layers, lowest first: a module may import its own layer's modules (without cycles) and lower ones only.
LAYERS = [
    {"components.airflow.workload_spec", "components.airflow.workload_args", "components.airflow.pod.git_sync_liveness", "components.airflow.pod.shutdown"},
    {"components.airflow.pod.shared"},
    {f"components.airflow.pod.{p.stem}" for p in (AIRFLOW / "pod").glob("*.py")} - {"components.airflow.pod.__init__"},
    {"components.airflow.config_map", "components.airflow.deployment", "components.airflow.dag_processor",
     "components.airflow.jobs", "components.airflow.pod_cleanup", "components.airflow.access", "components.airflow.connections",
     "components.airflow.front_door", "components.airflow.fernet", "components.airflow.task_pod_accounts"},
    {"components.airflow.scraping"},  # the PodMonitoring: selects the pods access.py's policies open
    {"components.airflow.workload"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Project modules `path` imports (relative imports resolved; `from pkg import mod` counted as pkg.mod)."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    known = {module_name(p) for p in COMPONENTS.rglob("*.py")}
    return {name for name in found if name in known} - {module_name(path)}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in COMPONENTS.rglob("*.py")}


def layer_of(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if module in layer)


def test_no_import_cycles_among_the_components():
    edges = graph()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [module, target])
                                     if target in path else f"import cycle through {module} -> {target}")
            if target not in state:
                visit(target, path + [module])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def test_airflow_modules_import_only_their_own_or_lower_layers():
    edges = graph()
    airflow = {m for m in edges if m.startswith("components.airflow.") and not m.endswith(".pod")}
    assert airflow == set().union(*LAYERS), "a module is missing from LAYERS (and from the map in __init__.py)"
    for module in sorted(airflow):
        for target in edges[module]:
            if target.startswith("components.airflow.") and target != "components.airflow.pod":
                assert layer_of(target) <= layer_of(module), f"{module} imports {target}, a higher layer"


def test_package_inits_import_nothing_so_config_can_load_the_liveness_rules():
    # components/config validates git-sync settings with pod/git_sync_liveness.py; that module and the
    # packages above it must not import components.config back (it would be a cycle).
    edges = graph()
    assert edges["components.airflow"] == set() and edges["components.airflow.pod"] == set()
    assert edges["components.airflow.pod.git_sync_liveness"] == set()


def test_every_module_imports_on_its_own():
    modules = sorted(module_name(p) for p in AIRFLOW.rglob("*.py")) + ["components.config"]
    script = ("import importlib, sys\n"
              f"for name in {modules!r}:\n"
              "    for loaded in [m for m in sys.modules if m == 'components' or m.startswith('components.')]:\n"
              "        del sys.modules[loaded]\n"
              "    importlib.import_module(name)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_modules_stay_small():
    long = {str(p.relative_to(ROOT)): n for p in AIRFLOW.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"
