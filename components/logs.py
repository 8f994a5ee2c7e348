"""GCS bucket for Airflow remote task logs, so logs outlive the task pods."""

from typing import Mapping, NotRequired, Optional, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token


class LogsBucketArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id."""
    location: pulumi.Input[str]
    """Bucket location (the stack's region keeps logs next to the cluster)."""
    retention_days: pulumi.Input[int]
    """Objects older than this are deleted by a lifecycle rule."""
    labels: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Labels put on the bucket."""
    force_destroy: NotRequired[bool]
    """Allow `pulumi destroy` to delete a bucket that still holds logs (default False)."""


class LogsBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: LogsBucketArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("LogsBucket"), name, {}, opts)
        bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            project=args["project"],
            location=args["location"],
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=args.get("force_destroy", False),
            labels=args.get("labels"),
            lifecycle_rules=[gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=args["retention_days"]),
            )],
            opts=child_options(self, opts))
        self.bucket_name = bucket.name
        self.url = bucket.url
        self.register_outputs({"bucket_name": self.bucket_name, "url": self.url})
