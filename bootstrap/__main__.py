"""Bootstrap stack: the keyless identities GitHub Actions uses to preview and deploy airflow-gke.

Run once per project by a human with Owner (see docs/ci.md "The bootstrap stack"):
    cd bootstrap && pulumi stack init ci-dev && pulumi config set gcp:project P && \
        pulumi config set repository OWNER/REPO && pulumi up
Destroy and re-run freely: the pool id carries a random suffix, so a soft-deleted pool never collides.
"""

import sys
from pathlib import Path

import pulumi
import pulumi_gcp as gcp
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the repo's components/

from components.ci_identity import (DEFAULT_ENVIRONMENTS, DEFAULT_RESOURCE_PREFIXES, CiIdentity,  # noqa: E402
                                    check_args, check_task_roles, pause_roles_of_stacks,
                                    task_roles_of_stacks)
from components.config import ConfigError  # noqa: E402
from components.services import ProjectServices  # noqa: E402

# Token exchange (sts), impersonation (iamcredentials), pools (iam), project IAM (cloudresourcemanager).
BOOTSTRAP_APIS = ("iam.googleapis.com", "iamcredentials.googleapis.com", "sts.googleapis.com",
                  "cloudresourcemanager.googleapis.com", "serviceusage.googleapis.com")

config = pulumi.Config()
project = pulumi.Config("gcp").require("project")
repository = config.get("repository") or ""
pool_id = config.get("poolId") or "github"
environments = config.get_object("environments") or list(DEFAULT_ENVIRONMENTS)
resource_prefixes = config.get_object("resourcePrefixes") or list(DEFAULT_RESOURCE_PREFIXES)
state_bucket = config.get("stateBucket")
# The deployer may grant the roles the stacks give their tasks: read from the repository's stack files (the
# stacks CI deploys) plus taskRoles for stacks configured elsewhere. Re-run after changing either.
# The same goes for the pause workflow's custom role of each committed stack that sleeps (its name holds the
# stack's namePrefix).
stack_configs = [(yaml.safe_load(f.read_text()) or {}).get("config") or {}
                 for f in sorted(REPO_ROOT.glob("Pulumi.*.yaml"))]
task_roles = sorted({*task_roles_of_stacks(stack_configs), *pause_roles_of_stacks(stack_configs, project),
                     *(config.get_object("taskRoles") or [])})
problems = check_args(repository, pool_id, environments, resource_prefixes, state_bucket)
problems += check_task_roles(task_roles, project)
if problems:
    raise ConfigError(problems)

apis = ProjectServices("bootstrap-apis", {"project": project, "services": BOOTSTRAP_APIS})
ci = CiIdentity("ci", {
    "project": project,
    "project_number": gcp.organizations.get_project_output(project_id=project).number,
    "repository": repository,
    "repository_id": config.get("repositoryId"),
    "pool_id": pool_id,
    "environments": environments,
    "resource_prefixes": resource_prefixes,
    "state_bucket": state_bucket,
    "task_roles": task_roles,
}, pulumi.ResourceOptions(depends_on=[apis]))

# The repository's Actions variables (docs/ci.md "Repository settings"): GCP_WORKLOAD_IDENTITY_PROVIDER_<STACK>,
# GCP_PREVIEW_SA_<STACK>, GCP_DEPLOYER_SA_<ENVIRONMENT>.
pulumi.export("workload_identity_provider", ci.workload_identity_provider)
pulumi.export("workload_identity_pool", ci.pool_id)
pulumi.export("preview_service_account", ci.preview_email)
pulumi.export("deployer_service_accounts", ci.deployer_emails)
pulumi.export("grantable_task_roles", task_roles)
