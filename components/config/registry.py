"""Reading and checking the registry's release-tag prefixes, and whether the stack's own image survives the
registry's cleanup (components/registry.py: commit-SHA tags age out, release tags are kept)."""

from __future__ import annotations

import json
import re
from typing import Optional

import pulumi

from .reader import _Reader, _parse_list

DEFAULT_KEEP_TAG_PREFIXES = ("v", "release-")

# A Docker tag: https://github.com/distribution/reference/blob/main/regexp.go (tag = [\w][\w.-]{0,127}).
_TAG_PREFIX = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# A prefix made of hex digits only also matches commit-SHA tags (image.yml), which would then never age out.
_HEX = re.compile(r"^[0-9a-f]+$")


def read_keep_tag_prefixes(reader: _Reader) -> tuple[str, ...]:
    key = "registryKeepTagPrefixes"
    fix = reader.path_fix(f"{key}[0]", "v")
    raw = reader.raw(key)
    if raw is None:
        return DEFAULT_KEEP_TAG_PREFIXES
    try:
        prefixes = tuple(str(p) for p in _parse_list(raw))
    except (ValueError, TypeError):
        reader.fail(key, raw, 'a JSON list of tag prefixes such as ["v", "release-"]', fix=fix)
        return DEFAULT_KEEP_TAG_PREFIXES
    if not prefixes:
        reader.fail(key, [], "at least one prefix (the tags of the images stacks run must outlive the cleanup)",
                    fix=fix)
        return DEFAULT_KEEP_TAG_PREFIXES
    for prefix in prefixes:
        if not _TAG_PREFIX.match(prefix):
            reader.fail(key, list(prefixes), f"Docker tag prefixes (letters, digits, _ . -); {prefix!r} is not",
                        fix=fix)
        elif _HEX.match(prefix):
            reader.fail(key, list(prefixes), f"prefixes that are not all hex digits ({prefix!r} would also keep "
                        "commit-SHA tags forever)", fix=fix)
    return prefixes


def image_cleanup_warning(image: str, image_base: str, prefixes: tuple[str, ...]) -> Optional[str]:
    """Why `image`, pulled from this stack's own registry, may be deleted by its cleanup; None when safe.

    Only a tag is checked: a digest-only reference does not say which tags its version carries."""
    if not image.startswith(image_base + "/"):
        return None
    tag_part = image[len(image_base) + 1:].split("@", 1)[0]
    if ":" not in tag_part:
        return None
    tag = tag_part.rsplit(":", 1)[1]
    if tag.startswith(prefixes):
        return None
    release = f"{image_base}/{tag_part.rsplit(':', 1)[0]}:{prefixes[0]}<version>"
    return (f"airflow-gke:airflowImage = {image!r}: its tag {tag!r} starts with none of "
            f"airflow-gke:registryKeepTagPrefixes {json.dumps(list(prefixes))}, so the registry's cleanup deletes it "
            f"once it is 30 days old and newer versions fill the kept count; nodes then fail to pull it. "
            f"Fix: gcloud artifacts docker tags add {image.split('@', 1)[0]} {release} && "
            f"pulumi config set airflow-gke:airflowImage {release}")


def warn_if_image_ages_out(image: str, project: str, region: str, repository_id: str,
                           prefixes: tuple[str, ...]) -> None:
    warning = image_cleanup_warning(image, f"{region}-docker.pkg.dev/{project}/{repository_id}", prefixes)
    if warning:
        pulumi.log.warn(warning)
