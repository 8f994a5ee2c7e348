"""Artifact Registry Docker repository for the Airflow image, with a cleanup policy."""

from __future__ import annotations

from typing import Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token

# Versions beyond the newest N are deleted once older than this, unless a release tag keeps them.
DELETE_OLDER_THAN = "2592000s"  # 30 days


class RegistryArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id."""
    location: pulumi.Input[str]
    """Region of the repository (same as the cluster: no cross-region pulls)."""
    repository_id: pulumi.Input[str]
    """Repository name, the last part of REGION-docker.pkg.dev/PROJECT/REPO."""
    keep_versions: pulumi.Input[int]
    """The newest N versions of each image are always kept."""
    keep_tag_prefixes: Sequence[str]
    """Versions with a tag starting with one of these (release tags such as v1.4.0) are never deleted."""
    reader_members: Sequence[pulumi.Input[str]]
    """IAM members (e.g. `serviceAccount:nodes@...`) allowed to pull images."""


class Registry(pulumi.ComponentResource):
    repository_id: pulumi.Output[str]
    image_base: pulumi.Output[str]

    def __init__(self, name: str, args: RegistryArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Registry"), name, {}, opts)
        repo = gcp.artifactregistry.Repository(
            f"{name}-repo",
            project=args["project"],
            location=args["location"],
            repository_id=args["repository_id"],
            format="DOCKER",
            # A pushed tag never moves: CI tags images with the commit SHA and the stack pins that tag.
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            description="Airflow images (Airflow + DAG dependencies)",
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-newest", action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=args["keep_versions"])),
                # The image a stack runs may be older than the newest N (CI keeps pushing commit-SHA tags)
                # and must still pull on the next new node. A version matching a KEEP and a DELETE policy
                # is kept (https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy,
                # .../cleanup-policy-overview); tag prefixes are ignored unless tag_state is TAGGED
                # (https://stackoverflow.com/q/78702774). Tagging convention: docs/images.md.
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-releases", action="KEEP",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="TAGGED", tag_prefixes=list(args["keep_tag_prefixes"]))),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old", action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="ANY", older_than=DELETE_OLDER_THAN)),
            ],
            opts=child_options(self, opts))
        for index, member in enumerate(args["reader_members"]):
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-reader-{index}", project=args["project"], location=repo.location,
                repository=repo.name, role="roles/artifactregistry.reader", member=member,
                opts=child_options(self, opts))

        self.repository_id = repo.repository_id
        self.image_base = pulumi.Output.concat(
            repo.location, "-docker.pkg.dev/", args["project"], "/", repo.repository_id)
        self.register_outputs({"repository_id": self.repository_id, "image_base": self.image_base})
