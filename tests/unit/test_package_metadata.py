"""The installable package (pyproject.toml), the plugin directory (provider/) and the bootstrap stack's use of
the package: read from the files, and built offline with the pinned backend the venv already has."""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from components.common import PACKAGE
from components.package import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Import name -> distribution, for the third-party modules the components import.
DISTRIBUTIONS = {"pulumi": "pulumi", "pulumi_gcp": "pulumi-gcp", "pulumi_kubernetes": "pulumi-kubernetes",
                 "pulumi_random": "pulumi-random", "pulumiverse_time": "pulumiverse-time", "yaml": "PyYAML"}


def _pins(lines: list[str]) -> dict[str, str]:
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups() for line in lines)


def test_build_backend_is_pinned_and_installed_by_requirements():
    build = PYPROJECT["build-system"]
    assert build["build-backend"] == "hatchling.build"
    pins = _pins(build["requires"])
    assert set(pins) == {"hatchling", "hatch-vcs", "setuptools-scm"}
    requirements = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert pins.items() <= _pins([line for line in requirements if "==" in line]).items()


def test_version_comes_from_the_git_tag():
    project = PYPROJECT["project"]
    assert project["name"] == DISTRIBUTION
    assert "version" not in project and project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["source"] == "vcs"


def _third_party_imports() -> set[str]:
    """Module-level imports only: fetch_dag_version.py imports Airflow inside the task pod, not here."""
    found = set()
    for path in (ROOT / "components").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found |= {n.split(".")[0] for n in names if n}
    return {n for n in found if n not in sys.stdlib_module_names and n != "components"}


def test_dependencies_cover_every_import_of_the_components():
    declared = {re.split(r"[<>=!~ ;\[]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    imported = _third_party_imports()
    assert imported <= set(DISTRIBUTIONS), f"map these to their distribution: {imported - set(DISTRIBUTIONS)}"
    assert {DISTRIBUTIONS[m].lower() for m in imported} <= declared


def test_plugin_directory_hosts_the_package():
    plugin = yaml.safe_load((ROOT / "provider" / "PulumiPlugin.yaml").read_text())
    assert plugin["name"] == PACKAGE  # the host's name, the package of every type token
    assert plugin["runtime"]["name"] == "python"
    main = ast.parse((ROOT / "provider" / "__main__.py").read_text())
    guard = next(n for n in main.body if isinstance(n, ast.If) and ast.unparse(n.test) == "__name__ == '__main__'")
    assert "component_provider_host(name=PACKAGE" in ast.unparse(guard)
    # The language host installs the plugin's requirements from its directory: the repository root is `..`.
    assert [line for line in (ROOT / "provider" / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")] == [".."]


def test_bootstrap_uses_the_package_not_a_path_edit():
    source = (ROOT / "bootstrap" / "__main__.py").read_text()
    assert "sys.path" not in source
    assert [line for line in (ROOT / "bootstrap" / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")] == ["-e .."]


needs_backend = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("hatchling", "hatch_vcs", "setuptools_scm"))
    or shutil.which("git") is None, reason="the pinned build backend (requirements.txt) or git is not installed")


@needs_backend
def test_wheel_built_at_a_tag_has_its_version_and_every_module(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT / "components", source / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "auth", source / "auth", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", source / "pyproject.toml")
    (source / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "reuse.md", source / "docs" / "reuse.md")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "release"], ["tag", "v1.2.0"]):
        subprocess.run([*git, *command], cwd=source, check=True)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-c", "import sys, hatchling.build as b; b.build_wheel(sys.argv[1])", str(out)],
                   cwd=source, check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    assert wheel.name.startswith("airflow_gke_components-1.2.0-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    expected = {str(p.relative_to(source)) for p in (source / "components").rglob("*") if p.is_file()}
    assert "components/config/airflow_config_reference.json" in expected  # data files ship too
    # Read from <root>/auth by the workload (iap_sign_in.AUTH_DIR): installed, <root> is site-packages.
    from components.airflow.pod.iap_sign_in import AUTH_DIR, MODULES
    assert AUTH_DIR == ROOT / "auth" and {f"auth/{m}" for m in MODULES} <= names
    assert expected <= names
    assert "Version: 1.2.0" in metadata.splitlines()
    assert "Requires-Dist: pulumi-gcp<11,>=10.2.0" in metadata.splitlines()
