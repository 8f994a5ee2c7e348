"""prices.yaml read for one region: the shared sections with the region's own sections merged over them.

Every figure the cost report uses comes through here; a region, machine type or tier prices.yaml does not
carry fails with a PriceError naming what is missing and where to add it, never a silent $0.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from components.machine_types import custom_shape_problem, is_custom, parse_custom

from .capacity import MIB, Resources
from .harness import Resource

PRICES_FILE = Path(__file__).with_name("prices.yaml")


class PriceError(ValueError):
    """The estimate met something prices.yaml does not price."""


def load_prices(path: Path = PRICES_FILE) -> dict:
    return yaml.safe_load(path.read_text())


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def regional_prices(prices: dict, region: str) -> dict:
    """The price table of one region: top-level sections, the region's block merged over them, `region` set."""
    regions = prices.get("regions") or {}
    if region not in regions:
        raise PriceError(
            f"no prices for region {region!r} in preview/prices.yaml (priced regions: {', '.join(sorted(regions))}). "
            f"Add a regions.{region} block there (copy one, take each figure from the Google pricing page or "
            f"export it names, with its source and date), or set gcp:region to a priced region.")
    shared = {key: value for key, value in prices.items() if key != "regions"}
    return {**_merged(shared, regions[region]), "region": region}


def lookup(table: dict, key: str, what: str, resource: Resource, config_key: str, region: str = "") -> dict:
    if key not in table:
        where = f" for {region}" if region else ""
        raise PriceError(
            f"{resource.type} {resource.name!r}: no price{where} for {what} {key!r} in preview/prices.yaml "
            f"(priced: {', '.join(sorted(table))}). Add it there with its source and date, or set "
            f"{config_key} to a priced value.")
    return table[key]


def machine_price(prices: dict, machine_type: str, resource: Resource, config_key: str) -> dict:
    """{vcpu, memory_gib, usd_per_hour} of a predefined type (shape from the shared table, price from the
    region's), or of an E2 custom shape from the region's per-vCPU and per-GB custom rates."""
    region = prices.get("region", "")
    if not is_custom(machine_type):
        entry = lookup(prices["machine_types"], machine_type, "machine type", resource, config_key, region)
        if "usd_per_hour" not in entry or "vcpu" not in entry:
            missing = "price" if "usd_per_hour" not in entry else "shape (vcpu, memory_gib)"
            raise PriceError(f"{resource.type} {resource.name!r}: machine type {machine_type!r} has no {missing} "
                             f"for {region} in preview/prices.yaml. Add it there with its source and date, or set "
                             f"{config_key} to a priced value.")
        return entry
    problem = custom_shape_problem(machine_type)
    shape = parse_custom(machine_type)
    if problem or shape is None:
        raise PriceError(f"{resource.type} {resource.name!r}: machine type {machine_type!r}: {problem}. "
                         f"Set {config_key} to a valid shape.")
    rates = prices["custom_machine_rates"][shape.family]
    hourly = shape.vcpu * rates["vcpu_per_hour"]["usd"] + shape.memory_gib * rates["memory_gib_per_hour"]["usd"]
    return {"vcpu": shape.vcpu, "memory_gib": shape.memory_gib, "usd_per_hour": hourly}


def gke_system_requests(prices: dict) -> tuple[Resources, Resources]:
    """(per node, once per cluster) requests of the pods GKE runs itself on a Standard cluster."""
    system = prices["gke_system_pods"]

    def as_resources(entry: dict) -> Resources:
        return Resources(entry["cpu_m"] / 1000, entry["memory_mib"] * MIB)
    return as_resources(system["per_node"]), as_resources(system["per_cluster"])
