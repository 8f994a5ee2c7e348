"""The pinned Airflow reads the settings the program renders: the vendored config reference is exactly what
Airflow 3.3.2 and its installed providers document (regenerated here), and airflowConfig values load through
Airflow's own config parser. The Secret Manager backend settings are proven with the real provider in
test_secret_manager_backend.py."""

from __future__ import annotations

import json
import subprocess

from components.config.airflow_overrides import REFERENCE_PATH
from tests.conftest import run_stack

from .pod import AIRFLOW_VENV, ROOT


def airflow_python(code: str, env: dict, tmp_path) -> str:
    result = subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path / "home"), **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_vendored_reference_is_what_the_pinned_airflow_documents(tmp_path):
    generated = airflow_python(
        "import runpy; runpy.run_path('scripts/airflow_config_reference.py', run_name='__main__')", {}, tmp_path)
    assert json.loads(generated) == json.loads(REFERENCE_PATH.read_text()), \
        "regenerate: AIRFLOW_HOME=$(mktemp -d) .venv-airflow/bin/python scripts/airflow_config_reference.py " \
        "> components/config/airflow_config_reference.json"


def test_rendered_settings_load_through_airflows_config(tmp_path):
    capture = run_stack("prod", airflowConfig=json.dumps({"core": {"parallelism": 64},
                                                          "common.io.xcom_objectstorage_threshold": 1000}))
    deployment = next(m for r, m in capture.kubernetes_objects()
                      if m["kind"] == "Deployment" and m["metadata"]["name"] == "airflow")
    scheduler = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "scheduler")
    # Without the [secrets] env: Airflow would build the real Secret Manager backend at import and look for
    # Google credentials (test_secret_manager_backend.py runs it against a loopback stand-in).
    env = {e["name"]: e["value"] for e in scheduler["env"]
           if "value" in e and e["name"].startswith(("AIRFLOW__CORE__PARALLELISM", "AIRFLOW__COMMON_IO__"))}
    read = json.loads(airflow_python(
        "import json; from airflow.configuration import conf; print(json.dumps({"
        "'parallelism': conf.getint('core', 'parallelism'),"
        "'threshold': conf.getint('common.io', 'xcom_objectstorage_threshold')}))", env, tmp_path))
    assert read["parallelism"] == 64 and read["threshold"] == 1000
