"""Entry point the Pulumi engine runs for `pulumi preview --policy-pack policy`.

The engine runs this folder with `runpy.run_path`, which puts `policy/` first on sys.path, so the rules
are imported as the top-level module `rules`. The sys.path line makes the same import work when this file
is run or loaded from anywhere else (e.g. from the repository root). Tests import `policy.rules` and never
build the pack: `PolicyPack(...)` starts a gRPC server and blocks.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from rules import ALL_POLICIES, PACK_NAME, STACK_POLICIES  # noqa: E402

if __name__ == "__main__":
    PolicyPack(PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=[*ALL_POLICIES, *STACK_POLICIES])
