"""Cloud SQL for PostgreSQL: private IP only, backups with point-in-time recovery, and
deletion protection at every level (provider, Cloud SQL API, and Pulumi `protect`)."""

from __future__ import annotations

from typing import NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from .common import child_options, type_token

DATABASE_NAME = "airflow"
USER_NAME = "airflow"
DISK_SIZE_PATH = "settings.diskSize"  # a Pulumi property path in the schema's names, as the engine takes it
ACTIVATION_POLICY_PATH = "settings.activationPolicy"


class DatabaseArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id."""
    region: pulumi.Input[str]
    """Region of the instance."""
    network_id: pulumi.Input[str]
    """VPC with a Private Services Access connection; the instance gets a private IP in it."""
    version: pulumi.Input[str]
    """`POSTGRES_16` or newer."""
    tier: pulumi.Input[str]
    """Machine tier, e.g. `db-custom-1-3840`."""
    high_availability: bool
    """REGIONAL (standby in another zone) when True, else ZONAL."""
    disk_size_gb: pulumi.Input[int]
    """Initial SSD size only: autoresize grows it and the program ignores it afterwards (docs/operations.md)."""
    disk_autoresize_limit_gb: NotRequired[pulumi.Input[int]]
    """Cap on automatic growth, in GB (default: none, the API's 0)."""
    backup_retention_count: pulumi.Input[int]
    """Number of daily backups retained."""
    log_retention_days: pulumi.Input[int]
    """Days of write-ahead log kept for point-in-time recovery (1-7)."""
    maintenance_day: pulumi.Input[int]
    """Maintenance window day, 1 = Monday ... 7 = Sunday."""
    maintenance_hour: pulumi.Input[int]
    """Maintenance window hour (UTC)."""
    flags: NotRequired[Sequence[tuple[str, str]]]
    """Database flags as (name, value) pairs."""
    deletion_protection: NotRequired[bool]
    """Provider and API deletion protection (default True)."""
    password_version: NotRequired[int]
    """Change it (1, 2, ...) to generate a new password; otherwise the password never changes."""
    labels: NotRequired[pulumi.Input[dict]]
    """User labels for the instance."""
    pause_managed: NotRequired[bool]
    """A pause schedule starts and stops the instance (components/schedule.py): settings.activationPolicy is
    left to it (ignoreChanges); the provider's default ALWAYS would otherwise start it on a refreshed `pulumi up`."""


class Database(pulumi.ComponentResource):
    instance_name: pulumi.Output[str]
    connection_name: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    database_name: pulumi.Output[str]
    user_name: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Database"), name, {}, opts)
        protected = args.get("deletion_protection", True)
        instance = gcp.sql.DatabaseInstance(
            f"{name}-pg",
            project=args["project"],
            region=args["region"],
            database_version=args["version"],
            deletion_protection=protected,
            settings=gcp.sql.DatabaseInstanceSettingsArgs(
                tier=args["tier"],
                edition="ENTERPRISE",
                availability_type="REGIONAL" if args["high_availability"] else "ZONAL",
                disk_type="PD_SSD",
                disk_size=args["disk_size_gb"],
                disk_autoresize=True,
                disk_autoresize_limit=args.get("disk_autoresize_limit_gb"),
                deletion_protection_enabled=protected,
                ip_configuration=gcp.sql.DatabaseInstanceSettingsIpConfigurationArgs(
                    ipv4_enabled=False,
                    private_network=args["network_id"],
                    ssl_mode="ENCRYPTED_ONLY",
                ),
                backup_configuration=gcp.sql.DatabaseInstanceSettingsBackupConfigurationArgs(
                    enabled=True,
                    point_in_time_recovery_enabled=True,
                    start_time="02:00",
                    transaction_log_retention_days=args["log_retention_days"],
                    backup_retention_settings=gcp.sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(
                        retained_backups=args["backup_retention_count"], retention_unit="COUNT"),
                ),
                maintenance_window=gcp.sql.DatabaseInstanceSettingsMaintenanceWindowArgs(
                    day=args["maintenance_day"], hour=args["maintenance_hour"], update_track="stable"),
                insights_config=gcp.sql.DatabaseInstanceSettingsInsightsConfigArgs(
                    query_insights_enabled=True, record_application_tags=True, record_client_address=False,
                    query_string_length=1024),
                database_flags=[gcp.sql.DatabaseInstanceSettingsDatabaseFlagArgs(name=k, value=v)
                                for k, v in args.get("flags", ())],
                retain_backups_on_delete=True,
                user_labels=args.get("labels"),
            ),
            # Protect the instance itself; `protect` set on this component's options flows down here.
            # Autoresize only grows the disk, so once it has, the declared size is a shrink: providers before
            # terraform-provider-google v7.4.0 replace the instance for it, later ones skip it (hashicorp/
            # terraform-provider-google#24399). Ignored, the declared size is the initial one on any provider
            # (rehearse/drift_rules.yaml, sql-disk-size-under-autoresize).
            opts=child_options(self, opts, ignore_changes=[
                DISK_SIZE_PATH, *([ACTIVATION_POLICY_PATH] if args.get("pause_managed") else [])]))
        database = gcp.sql.Database(
            f"{name}-db", project=args["project"], instance=instance.name, name=DATABASE_NAME,
            opts=child_options(self, opts))
        # Generated once and kept in state: stable across `pulumi up`. Alphanumeric so it can sit in a URL.
        password = random.RandomPassword(
            f"{name}-password", length=32, special=False,
            keepers={"version": str(args.get("password_version", 1))}, opts=child_options(self, opts))
        user = gcp.sql.User(
            f"{name}-user", project=args["project"], instance=instance.name, name=USER_NAME,
            password=password.result, deletion_policy="ABANDON", opts=child_options(self, opts))

        self.instance_name = instance.name
        self.connection_name = instance.connection_name
        self.private_ip = instance.private_ip_address
        self.database_name = database.name
        self.user_name = user.name
        self.password = pulumi.Output.secret(password.result)
        self.register_outputs({
            "instance_name": self.instance_name,
            "connection_name": self.connection_name,
            "private_ip": self.private_ip,
            "database_name": self.database_name,
            "user_name": self.user_name,
            "password": self.password,
        })
