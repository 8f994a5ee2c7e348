"""Small helpers shared by the components."""

from __future__ import annotations

from typing import Optional

import pulumi

# The package name: the plugin host's `name` (provider/__main__.py) must equal it, and so the first part of
# every type token; the schema has the one module `index`. Changing either changes every resource's URN.
PACKAGE = "airflow-gke"
TYPE_PREFIX = f"{PACKAGE}:index"


def type_token(name: str) -> str:
    return f"{TYPE_PREFIX}:{name}"


def child_options(parent: pulumi.Resource, opts: Optional[pulumi.ResourceOptions] = None,
                  **extra) -> pulumi.ResourceOptions:
    """Options for a component's child: parented to it and waiting on whatever the component waits on.

    Children do not inherit `depends_on` from their parent, so a component that must wait for
    (say) the Google APIs to be enabled passes its own dependencies down explicitly.
    """
    depends_on = opts.depends_on if opts is not None and opts.depends_on else []
    if not isinstance(depends_on, list):
        depends_on = [depends_on]
    depends_on = [*depends_on, *extra.pop("depends_on", [])]
    return pulumi.ResourceOptions(parent=parent, depends_on=depends_on or None, **extra)
