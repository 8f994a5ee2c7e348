"""`python -m preview`: the offline preview CLI run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from preview.harness import Capture

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"

REQUIRED_TYPES = (
    "gcp:compute/network:Network",
    "gcp:compute/router:Router",
    "gcp:compute/routerNat:RouterNat",
    "gcp:servicenetworking/connection:Connection",
    "gcp:container/cluster:Cluster",
    "gcp:sql/databaseInstance:DatabaseInstance",
    "gcp:sql/database:Database",
    "gcp:sql/user:User",
    "gcp:artifactregistry/repository:Repository",
    "gcp:serviceaccount/account:Account",
    "gcp:storage/bucket:Bucket",
    "pulumi:providers:kubernetes",
)
FIELDS = ("type", "name", "urn", "parent", "dependencies", "inputs")


def run_preview(*args: str) -> subprocess.CompletedProcess:
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    return subprocess.run([python, "-m", "preview", *args], cwd=ROOT, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("preview")


@pytest.fixture(scope="module")
def previews(out_dir) -> dict[str, subprocess.CompletedProcess]:
    return {stack: run_preview("--stack", stack, "--out", str(out_dir)) for stack in ("dev", "prod")}


@pytest.fixture(params=["dev", "prod"])
def stack(request, previews, out_dir):
    result = previews[request.param]
    assert result.returncode == 0, result.stderr
    resources_file = out_dir / request.param / "resources.json"
    return request.param, result, json.loads(resources_file.read_text()), resources_file


def test_exits_zero_and_prints_the_tree(stack, dev: Capture, prod: Capture):
    name, result, _, _ = stack
    capture = {"dev": dev, "prod": prod}[name]
    out = result.stdout
    assert "pulumi:pulumi:Stack" in out
    assert f"airflow-gke-{name}" in out
    components = [r for r in capture.resources if not r.custom]
    assert components
    for component in components:
        assert any(component.type in line and component.name in line for line in out.splitlines()), component.type
    # Children are drawn under their component.
    assert "├─ " in out and "└─ " in out


def test_kubeconfig_output_is_masked(stack):
    _, result, _, _ = stack
    lines = [line for line in result.stdout.splitlines() if line.strip().startswith("kubeconfig")]
    assert len(lines) == 1
    assert lines[0].split(":", 1)[1].strip() == '"[secret]"'
    assert "gke-gcloud-auth-plugin" not in result.stdout


def test_resources_json_shape(stack):
    _, _, resources, _ = stack
    assert isinstance(resources, list) and resources
    for resource in resources:
        assert isinstance(resource, dict)
        missing = [f for f in FIELDS if f not in resource]
        assert not missing, (resource.get("name"), missing)
        assert isinstance(resource["dependencies"], list) and isinstance(resource["inputs"], dict)
    types = {r["type"] for r in resources}
    for required in REQUIRED_TYPES:
        assert required in types, required
    urns = {r["urn"] for r in resources}
    assert len(urns) == len(resources), "URNs are unique"
    for resource in resources:
        assert resource["parent"] is None or resource["parent"] in urns
        assert set(resource["dependencies"]) <= urns


def test_resources_json_matches_the_in_process_run(stack, dev: Capture, prod: Capture):
    name, _, resources, _ = stack
    capture = {"dev": dev, "prod": prod}[name]
    assert sorted(r["urn"] for r in resources) == sorted(r.urn for r in capture.resources)


def test_no_secret_value_in_resources_json(stack, dev: Capture, prod: Capture):
    name, result, resources, resources_file = stack
    capture = {"dev": dev, "prod": prod}[name]
    text = resources_file.read_text()
    # The DB password as the mock generates it (dev and prod share the resource name, hence the value).
    (db_password,) = [r.outputs["result"] for r in dev.of_type("random:index/randomPassword:RandomPassword")
                      if r.outputs["result"] == dev.one("gcp:sql/user:User").inputs["password"]]
    secrets = {db_password, *(r.outputs["result"] for r in capture.of_type("random:index/randomPassword:RandomPassword"))}
    assert all(len(s) >= 16 for s in secrets)
    for secret in secrets:
        assert secret not in text
        assert secret not in result.stdout
    user = next(r for r in resources if r["type"] == "gcp:sql/user:User")
    assert user["inputs"]["password"] == "[secret]"
    provider = next(r for r in resources if r["type"] == "pulumi:providers:kubernetes")
    assert provider["inputs"]["kubeconfig"] == "[secret]"


def test_prod_tree_marks_protected_database(stack):
    name, result, resources, _ = stack
    protected = [r["name"] for r in resources if r.get("protect")]
    if name == "prod":
        assert protected and "[protect]" in result.stdout
    else:
        assert not protected and "[protect]" not in result.stdout


def test_unknown_stack_fails_with_one_clear_line(tmp_path):
    result = run_preview("--stack", "nosuch", "--out", str(tmp_path))
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message and "\n" not in message, result.stderr
    assert "Traceback" not in result.stderr
    assert "nosuch" in message
    assert "Pulumi.dev.yaml" in message  # says which stacks exist
    assert not (tmp_path / "nosuch").exists()


def test_bad_config_fails_without_writing(tmp_path, monkeypatch, capsys):
    """A stack whose config is invalid stops with the ConfigError, before any file is written."""
    import preview.__main__ as cli
    import preview.harness as harness

    real_load = harness.load_stack_file

    def bad_dev(stack, root=ROOT):
        config, skipped = real_load("dev", root)
        config["airflow-gke:replicas"] = "0"
        return config, skipped

    monkeypatch.setattr(harness, "load_stack_file", bad_dev)
    assert cli.main(["--stack", "dev", "--out", str(tmp_path)]) != 0
    assert not (tmp_path / "dev").exists()
    err = capsys.readouterr().err
    assert "airflow-gke:replicas" in err and "pulumi config set airflow-gke:replicas" in err


def test_output_is_identical_across_runs(previews, out_dir, tmp_path):
    again = run_preview("--stack", "dev", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "dev" / "resources.json").read_bytes() == (out_dir / "dev" / "resources.json").read_bytes()
    tree = [line for line in again.stdout.splitlines() if not line.startswith("Wrote")]
    assert tree == [line for line in previews["dev"].stdout.splitlines() if not line.startswith("Wrote")]
    first = sorted(p.name for p in (out_dir / "dev" / "manifests").iterdir())
    assert first == sorted(p.name for p in (tmp_path / "dev" / "manifests").iterdir())
