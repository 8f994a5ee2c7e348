"""Golden manifests: the Kubernetes objects the real program renders for a matrix of configurations,
written under tests/golden/<case>/ so a refactoring of the builders can prove it changes no byte.

`make golden` (python -m tests.golden_manifests) rewrites the directory; tests/unit/test_golden_manifests.py
fails, with a unified diff, when today's render differs. Secrets are the harness's masked values and its
random resources are seeded, so a render is deterministic.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

from preview.harness import run_program
from preview.render import manifest_filename
from tests.conftest import stack_config

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"

TOKEN = "ghp_goldenTokenValue0000000000"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZ29sZGVuLWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n"
KNOWN_HOSTS = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
SSH_REPO = "git@github.com:acme/private-dags.git"
TOKEN_REPO = "https://github.com/acme/private-dags.git"
BUNDLE = {"dagSource": "git-bundle", "gitSyncPeriod": None, "gitSyncMaxFailures": None}

# case -> (stack, config overrides; None removes a key, "secret:" marks a Pulumi secret). Each case exercises
# a branch of the pod builders the others do not.
MATRIX: dict[str, tuple[str, dict]] = {
    "dev": ("dev", {}),  # git-sync, public repo, Standard cluster, ClusterIP, one replica
    "prod": ("prod", {}),  # git-bundle (prod's default), spot pool, two replicas (PDB), custom resources
    "prod-git-sync": ("prod", {"dagSource": "git-sync"}),  # git-sync with replicas > 1
    "autopilot": ("dev", {"clusterMode": "autopilot"}),
    "git-sync-token": ("dev", {"dagsRepo": TOKEN_REPO, "dagsGitToken": "secret:" + TOKEN}),
    "git-sync-ssh": ("dev", {"dagsRepo": SSH_REPO, "dagsSshKey": "secret:" + SSH_KEY,
                             "dagsSshKnownHosts": KNOWN_HOSTS}),
    "git-sync-ssh-unverified": ("dev", {"dagsRepo": SSH_REPO, "dagsSshKey": "secret:" + SSH_KEY}),
    "bundle-public": ("dev", {**BUNDLE}),
    "bundle-token": ("dev", {**BUNDLE, "dagsRepo": TOKEN_REPO, "dagsGitToken": "secret:" + TOKEN}),
    "bundle-ssh": ("dev", {**BUNDLE, "dagsRepo": SSH_REPO, "dagsSshKey": "secret:" + SSH_KEY,
                           "dagsSshKnownHosts": KNOWN_HOSTS}),
    "bundle-ssh-unverified": ("dev", {**BUNDLE, "dagsRepo": SSH_REPO, "dagsSshKey": "secret:" + SSH_KEY}),
    "load-balancer": ("dev", {"serviceType": "LoadBalancer", "loadBalancerSourceRanges": '["203.0.113.0/24"]'}),
    # prod as a team runs it (issue 17's "done when"): front door, sign-in, task roles, secrets, settings
    "front-door": ("prod", {"uiHost": "airflow.acme-data.io", "uiDnsZone": "acme-public", "baseUrl": "",
                            "uiAccess": '{"Admin": ["group:airflow-admins@acme-data.io"], "Op": '
                                        '["serviceAccount:ci@acme-data.iam.gserviceaccount.com"], '
                                        '"Viewer": ["domain:acme-data.io"]}',
                            "workerRoles": '["roles/bigquery.dataViewer"]',
                            "airflowConfig": '{"core.default_task_retries": "2"}'}),
    "iap-sign-in": ("dev", {"uiHost": "airflow.acme-data.io", "uiAccess": '{"Admin": ["user:ana@acme-data.io"], "Viewer": ["domain:acme-data.io"]}',
                            "uiBackendServiceId": "4242424242"}),
    "internal-load-balancer": ("dev", {"serviceType": "InternalLoadBalancer",
                                       "loadBalancerSourceRanges": '["10.0.0.0/8"]'}),
    "custom": ("dev", {"namespace": "orchestration", "maintenanceCpuLimit": "250m", "dagsRef": "release-7",
                       "dagsSubpath": "pipelines/dags", "gitSyncPeriod": "2m", "gitSyncMaxFailures": "4",
                       "replicas": "3", "metadataRetentionDays": "0", "baseUrl": "https://airflow.example.com",
                       "dagRefreshInterval": "30s", "dagReparseInterval": "10m", "dbPoolSize": "3",
                       "dbPoolMaxOverflow": "0", "dbTier": "db-custom-1-3840",
                       "adminUsername": "ops", "adminEmail": "ops@example.com",
                       "adminPassword": "secret:golden-admin-password", "secretsVersion": "2",
                       "airflowImage": "us-central1-docker.pkg.dev/my-airflow-project/airflow/airflow:1.0",
                       "containerResources": '{"git-sync": {"cpu": "50m", "memoryLimit": "256Mi"}, '
                                             '"api-server": {"cpu": "750m", "memory": "1Gi", "memoryLimit": "1536Mi"}, '
                                             '"cloud-sql-proxy": {"cpuLimit": "500m"}}'}),
    "git-sync-retry-forever": ("dev", {"gitSyncPeriod": "10s", "gitSyncMaxFailures": "0"}),
}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (scripts, the pod template inside the ConfigMap) as literal blocks: readable diffs."""


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value and all(not line.endswith(" ") for line in value.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def case_config(stack: str, overrides: dict) -> tuple[dict[str, str], list[str]]:
    config = stack_config(stack)
    secret_keys = []
    for key, value in overrides.items():
        full_key = f"airflow-gke:{key}"
        if value is None:
            config.pop(full_key, None)
            continue
        if value.startswith("secret:"):
            value = value[len("secret:"):]
            secret_keys.append(full_key)
        config[full_key] = value
    return config, secret_keys


def render(case: str) -> dict[str, str]:
    """File name -> YAML text of every Kubernetes object the case renders (secrets masked)."""
    stack, overrides = MATRIX[case]
    config, secret_keys = case_config(stack, overrides)
    capture = run_program(stack, config, secret_keys=secret_keys)
    files: dict[str, str] = {}
    for resource in capture.resources:
        if not (resource.type.startswith("kubernetes:") and resource.custom):
            continue
        manifest = resource.masked_inputs
        manifest.setdefault("metadata", {}).setdefault("name", resource.name)
        name = manifest_filename(manifest)
        if name in files:
            raise ValueError(f"{case}: two Kubernetes objects render to {name}")
        files[name] = yaml.dump(manifest, Dumper=_Dumper, sort_keys=True, width=120)
    return dict(sorted(files.items()))


def write(root: Path = GOLDEN_DIR, cases: list[str] | None = None) -> None:
    for case in cases or sorted(MATRIX):
        target = root / case
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name, text in render(case).items():
            (target / name).write_text(text)
    stale = {p.name for p in root.iterdir() if p.is_dir()} - set(MATRIX)
    for name in stale:
        shutil.rmtree(root / name)


if __name__ == "__main__":
    write(cases=sys.argv[1:] or None)
    print(f"golden manifests of {len(MATRIX)} cases written to {GOLDEN_DIR}")
