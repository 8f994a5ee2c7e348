"""Writes components/config/airflow_config_reference.json: every `[section] key` the pinned Airflow and its
installed providers document, with each option's type, read from Airflow's own configuration description
(airflow/config_templates/config.yml and each provider's `get_provider_info()["config"]`).

Run with the pinned release (.venv-airflow, requirements-airflow.txt):
    AIRFLOW_HOME=$(mktemp -d) .venv-airflow/bin/python scripts/airflow_config_reference.py > components/config/airflow_config_reference.json
tests/integration/test_airflow_config_reference.py regenerates it and fails on any difference."""

from __future__ import annotations

import json
import sys


def reference() -> dict:
    import airflow
    from airflow.configuration import conf
    from airflow.providers_manager import ProvidersManager

    description = conf.configuration_description  # core + providers (loaded lazily since 3.x)
    options = {section: {key: (option.get("type") or "string") for key, option in sorted(body["options"].items())}
               for section, body in sorted(description.items())}
    providers = {name: info.version for name, info in sorted(ProvidersManager().providers.items())}
    return {"airflow": airflow.__version__, "providers": providers, "options": options}


if __name__ == "__main__":
    json.dump(reference(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
