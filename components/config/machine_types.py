"""Compute Engine custom machine shapes: what `e2-custom-VCPU-MEMORY_MB` means and which ones exist.

A custom shape lets a node pool carry the memory the pods ask for instead of a predefined type's
fixed 4 GB per vCPU. Compute Engine refuses shapes outside these limits at node-pool creation, so the
config checks them before any resource is declared.

E2 custom limits (https://cloud.google.com/compute/docs/instances/creating-instance-with-custom-machine-type#e2_custom_machine_types):
an even number of vCPUs from 2 to 32; memory a multiple of 256 MB, 0.5 to 8 GB per vCPU (128 GB at most).
Shared-core custom shapes (e2-custom-micro/small/medium-…) are not supported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

E2_CUSTOM = re.compile(r"^e2-custom-(\d+)-(\d+)$")
E2_CUSTOM_VCPUS = range(2, 33, 2)
MEMORY_STEP_MB = 256
MIN_GB_PER_VCPU, MAX_GB_PER_VCPU, MAX_MEMORY_GB = 0.5, 8, 128


@dataclass(frozen=True)
class CustomShape:
    family: str
    vcpu: int
    memory_mb: int

    @property
    def memory_gib(self) -> float:
        return self.memory_mb / 1024


def is_custom(machine_type: str) -> bool:
    return "-custom-" in machine_type


def parse_custom(machine_type: str) -> Optional[CustomShape]:
    """The shape of an `e2-custom-VCPU-MEMORY_MB` type, or None if it is not one (limits not checked)."""
    match = E2_CUSTOM.match(machine_type)
    if not match:
        return None
    return CustomShape("e2", int(match.group(1)), int(match.group(2)))


def custom_shape_problem(machine_type: str) -> Optional[str]:
    """Why Compute Engine would refuse this custom type, or None (also None for predefined types)."""
    if not is_custom(machine_type):
        return None
    shape = parse_custom(machine_type)
    if shape is None:
        return "only E2 custom shapes are supported, written e2-custom-VCPUS-MEMORY_MB (e.g. e2-custom-2-5120)"
    if shape.vcpu not in E2_CUSTOM_VCPUS:
        return f"an E2 custom shape has an even number of vCPUs from 2 to 32, not {shape.vcpu}"
    if shape.memory_mb % MEMORY_STEP_MB:
        return f"custom memory is a multiple of {MEMORY_STEP_MB} MB; {shape.memory_mb} is not"
    per_vcpu = shape.memory_gib / shape.vcpu
    if not MIN_GB_PER_VCPU <= per_vcpu <= MAX_GB_PER_VCPU or shape.memory_gib > MAX_MEMORY_GB:
        return (f"E2 custom memory is {MIN_GB_PER_VCPU}-{MAX_GB_PER_VCPU} GB per vCPU (at most {MAX_MEMORY_GB} GB); "
                f"{shape.memory_mb} MB for {shape.vcpu} vCPUs is {per_vcpu:.2f} GB per vCPU")
    return None
