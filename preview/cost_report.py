"""The rows of a cost estimate and the three monthly figures drawn from them: always on, paused, scheduled.

Paused (the pause workflow of components/schedule.py has run): Cloud SQL stopped, node pools at 0. Each
row says whether it is still billed then (`kept_when_paused`): storage, backups, the NAT IP, the cluster
fee and its credit, registry and bucket are; instance hours, node VMs and their boot disks, and what the
nodes generate (NAT data, flow logs) are not.
Scheduled (activeHours set): paused + (always on - paused) x awake hours per month / hours per month.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class CostItem:
    resource: str
    item: str
    quantity: float
    unit: str
    unit_usd: float
    monthly_usd: float
    note: str = ""
    kept_when_paused: bool = True

    def to_json(self) -> dict:
        return {"resource": self.resource, "item": self.item, "quantity": round(self.quantity, 4),
                "unit": self.unit, "unit_usd": self.unit_usd, "monthly_usd": round(self.monthly_usd, 2),
                "kept_when_paused": self.kept_when_paused, "note": self.note}


@dataclass
class Schedule:
    """The stack's pause settings as the report needs them."""
    active_hours: Optional[str] = None  # the activeHours text, normalised
    awake_hours_per_month: Optional[float] = None
    paused: bool = False


@dataclass
class CostReport:
    stack: str
    items: list[CostItem]
    prices: dict  # regional_prices(): one region's table
    notes: list[str] = field(default_factory=list)
    environment: Optional[str] = None  # the stack's `environment` label: the dev goals apply to dev only
    schedule: Schedule = field(default_factory=Schedule)

    @property
    def region(self) -> str:
        return self.prices["region"]

    @property
    def hours(self) -> float:
        return float(self.prices["hours_per_month"])

    @property
    def total(self) -> float:
        return round(sum(item.monthly_usd for item in self.items), 2)

    @property
    def paused_total(self) -> float:
        return round(sum(item.monthly_usd for item in self.items if item.kept_when_paused), 2)

    @property
    def scheduled_total(self) -> Optional[float]:
        awake = self.schedule.awake_hours_per_month
        if awake is None:
            return None
        return round(self.paused_total + (self.total - self.paused_total) * awake / self.hours, 2)

    def goal(self, name: str) -> float:
        return float(self.prices["goals"][name]["usd"])

    @property
    def dev_goal(self) -> float:
        return self.goal("dev_idle_monthly_usd")

    @property
    def within_dev_goal(self) -> Optional[bool]:
        return self.total <= self.dev_goal if self.environment == "dev" else None

    def goals(self) -> dict:
        """Goal name -> (limit, figure) of the goals that apply to this stack."""
        applying = {}
        if self.environment == "dev":
            applying["dev_idle_monthly_usd"] = self.total
            applying["dev_paused_monthly_usd"] = self.paused_total
            if self.scheduled_total is not None:
                applying["dev_scheduled_monthly_usd"] = self.scheduled_total
        elif self.environment == "prod":
            applying["prod_idle_monthly_usd"] = self.total
        return {name: (self.goal(name), figure) for name, figure in applying.items()}

    def to_json(self) -> dict:
        composer = self.prices["goals"]["composer_small_idle_monthly_usd"]
        return {
            "stack": self.stack,
            "currency": "USD",
            "price_region": self.region,
            "prices_file": "preview/prices.yaml",
            "hours_per_month": self.prices["hours_per_month"],
            "items": [item.to_json() for item in self.items],
            "total_monthly_usd": self.total,
            "paused_monthly_usd": self.paused_total,
            "scheduled_monthly_usd": self.scheduled_total,
            "active_hours": self.schedule.active_hours,
            "awake_hours_per_month": (None if self.schedule.awake_hours_per_month is None
                                      else round(self.schedule.awake_hours_per_month, 2)),
            "paused": self.schedule.paused,
            "environment": self.environment,
            "goals": {"dev_idle_monthly_usd": self.dev_goal, "within_dev_goal": self.within_dev_goal,
                      "applying": {name: {"limit": limit, "figure": figure, "met": figure <= limit}
                                   for name, (limit, figure) in self.goals().items()},
                      "composer_small_idle_monthly_usd": [composer["low"], composer["high"]]},
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        width = max([len(i.resource) for i in self.items] + [8])
        item_width = max([len(i.item) for i in self.items] + [4])
        out = [f"Estimated monthly cost, idle ({self.region} list prices, {self.prices['hours_per_month']:g} h; "
               "P: still billed while paused):",
               f"    {'Resource':<{width}}  {'Item':<{item_width}}  {'Quantity':>18}  {'USD/month':>10}  P"]
        for i in self.items:
            quantity = f"{i.quantity:g} {i.unit}"
            kept = "P" if i.kept_when_paused else ""
            out.append(f"    {i.resource:<{width}}  {i.item:<{item_width}}  {quantity:>18}  {i.monthly_usd:>10.2f}  {kept}")
        out.append(f"    {'Always on':<{width}}  {'':<{item_width}}  {'':>18}  {self.total:>10.2f}")
        out.append(f"    {'Paused':<{width}}  {'(Cloud SQL stopped, node pools at 0)':<{item_width}}  {'':>18}  "
                   f"{self.paused_total:>10.2f}")
        if self.scheduled_total is not None:
            label = f"(awake ~{self.schedule.awake_hours_per_month:.1f} h/month)"
            out.append(f"    {'Scheduled':<{width}}  {label:<{item_width}}  {'':>18}  {self.scheduled_total:>10.2f}")
            out.append(f"    activeHours: {self.schedule.active_hours}")
        else:
            out.append("    Scheduled: no activeHours set (the stack is always on)")
        if self.schedule.paused:
            out.append("    paused: true, so the stack costs the paused figure until it is set back to false")
        for name, (limit, figure) in self.goals().items():
            gap = figure - limit
            verdict = "within it" if gap <= 0 else f"OVER by ${gap:.2f}"
            out.append(f"Goal {name.removesuffix('_monthly_usd').replace('_', ' ')}: <= ${limit:.0f}/month, "
                       f"${figure:.2f}: {verdict}.")
        composer = self.prices["goals"]["composer_small_idle_monthly_usd"]
        out.append(f"A small Cloud Composer 3 environment idles at ~${composer['low']}-{composer['high']}/month "
                   "(third-party figure).")
        out.extend(f"Note: {note}" for note in self.notes)
        return out
