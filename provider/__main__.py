"""The Pulumi plugin: hosts the components for programs in any language (`pulumi package add`, docs/reuse.md).

The language host runs this directory (`python provider/`) with the engine address as the first argument; the
components come from the `airflow-gke-components` distribution that requirements.txt here installs from the
repository root.
"""

from pulumi.provider.experimental import component_provider_host

from components.package import COMPONENTS, PACKAGE, package_version

if __name__ == "__main__":
    component_provider_host(name=PACKAGE, components=list(COMPONENTS), version=package_version())
