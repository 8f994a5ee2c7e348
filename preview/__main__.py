"""`python -m preview --stack dev`: run the program under mocks, print the tree, write build/<stack>/."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from components.config import ConfigError

from .cost import PriceError, estimate
from .harness import ROOT, run_program
from .render import output_lines, tree_lines, write_architecture, write_cost, write_outputs


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--out", default=str(ROOT / "build"), help="output folder (default build/)")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", DeprecationWarning)
    started = time.monotonic()
    try:
        capture = run_program(args.stack)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        cost = estimate(capture)
    except PriceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    resources_file, manifests_dir = write_outputs(capture, Path(args.out) / args.stack)
    cost_file = write_cost(cost, Path(args.out) / args.stack)
    picture = write_architecture(capture, Path(args.out) / args.stack)

    print(f"Previewing stack '{args.stack}' offline (Pulumi mocks: no cloud calls, no Pulumi CLI)\n")
    print("\n".join(tree_lines(capture)))
    print()
    print("\n".join(output_lines(capture)))
    if capture.skipped_secrets:
        print(f"\nEncrypted config left unset offline (generated values used): {', '.join(capture.skipped_secrets)}")
    manifests = len(list(manifests_dir.glob("*.yaml")))
    print(f"\nResources: {len(capture.resources)} to create; {manifests} Kubernetes manifests")
    print()
    print("\n".join(cost.lines()))
    print(f"\nWrote {_shown(resources_file)}, {_shown(cost_file)}, {_shown(picture)} and {_shown(manifests_dir)}/ "
          f"in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
