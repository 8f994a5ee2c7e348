"""Turn a mocked run into files and a `pulumi preview`-like tree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from .architecture_svg import architecture_svg
from .cost import CostReport
from .harness import MASKED, Capture


def manifest_filename(manifest: dict) -> str:
    namespace = manifest.get("metadata", {}).get("namespace")
    parts = [manifest["kind"].lower(), *([namespace] if namespace else []), manifest["metadata"]["name"]]
    return "-".join(parts) + ".yaml"


def write_outputs(capture: Capture, out_dir: Path) -> tuple[Path, Path]:
    """Write resources.json and one YAML file per Kubernetes object; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    resources_file = out_dir / "resources.json"
    resources_file.write_text(json.dumps([r.to_json() for r in sorted(capture.resources, key=lambda r: r.urn)],
                                         indent=2, sort_keys=True) + "\n")
    manifests_dir = out_dir / "manifests"
    shutil.rmtree(manifests_dir, ignore_errors=True)
    manifests_dir.mkdir()
    for _, manifest in capture.kubernetes_objects():
        path = manifests_dir / manifest_filename(manifest)
        if path.exists():
            raise ValueError(f"two Kubernetes objects render to {path.name}")
        path.write_text(yaml.safe_dump(manifest, sort_keys=True))
    return resources_file, manifests_dir


def write_cost(report: CostReport, out_dir: Path) -> Path:
    """build/<stack>/cost.json: the rows, the total (`total_monthly_usd`) and the goals."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cost_file = out_dir / "cost.json"
    cost_file.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
    return cost_file


def write_architecture(capture: Capture, out_dir: Path) -> Path:
    """build/<stack>/architecture.svg: the picture of what the stack builds (docs/architecture.svg is dev's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = out_dir / "architecture.svg"
    picture.write_text(architecture_svg([r.to_json() for r in capture.resources], capture.stack))
    return picture


def tree_lines(capture: Capture) -> list[str]:
    children: dict = {}
    # Registration is asynchronous, so its order varies; sort for output that diffs cleanly.
    for resource in sorted(capture.resources, key=lambda r: (r.type, r.name)):
        children.setdefault(resource.parent, []).append(resource)
    type_width = max((len(r.type) for r in capture.resources), default=20) + 6
    lines = [f"     {'Type':<{type_width}} Name", f" +   {'pulumi:pulumi:Stack':<{type_width}} airflow-gke-{capture.stack}"]

    def walk(parent, prefix: str) -> None:
        nodes = children.get(parent, [])
        for index, node in enumerate(nodes):
            last = index == len(nodes) - 1
            branch = prefix + ("└─ " if last else "├─ ")
            protect = "  [protect]" if node.protect else ""
            lines.append(f" +   {branch + node.type:<{type_width}} {node.name}{protect}")
            walk(node.urn, prefix + ("   " if last else "│  "))

    walk(None, "")
    return lines


def output_lines(capture: Capture) -> list[str]:
    lines = ["Outputs:"]
    for name in sorted(capture.outputs):
        value = MASKED if name in capture.secret_outputs else capture.outputs[name]
        lines.append(f"    {name:<28}: {json.dumps(value)}")
    return lines
