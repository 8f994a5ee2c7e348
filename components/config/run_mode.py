"""Whether this run of the program is about to change real cloud resources.

Some values are fine to preview but must never reach the cloud (documentation IP ranges in the committed
stack files). `pulumi preview` is a dry run; `pulumi up` is not. The offline preview (preview/harness.py)
runs the program under mocks as a non-dry run, so every `apply` executes with realistic values; it marks
itself with `offline_preview()` so such values only warn there.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pulumi

_offline_preview = False


@contextmanager
def offline_preview() -> Iterator[None]:
    """Run the program for the offline preview: nothing it declares is ever created."""
    global _offline_preview
    previous, _offline_preview = _offline_preview, True
    try:
        yield
    finally:
        _offline_preview = previous


def is_deploying() -> bool:
    """True during the update of `pulumi up`; False in `pulumi preview` (and the preview phase of `up`) and
    in the offline preview. (`pulumi destroy` does not run the program.)"""
    return not _offline_preview and not pulumi.runtime.is_dry_run()
