"""Bootstrap stack: the keyless identity GitHub Actions uses to preview and deploy airflow-gke.

Run once per project by a human with Owner (see README "CI/CD on your own repository"):
    cd bootstrap && pulumi stack init ci-dev && pulumi config set gcp:project P && \
        pulumi config set repository OWNER/REPO && pulumi up
"""

import sys
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo's components/

from components.ci_identity import CiIdentity, check_args  # noqa: E402
from components.config import ConfigError  # noqa: E402
from components.services import ProjectServices  # noqa: E402

# Token exchange (sts), impersonation (iamcredentials), pools (iam), project IAM (cloudresourcemanager).
BOOTSTRAP_APIS = ("iam.googleapis.com", "iamcredentials.googleapis.com", "sts.googleapis.com",
                  "cloudresourcemanager.googleapis.com", "serviceusage.googleapis.com")

config = pulumi.Config()
project = pulumi.Config("gcp").require("project")
repository = config.get("repository") or ""
pool_id = config.get("poolId") or "github"
problems = check_args(repository, pool_id)
if problems:
    raise ConfigError(problems)

apis = ProjectServices("bootstrap-apis", {"project": project, "services": BOOTSTRAP_APIS})
ci = CiIdentity("ci", {
    "project": project,
    "project_number": gcp.organizations.get_project_output(project_id=project).number,
    "repository": repository,
    "repository_id": config.get("repositoryId"),
    "pool_id": pool_id,
    "state_bucket": config.get("stateBucket"),
}, pulumi.ResourceOptions(depends_on=[apis]))

# The repository's Actions variables GCP_WORKLOAD_IDENTITY_PROVIDER_<STACK> and GCP_DEPLOYER_SA_<STACK> (README).
pulumi.export("workload_identity_provider", ci.workload_identity_provider)
pulumi.export("deployer_service_account", ci.deployer_email)
