"""The rendered manifests (and the task-pod template inside the ConfigMap) against the Kubernetes schema
of the configured version (kubernetes-validate, strict) and against checkov with .checkov.yaml.

checkov lives in its own venv (.venv-checkov, installed by `make test`) and runs as a subprocess; it is
never imported here.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from components.config import KUBERNETES_SCHEMA_VERSION
from preview.harness import ROOT, Capture, run_program
from preview.render import write_outputs
from tests import crd_schema
from tests.conftest import kubernetes_schema_version, stack_config, stack_settings

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_CONFIG = ROOT / ".checkov.yaml"
# Each DAG source is scanned (airflow-gke:dagSource): dev defaults to git-sync and prod to git-bundle;
# prod-git-sync keeps the two-replica git-sync workload scanned too.
VARIANTS = {"dev": ("dev", {}), "prod": ("prod", {}), "prod-git-sync": ("prod", {"dagSource": "git-sync"})}
STACKS = tuple(VARIANTS)
POD_TEMPLATE_FILE = "pod-template.yaml"

needs_checkov = pytest.mark.skipif(
    not CHECKOV.exists(),
    reason=f"{CHECKOV.relative_to(ROOT)} is missing; `make test` (target .venv-checkov/.installed) installs "
           "checkov from requirements-checkov.txt")


@dataclass
class Rendered:
    stack: str
    capture: Capture
    manifests_dir: Path
    pod_template_dir: Path
    kubernetes_version: str  # as kubernetes-validate wants it: "1.33.0"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Rendered]:
    out = tmp_path_factory.mktemp("rendered")
    result = {}
    for name, (stack, overrides) in VARIANTS.items():
        capture = run_program(stack, stack_config(stack, **overrides))
        _, manifests_dir = write_outputs(capture, out / name)
        config_maps = [m for _, m in capture.kubernetes_objects()
                       if m["kind"] == "ConfigMap" and "pod_template_file.yaml" in m.get("data", {})]
        assert len(config_maps) == 1
        pod_template_dir = out / f"{name}-pod-template"
        pod_template_dir.mkdir()
        template = yaml.safe_load(config_maps[0]["data"]["pod_template_file.yaml"])
        (pod_template_dir / POD_TEMPLATE_FILE).write_text(yaml.safe_dump(template, sort_keys=True))
        # Task pods run in the workload's namespace under its NetworkPolicies. checkov's CKV2_K8S_6 ("pods
        # without a NetworkPolicy") is a graph check over the scanned files, so the policies go next to the
        # template: the template passes only if a policy of the same capture really selects its labels.
        for policy in manifests_dir.glob("networkpolicy-*.yaml"):
            (pod_template_dir / policy.name).write_text(policy.read_text())
        result[name] = Rendered(name, capture, manifests_dir, pod_template_dir, kubernetes_schema_version(stack))
    return result


def yaml_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.yaml"))
    assert files, f"nothing rendered in {directory}"
    return files


def test_variants_scan_each_dag_source(rendered):
    """Both DAG sources reach the scanners: git-sync containers in some variants, none in others."""
    with_git_sync = set()
    for name, r in rendered.items():
        deployment = next(m for _, m in r.capture.kubernetes_objects() if m["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        if any(c["name"] == "git-sync" for c in pod["containers"]):
            with_git_sync.add(name)
    assert with_git_sync and with_git_sync != set(rendered), with_git_sync


# --- kubernetes-validate ---------------------------------------------------------------------------

def test_schema_version_is_the_pinned_version_else_the_one_default():
    assert kubernetes_schema_version("dev") == KUBERNETES_SCHEMA_VERSION + ".0"
    assert re.fullmatch(r"1\.\d+\.0", kubernetes_schema_version("prod"))
    assert stack_settings("dev", kubernetesVersion="1.31").cluster.schema_version == "1.31"
    assert stack_settings("dev", kubernetesVersion="1.32.4").cluster.schema_version == "1.32"


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_are_valid_for_the_configured_kubernetes_version(rendered, stack):
    r = rendered[stack]
    files = yaml_files(r.manifests_dir)
    kinds = set()
    for path in files:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert len(documents) == 1, path.name
        kinds.add(documents[0]["kind"])
        if crd_schema.is_custom(documents[0]):  # unknown to kubernetes-validate: its vendored CRD (tests/crds/)
            crd_schema.validate(documents[0])
            continue
        try:
            kubernetes_validate.validate(documents[0], r.kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.name} is not a valid {documents[0]['kind']} for Kubernetes {r.kubernetes_version} "
                        f"(strict): {error.message} at {'.'.join(map(str, error.path))}")
    assert {"Deployment", "Job", "ConfigMap", "Secret", "Service", "Namespace", "NetworkPolicy", "PodMonitoring"} <= kinds
    assert len(files) == len(r.capture.kubernetes_objects())


@pytest.mark.parametrize("stack", STACKS)
def test_pod_template_is_a_valid_pod(rendered, stack):
    r = rendered[stack]
    template = yaml.safe_load((r.pod_template_dir / POD_TEMPLATE_FILE).read_text())
    assert template["kind"] == "Pod" and template["apiVersion"] == "v1"
    try:
        kubernetes_validate.validate(template, r.kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"the pod template is not a valid Pod for Kubernetes {r.kubernetes_version} (strict): "
                    f"{error.message} at {'.'.join(map(str, error.path))}")


def test_strict_validation_catches_a_misspelled_field(rendered):
    r = rendered["dev"]
    deployment = next(m for _, m in r.capture.kubernetes_objects() if m["kind"] == "Deployment")
    kubernetes_validate.validate(deployment, r.kubernetes_version, strict=True)
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolcy"):
        kubernetes_validate.validate(broken, r.kubernetes_version, strict=True)
    # Only strict mode rejects unknown fields: without it this typo would pass unnoticed.
    kubernetes_validate.validate(broken, r.kubernetes_version, strict=False)


# --- checkov -----------------------------------------------------------------------------------

def run_checkov(directory: Path) -> dict:
    """Run checkov with the project's config on one folder; return {summary, passed, failed} (kubernetes)."""
    process = subprocess.run(
        [str(CHECKOV), "--config-file", str(CHECKOV_CONFIG), "-d", str(directory), "-o", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert process.returncode in (0, 1), f"checkov exited {process.returncode}:\n{process.stderr[-3000:]}"
    try:
        report = json.loads(process.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not print JSON:\n{process.stdout[-2000:]}\n{process.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    kubernetes = [r for r in reports if r.get("check_type") == "kubernetes"]
    assert len(kubernetes) == 1, f"checkov produced no kubernetes report for {directory}: {reports}"
    results = kubernetes[0]["results"]
    return {"summary": kubernetes[0]["summary"], "passed": results["passed_checks"],
            "failed": results["failed_checks"]}


def describe(failures: list[dict]) -> str:
    return "\n".join(f"  {f['check_id']} {f['check_name']}: {f['resource']} ({f['file_path']})" for f in failures)


@needs_checkov
@pytest.mark.parametrize("stack", STACKS)
def test_checkov_passes_on_the_manifests(rendered, stack):
    r = rendered[stack]
    report = run_checkov(r.manifests_dir)
    assert not report["failed"], f"checkov failed checks on {stack} manifests:\n{describe(report['failed'])}"
    assert report["summary"]["parsing_errors"] == 0
    assert len(report["passed"]) > 0
    checked = {Path(c["file_path"]).name for c in report["passed"]}
    for workload in [*r.manifests_dir.glob("deployment-*.yaml"), *r.manifests_dir.glob("job-*.yaml")]:
        assert workload.name in checked, f"checkov ran no check on {workload.name}"


@needs_checkov
@pytest.mark.parametrize("stack", STACKS)
def test_checkov_passes_on_the_pod_template(rendered, stack):
    r = rendered[stack]
    report = run_checkov(r.pod_template_dir)
    assert not report["failed"], f"checkov failed checks on the {stack} pod template:\n{describe(report['failed'])}"
    assert report["summary"]["parsing_errors"] == 0
    on_template = [c for c in report["passed"] if Path(c["file_path"]).name == POD_TEMPLATE_FILE]
    assert len(on_template) > 0, "checkov ran no check on the pod template"
    assert "CKV2_K8S_6" in {c["check_id"] for c in on_template}, "the pod template is not covered by a NetworkPolicy"


@needs_checkov
def test_checkov_reports_failures_it_finds(rendered, tmp_path):
    """The harness must see failures: a Deployment stripped of its security context fails checks."""
    source = next(rendered["dev"].manifests_dir.glob("deployment-*.yaml"))
    deployment = yaml.safe_load(source.read_text())
    pod = deployment["spec"]["template"]["spec"]
    pod.pop("securityContext")
    for container in [*pod["containers"], *pod["initContainers"]]:
        container.pop("securityContext")
    (tmp_path / source.name).write_text(yaml.safe_dump(deployment))
    report = run_checkov(tmp_path)
    assert {"CKV_K8S_20", "CKV_K8S_28"} <= {f["check_id"] for f in report["failed"]}, describe(report["failed"])


# --- .checkov.yaml ----------------------------------------------------------------------------

def uncommented_skips(text: str) -> tuple[list[str], list[str]]:
    """(all skip-check ids, the ids not directly preceded by a comment line) of a .checkov.yaml text."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^skip-check\s*:", line)), None)
    if start is None:
        return [], []
    assert lines[start].split(":", 1)[1].strip() in ("", "[]"), "write skip-check as a block list, one id a line"
    ids, bare = [], []
    previous = ""
    for line in lines[start + 1:]:
        stripped = line.strip()
        if line and not line[0].isspace() and not line.startswith("-") and not stripped.startswith("#"):
            break  # next top-level key
        item = re.match(r"^\s*-\s*([^#\s]+)", line)
        if item:
            ids.append(item.group(1))
            if not previous.startswith("#") or len(previous.lstrip("# ").strip()) < 10:
                bare.append(item.group(1))
        if stripped:
            previous = stripped
    return ids, bare


def test_every_skipped_check_has_a_reason():
    text = CHECKOV_CONFIG.read_text()
    ids, bare = uncommented_skips(text)
    assert not bare, f".checkov.yaml skips checks without a reason comment right above them: {bare}"
    assert sorted(ids) == sorted(yaml.safe_load(text).get("skip-check") or [])
    assert all(re.fullmatch(r"CKV2?_K8S_\d+", i) for i in ids), ids


def test_reason_detection_finds_a_bare_skip():
    text = ("framework:\n  - kubernetes\nskip-check:\n  # A proper reason for the first skip.\n  - CKV_K8S_1\n"
            "  - CKV_K8S_2\n  # another reason, long enough\n  - CKV_K8S_3\n  #\n  - CKV_K8S_4\nquiet: true\n")
    assert uncommented_skips(text) == (["CKV_K8S_1", "CKV_K8S_2", "CKV_K8S_3", "CKV_K8S_4"],
                                       ["CKV_K8S_2", "CKV_K8S_4"])
