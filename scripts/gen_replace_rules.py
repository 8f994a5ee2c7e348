"""Regenerate rehearse/replace_rules_gcp.yaml: the ForceNew fields of every pulumi-gcp resource type the
program declares, read from the Terraform provider's Go schema (pulumi-gcp is a bridge of it).

    .venv/bin/python scripts/gen_replace_rules.py [--repo /work/.mirror/hashicorp+terraform-provider-google/repo]

Reads the mirror with `git show <commit>:<path>` (no work tree, no network). The tests read the committed
YAML only. Conditional replacements (CustomizeDiff: shrink a disk, unset a private network) are not
ForceNew in the schema; they live hand-written in rehearse/replace_rules.yaml with their sources.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "rehearse" / "replace_rules_gcp.yaml"
DEFAULT_REPO = "/work/.mirror/hashicorp+terraform-provider-google/repo"
SERVICES = "google/services/"

# Pulumi type -> (files, schema roots: functions or vars whose schema is the resource's top level).
TYPES: dict[str, tuple[list[str], list[str]]] = {
    "gcp:artifactregistry/repository:Repository": (
        ["artifactregistry/resource_artifact_registry_repository.go"], ["ResourceArtifactRegistryRepository"]),
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": (
        ["artifactregistry/iam_artifact_registry_repository.go", "../tpgiamresource/resource_iam_member.go"],
        ["ArtifactRegistryRepositoryIamSchema", "IamMemberBaseSchema"]),
    "gcp:certificatemanager/certificate:Certificate": (
        ["certificatemanager/resource_certificate_manager_certificate.go"], ["ResourceCertificateManagerCertificate"]),
    "gcp:certificatemanager/certificateMap:CertificateMap": (
        ["certificatemanager/resource_certificate_manager_certificate_map.go"],
        ["ResourceCertificateManagerCertificateMap"]),
    "gcp:certificatemanager/certificateMapEntry:CertificateMapEntry": (
        ["certificatemanager/resource_certificate_manager_certificate_map_entry.go"],
        ["ResourceCertificateManagerCertificateMapEntry"]),
    "gcp:compute/globalAddress:GlobalAddress": (
        ["compute/resource_compute_global_address.go"], ["ResourceComputeGlobalAddress"]),
    "gcp:compute/network:Network": (["compute/resource_compute_network.go"], ["ResourceComputeNetwork"]),
    "gcp:compute/router:Router": (["compute/resource_compute_router.go"], ["ResourceComputeRouter"]),
    "gcp:compute/routerNat:RouterNat": (["compute/resource_compute_router_nat.go"], ["ResourceComputeRouterNat"]),
    "gcp:compute/subnetwork:Subnetwork": (["compute/resource_compute_subnetwork.go"], ["ResourceComputeSubnetwork"]),
    "gcp:container/cluster:Cluster": (
        ["container/resource_container_cluster.go", "container/node_config.go",
         "container/resource_container_node_pool.go"], ["ResourceContainerCluster"]),
    "gcp:container/nodePool:NodePool": (
        ["container/resource_container_node_pool.go", "container/node_config.go"],
        ["ResourceContainerNodePool", "schemaNodePool"]),
    "gcp:dns/recordSet:RecordSet": (["dns/resource_dns_record_set.go"], ["ResourceDnsRecordSet"]),
    "gcp:iap/webTypeComputeIamMember:WebTypeComputeIamMember": (
        ["iap/iam_iap_web_type_compute.go", "../tpgiamresource/resource_iam_member.go"],
        ["IapWebTypeComputeIamSchema", "IamMemberBaseSchema"]),
    "gcp:projects/iAMMember:IAMMember": (
        ["resourcemanager/iam_project.go", "../tpgiamresource/resource_iam_member.go"],
        ["IamProjectSchema", "IamMemberBaseSchema"]),
    "gcp:projects/service:Service": (
        ["resourcemanager/resource_google_project_service.go"], ["ResourceGoogleProjectService"]),
    "gcp:projects/serviceIdentity:ServiceIdentity": (
        ["resourcemanager/resource_project_service_identity.go"], ["ResourceProjectServiceIdentity"]),
    "gcp:serviceaccount/account:Account": (
        ["resourcemanager/resource_google_service_account.go"], ["ResourceGoogleServiceAccount"]),
    "gcp:serviceaccount/iAMMember:IAMMember": (
        ["resourcemanager/iam_service_account.go", "../tpgiamresource/resource_iam_member.go"],
        ["IamServiceAccountSchema", "IamMemberBaseSchema"]),
    "gcp:servicenetworking/connection:Connection": (
        ["servicenetworking/resource_service_networking_connection.go"], ["ResourceServiceNetworkingConnection"]),
    "gcp:sql/database:Database": (["sql/resource_sql_database.go"], ["ResourceSQLDatabase"]),
    "gcp:sql/databaseInstance:DatabaseInstance": (
        ["sql/resource_sql_database_instance.go"], ["ResourceSqlDatabaseInstance"]),
    "gcp:sql/user:User": (["sql/resource_sql_user.go"], ["ResourceSqlUser"]),
    "gcp:monitoring/alertPolicy:AlertPolicy": (
        ["monitoring/resource_monitoring_alert_policy.go"], ["ResourceMonitoringAlertPolicy"]),
    "gcp:monitoring/dashboard:Dashboard": (["monitoring/resource_monitoring_dashboard.go"], ["ResourceMonitoringDashboard"]),
    "gcp:monitoring/notificationChannel:NotificationChannel": (
        ["monitoring/resource_monitoring_notification_channel.go"], ["ResourceMonitoringNotificationChannel"]),
    "gcp:storage/bucket:Bucket": (["storage/resource_storage_bucket.go"], ["ResourceStorageBucket"]),
    "gcp:storage/bucketIAMMember:BucketIAMMember": (
        ["storage/iam_storage_bucket.go", "../tpgiamresource/resource_iam_member.go"],
        ["StorageBucketIamSchema", "IamMemberBaseSchema"]),
}

_UNIT = re.compile(r"^(?:func\s+(?:\([^)]*\)\s*)?(\w+)\s*\(|var\s+(\w+)\s*=)")
_KEY_OPEN = re.compile(r'^\s*"(\w+)":\s*(?:&schema\.Schema)?\{')
_KEY_CALL = re.compile(r'^\s*"(\w+)":\s*(?:\w+\.)?(\w+)(\(\))?,')
_ELEM_REF = re.compile(r"^\s*Schema:\s*(\w+),")
_FORCE_NEW = re.compile(r"^\s*ForceNew:\s*true")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|`[^`]*`')


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def parse_units(text: str) -> dict[str, dict]:
    """Per top-level func/var: ForceNew paths (with line numbers) and references to other units."""
    units: dict[str, dict] = {}
    current = None
    stack: list[tuple[str, int]] = []  # (key, brace depth at which it opened)
    depth, in_raw = 0, False
    for number, line in enumerate(text.splitlines(), 1):
        if in_raw:  # inside a multi-line `raw string`
            if "`" in line:
                in_raw, line = False, line.split("`", 1)[1]
            else:
                continue
        found = _UNIT.match(line)
        if found and depth == 0:
            current = found.group(1) or found.group(2)
            units[current] = {"force_new": [], "refs": []}
            stack = []
        code = _STRING.sub('""', line)
        if code.count("`") % 2:
            in_raw, code = True, code.split("`", 1)[0]
        if current is not None:
            path = [k for k, _ in stack]
            if (key := _KEY_OPEN.match(line)):
                stack.append((key.group(1), depth))
            elif (call := _KEY_CALL.match(line)) and call.group(2) not in ("true", "false"):
                units[current]["refs"].append((path + [call.group(1)], call.group(2)))
            elif (elem := _ELEM_REF.match(line)):
                units[current]["refs"].append((path, elem.group(1)))
            if _FORCE_NEW.match(line) and stack:
                units[current]["force_new"].append(([k for k, _ in stack], number))
        depth += code.count("{") - code.count("}")
        while stack and depth <= stack[-1][1]:
            stack.pop()
    return units


def git_show(repo: str, commit: str, path: str) -> str:
    return subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def rules_for(repo: str, commit: str, files: list[str], roots: list[str]) -> list[dict]:
    units: dict[str, tuple[str, dict]] = {}
    for file in files:
        path = str(Path(SERVICES, file)).replace("services/../", "")
        for name, unit in parse_units(git_show(repo, commit, path)).items():
            units.setdefault(name, (path, unit))
    rules: dict[str, dict] = {}

    def walk(name: str, prefix: list[str], seen: tuple[str, ...]) -> None:
        if name not in units or name in seen:
            return
        path, unit = units[name]
        for keys, line in unit["force_new"]:
            full = prefix + keys
            pulumi_path = ".".join(camel(k) for k in full)
            rules.setdefault(pulumi_path, {"path": pulumi_path, "tf": ".".join(full), "source": f"{path}#L{line}"})
        for keys, target in unit["refs"]:
            walk(target, prefix + keys, seen + (name,))

    for root in roots:
        walk(root, [], ())
    # The resource's identity schema (import ids) is not its schema.
    return sorted(rules.values(), key=lambda r: r["path"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=DEFAULT_REPO)
    parser.add_argument("--commit", default="HEAD")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "-C", args.repo, "rev-parse", args.commit], check=True, capture_output=True,
                            text=True).stdout.strip()
    data = {
        "source": {"repository": "hashicorp/terraform-provider-google", "commit": commit,
                   "generated_by": "scripts/gen_replace_rules.py"},
        "types": {typ: rules_for(args.repo, commit, files, roots) for typ, (files, roots) in TYPES.items()},
    }
    header = ("# GENERATED by scripts/gen_replace_rules.py from the Terraform provider's Go schema: every field\n"
              "# marked ForceNew (a change replaces the resource). `path` is the Pulumi input path (camelCase; a\n"
              "# list index is dropped), `source` the file and line at `source.commit`. Do not edit by hand.\n"
              "# Version: pulumi-gcp 10.2.0 (PyPI, 2026-10-20) bridges terraform-provider-google-beta 8.x, newer than\n"
              "# the mirror; pulumi/pulumi-gcp at 2026-08-21 (ed6078a, module v9) bridged google-beta v7.45.0. The\n"
              "# commit below is hashicorp/terraform-provider-google main of 2026-08-21, after v7.45.0 (the GA\n"
              "# provider: beta-only fields are missing). Regenerate against the bridged tag when it is mirrored.\n")
    OUT.write_text(header + yaml.safe_dump(data, sort_keys=False, width=120))
    print(f"wrote {OUT.relative_to(ROOT)}: {sum(len(v) for v in data['types'].values())} rules at {commit[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
