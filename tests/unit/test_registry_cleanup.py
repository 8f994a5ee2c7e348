"""The registry's cleanup keeps the image a stack runs: release tags are kept forever, commit-SHA tags age out.

The declared policies are evaluated by a small model of Artifact Registry's documented semantics
(https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy and
.../cleanup-policy-overview): a version matching a KEEP and a DELETE policy is kept; `mostRecentVersions`
keeps the newest N versions of a package; `tagPrefixes` match on any tag of the version and are ignored
unless `tagState` is TAGGED (https://stackoverflow.com/q/78702774)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from components.config import ConfigError
from components.config.registry import DEFAULT_KEEP_TAG_PREFIXES, image_cleanup_warning
from preview.harness import load_stack_file, run_program
from tests.conftest import run_stack, stack_config, stack_settings

REPOSITORY = "gcp:artifactregistry/repository:Repository"
DAY = 86400


@dataclass(frozen=True)
class Version:
    tags: tuple[str, ...]
    age_days: int


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


def _condition_matches(condition: dict, version: Version) -> bool:
    state = condition.get("tagState", "ANY")
    if state == "TAGGED" and not version.tags or state == "UNTAGGED" and version.tags:
        return False
    prefixes = condition.get("tagPrefixes")
    if state == "TAGGED" and prefixes and not any(t.startswith(tuple(prefixes)) for t in version.tags):
        return False
    if "olderThan" in condition and version.age_days * DAY <= _seconds(condition["olderThan"]):
        return False
    if "newerThan" in condition and version.age_days * DAY >= _seconds(condition["newerThan"]):
        return False
    return True


def deleted(policies: list[dict], versions: list[Version]) -> set[Version]:
    """The versions (of one package) the cleanup deletes."""
    newest_first = sorted(versions, key=lambda v: v.age_days)
    kept: set[Version] = set()
    doomed: set[Version] = set()
    for policy in policies:
        if "mostRecentVersions" in policy:
            matched = set(newest_first[:int(policy["mostRecentVersions"]["keepCount"])])
        else:
            matched = {v for v in versions if _condition_matches(policy.get("condition") or {}, v)}
        (kept if policy["action"] == "KEEP" else doomed).update(matched)
    return doomed - kept


def policies(capture) -> list[dict]:
    return capture.one(REPOSITORY).inputs["cleanupPolicies"]


def history(keep_count: int, pinned: str) -> tuple[Version, list[Version]]:
    """A stack pinned `pinned` 120 days ago; CI pushed more than `keep_count` commit images since."""
    pinned_version = Version(("3f9c2e1" + "0" * 33, pinned), 120)
    newer = [Version((f"{i:040x}",), 100 - i) for i in range(keep_count + 5)]
    return pinned_version, newer


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_release_tag_a_stack_runs_outlives_newer_commit_images(request, stack):
    capture = request.getfixturevalue(stack)
    keep_count = stack_settings(stack).registry.keep_versions
    release, newer = history(keep_count, "v1.4.0")
    gone = deleted(policies(capture), [release, *newer])
    assert release not in gone
    # Commit-SHA images still age out: only the newest N of them stay.
    assert len(gone) == len(newer) - keep_count and all(len(v.tags) == 1 for v in gone)


def test_an_untagged_old_version_and_an_old_commit_image_are_deleted(dev):
    keep_count = stack_settings("dev").registry.keep_versions
    release, newer = history(keep_count, "v1.4.0")
    untagged, sha_only = Version((), 200), Version(("a" * 40,), 200)
    gone = deleted(policies(dev), [release, untagged, sha_only, *newer])
    assert {untagged, sha_only} <= gone and release not in gone


def test_the_kept_prefixes_are_configurable():
    capture = run_stack("dev", registryKeepTagPrefixes='["prod-"]')
    release, newer = history(10, "prod-2026-08-01")
    assert release not in deleted(policies(capture), [release, *newer])
    v_tagged, _ = history(10, "v1.4.0")
    assert v_tagged in deleted(policies(capture), [v_tagged, *newer])


def test_the_key_is_declared_with_a_default():
    # The Pulumi CLI treats a typed project key without a default as required: every stack would need it.
    config, _ = load_stack_file("dev")
    assert config["airflow-gke:registryKeepTagPrefixes"] == '["v", "release-"]'
    assert stack_settings("dev").registry.keep_tag_prefixes == DEFAULT_KEEP_TAG_PREFIXES


@pytest.mark.parametrize("value, expected", [
    ("[]", "at least one prefix"),
    ('["a"]', "not all hex digits"),
    ('["v", "2026"]', "not all hex digits"),
    ('["v 1"]', "Docker tag prefixes"),
    ('"v"', "a JSON list"),
])
def test_bad_prefixes_are_refused(value, expected):
    with pytest.raises(ConfigError) as info:
        stack_settings("dev", registryKeepTagPrefixes=value)
    (problem,) = info.value.problems
    assert problem.startswith("airflow-gke:registryKeepTagPrefixes ") and expected in problem
    assert "Fix: pulumi config set --path 'airflow-gke:registryKeepTagPrefixes[0]' v" in problem


BASE = "us-central1-docker.pkg.dev/my-airflow-project/airflow"


@pytest.mark.parametrize("image, warns", [
    (f"{BASE}/airflow:{'c' * 40}", True),
    (f"{BASE}/airflow:{'c' * 40}@sha256:{'1' * 64}", True),
    (f"{BASE}/airflow:v1.4.0", False),
    (f"{BASE}/airflow:release-2026-08", False),
    (f"{BASE}/airflow@sha256:{'1' * 64}", False),  # its tags are unknown here
    (f"europe-west4-docker.pkg.dev/other/repo/airflow:{'c' * 40}", False),  # another registry's policy
    ("apache/airflow:3.3.2-python3.12", False),
])
def test_an_image_of_this_registry_without_a_release_tag_is_flagged(image, warns):
    warning = image_cleanup_warning(image, BASE, DEFAULT_KEEP_TAG_PREFIXES)
    assert bool(warning) == warns
    if warns:
        assert warning.startswith("airflow-gke:airflowImage = ") and "registryKeepTagPrefixes" in warning
        assert f"pulumi config set airflow-gke:airflowImage {BASE}/airflow:v<version>" in warning


def test_the_program_warns_about_a_commit_image_of_its_own_registry(caplog):
    config = stack_config("dev")
    image = f"{config['gcp:region']}-docker.pkg.dev/{config['gcp:project']}/airflow/airflow:{'d' * 40}"
    with caplog.at_level(logging.WARNING):
        run_program("dev", stack_config("dev", airflowImage=image))
    assert [r for r in caplog.records if "registryKeepTagPrefixes" in r.getMessage()]
