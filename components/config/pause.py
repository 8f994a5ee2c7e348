"""Reading and checking the pause keys: `activeHours`, `paused`, `allowPauseOnProd`, `pauseDrainMinutes`."""

from __future__ import annotations

import shlex
from typing import Optional

from .reader import _Reader
from .schedule import EXAMPLE, ActiveHours, parse_active_hours
from .settings import PauseSettings

# The drain is one workflow execution polling Cloud Monitoring once a minute; past two hours a pause at
# 18:00 would still be draining at 20:00, which is no longer a pause.
MAX_DRAIN_MINUTES = 120


def _read_active_hours(reader: _Reader) -> Optional[ActiveHours]:
    raw = reader.raw("activeHours")
    if raw is None:
        return None
    try:
        return parse_active_hours(raw)
    except ValueError as error:
        key = reader.full_key("activeHours")
        reader.problems.append(f"{key}: {error}. Fix: pulumi config set {key} {shlex.quote(EXAMPLE)}, "
                               f"or pulumi config rm {key} to stay always on")
        return None


def _read_pause(reader: _Reader, is_prod: bool, cluster_mode: str) -> PauseSettings:
    active_hours = _read_active_hours(reader)
    paused = reader.boolean("paused", False)
    allowed_on_prod = reader.boolean("allowPauseOnProd", False)
    settings = PauseSettings(active_hours=active_hours, paused=paused,
                             drain_minutes=reader.integer("pauseDrainMinutes", 30, 0, MAX_DRAIN_MINUTES))
    wants_pause = reader.raw("activeHours") is not None or paused
    if not wants_pause:
        return settings
    key = "activeHours" if reader.raw("activeHours") is not None else "paused"
    if is_prod and not allowed_on_prod:
        reader.fail(key, reader.raw(key), "unset on a prod stack: a paused prod runs no DAGs and serves no UI. "
                    "If that is what you want, allow it explicitly", fix=(
                        f"pulumi config set {reader.full_key('allowPauseOnProd')} true, or "
                        f"pulumi config rm {reader.full_key(key)}"))
    if cluster_mode == "autopilot":
        reader.fail(key, reader.raw(key), "only with clusterMode standard: the pause stops node pools, and an "
                    "Autopilot cluster has none (it bills the pods, which stay)",
                    fix=f"pulumi config rm {reader.full_key(key)}, or pulumi config set "
                        f"{reader.full_key('clusterMode')} standard")
    return settings
