"""Shared fixtures: the real program run under the project's one mock harness (preview/harness.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.config import StackConfig, load_stack_config  # noqa: E402
from preview.harness import Capture, load_stack_file, run_program  # noqa: E402


def stack_config(stack: str = "dev", **overrides: str) -> dict[str, str]:
    """The stack's config as the preview reads it, with `key=value` overrides (full keys or project keys)."""
    config, _ = load_stack_file(stack)
    for key, value in overrides.items():
        config[key if ":" in key else f"airflow-gke:{key}"] = value
    return config


def stack_settings(stack: str = "dev", **overrides: str) -> StackConfig:
    """The validated config of the stack (with overrides) as the offline preview reads it."""
    config = stack_config(stack, **overrides)

    class Source:
        @staticmethod
        def get(namespace: str, key: str):
            return config.get(f"{namespace}:{key}")

    return load_stack_config(Source(), deploying=False)


def kubernetes_schema_version(stack: str = "dev") -> str:
    """The Kubernetes version (e.g. "1.33.0") the stack's manifests are validated against."""
    return stack_settings(stack).cluster.schema_version + ".0"


def run_stack(stack: str = "dev", **overrides: str) -> Capture:
    return run_program(stack, stack_config(stack, **overrides))


@pytest.fixture(scope="session")
def dev() -> Capture:
    return run_program("dev")


@pytest.fixture(scope="session")
def prod() -> Capture:
    return run_program("prod")


@pytest.fixture(scope="session")
def autopilot() -> Capture:
    return run_stack("dev", clusterMode="autopilot")
