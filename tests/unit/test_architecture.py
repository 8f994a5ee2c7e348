"""The architecture picture (build/<stack>/architecture.svg, docs/architecture.svg): drawn from the program's
records, readable (no overlaps, labels inside their boxes, no arrow through a box), and committed up to date."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from preview.architecture import direct, edges, groups
from preview.architecture_svg import CHAR, GUTTER, PAD, TITLE_CHAR, architecture_svg, layout, text_width
from preview.harness import Capture

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "architecture.svg"
REGENERATE = "make docs (or: make preview STACK=dev && cp build/dev/architecture.svg docs/architecture.svg)"


def records(capture: Capture) -> list[dict]:
    return [r.to_json() for r in capture.resources]


def by_title(capture: Capture) -> dict:
    return {g.title: g for g in groups(records(capture))}


def test_committed_picture_is_the_dev_preview(dev: Capture):
    drawn = architecture_svg(records(dev), "dev")
    assert COMMITTED.exists(), f"docs/architecture.svg is missing; generate it: {REGENERATE}"
    assert COMMITTED.read_text() == drawn, (
        f"docs/architecture.svg no longer matches what the program builds; regenerate and commit it: {REGENERATE}")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_box_per_component(stack, request):
    capture = request.getfixturevalue(stack)
    components = {r.urn for r in capture.resources if r.parent is None}
    assert {g.key for g in groups(records(capture))} == components
    titles = by_title(capture)
    for expected in ("Network", "Database", "Cluster", "Registry", "Identity", "Logs", "Airflow workload"):
        assert expected in titles


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_airflow_box_shows_each_deployments_containers_in_start_order(stack, request):
    capture = request.getfixturevalue(stack)
    pods = {p.title: p for p in by_title(capture)["Airflow workload"].pods}
    for resource, manifest in capture.kubernetes_objects():
        if manifest["kind"] != "Deployment":
            continue
        spec = manifest["spec"]["template"]["spec"]
        expected = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
        shown = pods[f"Deployment {manifest['metadata']['name']}"]
        assert [name for name, _ in shown.containers] == expected
        sidecars = {c["name"] for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"}
        assert {name for name, role in shown.containers if role == "sidecar"} == sidecars
    assert any(title.startswith("task pod") for title in pods), "the KubernetesExecutor's task pod is drawn"


def test_dev_git_sync_and_prod_git_bundle_pods_differ(dev: Capture, prod: Capture):
    dev_pods = {p.title for p in by_title(dev)["Airflow workload"].pods}
    prod_pods = {p.title for p in by_title(prod)["Airflow workload"].pods}
    assert "Deployment airflow-dag-processor" in prod_pods - dev_pods


def test_only_direct_waits_are_drawn(dev: Capture):
    found = edges(records(dev))
    drawn = direct(found)
    titles = {g.key: g.title for g in groups(records(dev))}
    named = {(titles[a], titles[b]) for a, b in drawn}
    every = {(titles[a], titles[b]) for a, b in found}
    # Everything waits for the APIs, but only through the groups that wait for them directly.
    assert ("Cluster", "APIs") in every and ("Cluster", "APIs") not in named
    assert ("Database", "Network") in named and ("Workload Identity", "Cluster") in named
    assert ("Airflow workload", "Cluster") in every  # through the Kubernetes provider
    assert ("Airflow workload", "Cluster") not in named  # implied: the bindings wait for the cluster


def test_reduction_keeps_reachability():
    pairs = {("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("a", "d")}
    assert direct(pairs) == {("a", "b"), ("b", "c"), ("c", "d")}


def _inside(x: float, y: float, box) -> bool:
    return box.x < x < box.x + box.width and box.y < y < box.y + box.height


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_readable_layout(stack, request):
    boxes, paths, width, height = layout(records(request.getfixturevalue(stack)))
    real = [b for b in boxes if b.group is not None]
    for a in real:
        assert 0 <= a.x and a.x + a.width <= width and a.y + a.height <= height, f"{a.group.title} is clipped"
        for b in real:
            if a is not b:
                assert (a.x + a.width <= b.x or b.x + b.width <= a.x or a.y + a.height <= b.y
                        or b.y + b.height <= a.y), f"{a.group.title} overlaps {b.group.title}"
        room = a.width - 2 * PAD + 0.01
        assert text_width(a.group.title, TITLE_CHAR) <= room
        column = (room + GUTTER) / a.columns - GUTTER  # a gutter between columns
        assert all(text_width(f"{kind}  {names}", CHAR) <= column for kind, names in a.group.lines)
    for points in paths:
        ends = [b for b in real if _inside(points[0][0], points[0][1] - 1, b) or
                _inside(points[-1][0], points[-1][1] + 1, b)]
        assert len(ends) == 2, "every arrow leaves one box's bottom and enters another's top"
        for (x1, y1), (x2, y2) in zip(points, points[1:]):
            low, high = min(y1, y2), max(y1, y2)
            if x1 == x2:  # straight down: through a slot of its own, or below its own box
                crossed = [b for b in real if b.x < x1 < b.x + b.width and b.y < high and low < b.y + b.height]
            else:  # a curve: only in the gap between two rows, where no box is
                crossed = [b for b in real if b.y < high and low < b.y + b.height]
            assert not crossed, f"an arrow runs through {crossed[0].group.title}"


def test_deterministic_whatever_the_registration_order(dev: Capture):
    first = architecture_svg(records(dev), "dev")
    shuffled = records(dev)
    random.Random(7).shuffle(shuffled)
    assert architecture_svg(shuffled, "dev") == first
    ElementTree.fromstring(first)  # well-formed


def test_preview_writes_the_picture(tmp_path):
    from preview.__main__ import main
    assert main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "dev" / "architecture.svg").read_text() == COMMITTED.read_text()
