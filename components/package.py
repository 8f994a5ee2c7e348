"""The component package other programs reuse: its name (the `airflow-gke` of every type token
`airflow-gke:index:<Class>`), its version and the components it hosts (provider/__main__.py, docs/reuse.md).

Pulumi's schema analyzer (pulumi.provider.experimental.analyzer) reads every class listed here: its `args`
TypedDict (one docstring per field) becomes the inputs, its annotated class attributes the outputs.
"""

from importlib.metadata import PackageNotFoundError, version

from .airflow.workload import AirflowWorkload
from .ci_identity import CiIdentity
from .cluster import Cluster
from .common import PACKAGE
from .database import Database
from .frontdoor import FrontDoor
from .identity import Identity, WorkloadIdentityBindings
from .logs import LogsBucket
from .monitoring import Monitoring
from .network import Network
from .registry import Registry
from .schedule import ActiveHoursSchedule
from .services import ProjectServices
from .ui_access import UiAccess

DISTRIBUTION = "airflow-gke-components"  # pyproject.toml [project] name
COMPONENTS = (Network, Database, Cluster, Registry, Identity, WorkloadIdentityBindings, LogsBucket,
              ProjectServices, CiIdentity, FrontDoor, ActiveHoursSchedule, AirflowWorkload, UiAccess, Monitoring)


def package_version() -> str:
    """The installed distribution's version (hatch-vcs derives it from the git tag); 0.0.0 from a bare checkout."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0.0.0"
