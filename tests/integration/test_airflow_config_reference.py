"""The pinned Airflow reads the settings the program renders: the vendored config reference is exactly what
Airflow 3.3.2 and its installed providers document (regenerated here), airflowConfig values and the Secret
Manager backend settings load through Airflow's own config parser.

Not proven against a stand-in Secret Manager: CloudSecretManagerBackend builds its own client,
`SecretManagerServiceClient(credentials=..., client_info=...)` with no client_options, so no endpoint can be
pointed at a local fake (apache-airflow-providers-google 22.8.0,
airflow/providers/google/cloud/_internal_client/secret_manager_client.py `_SecretManagerClient.client`), and
the Google provider is not in .venv-airflow (requirements-airflow.txt). What is proven: Airflow itself reads
the rendered [secrets] backend and backend_kwargs and instantiates the backend with them (at import of
airflow.configuration, `initialize_secrets_backends`), here a stand-in class at the provider's import path
with the real class's keyword parameters, so a kwarg the real class does not take fails as it would."""

from __future__ import annotations

import json
import subprocess

from components.airflow.pod.settings_env import SECRET_MANAGER_BACKEND
from components.config.airflow_overrides import REFERENCE_PATH
from tests.conftest import run_stack

from .pod import AIRFLOW_VENV, ROOT

# CloudSecretManagerBackend.__init__ parameters, apache-airflow-providers-google 22.8.0
# (airflow/providers/google/cloud/secrets/secret_manager.py), the provider of the official 3.3.2 image line.
BACKEND_PARAMETERS = {"connections_prefix", "variables_prefix", "config_prefix", "gcp_keyfile_dict", "gcp_key_path",
                      "gcp_credential_config_file", "gcp_scopes", "project_id", "sep", "impersonation_chain"}


STAND_IN = """
import json, os
from airflow.secrets import BaseSecretsBackend


class CloudSecretManagerBackend(BaseSecretsBackend):
    def __init__(self, connections_prefix="airflow-connections", variables_prefix="airflow-variables",
                 config_prefix="airflow-config", gcp_keyfile_dict=None, gcp_key_path=None,
                 gcp_credential_config_file=None, gcp_scopes=None, project_id=None, sep="-",
                 impersonation_chain=None, **kwargs):
        super().__init__(**kwargs)
        with open(os.environ["STAND_IN_RECORD"], "w") as record:
            json.dump({k: v for k, v in locals().items() if k in %r}, record)
"""


def stand_in_provider(root) -> None:
    """airflow.providers.google.cloud.secrets.secret_manager on a path entry of its own (`airflow` extends its
    __path__ with pkgutil, `airflow.providers` is a namespace package)."""
    module = root / "airflow" / "providers" / "google" / "cloud" / "secrets" / "secret_manager.py"
    module.parent.mkdir(parents=True)
    module.write_text(STAND_IN % sorted(BACKEND_PARAMETERS))


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
    env = {e["name"]: e["value"] for e in scheduler["env"]
           if "value" in e and e["name"].startswith(("AIRFLOW__SECRETS__", "AIRFLOW__CORE__PARALLELISM",
                                                     "AIRFLOW__COMMON_IO__"))}
    stand_in_provider(tmp_path / "stand-in")
    env.update(PYTHONPATH=str(tmp_path / "stand-in"), STAND_IN_RECORD=str(tmp_path / "kwargs.json"))
    read = json.loads(airflow_python(
        "import json; from airflow.configuration import conf; print(json.dumps({"
        "'backend': conf.get('secrets', 'backend'), 'kwargs': conf.getjson('secrets', 'backend_kwargs'),"
        "'parallelism': conf.getint('core', 'parallelism'),"
        "'threshold': conf.getint('common.io', 'xcom_objectstorage_threshold')}))", env, tmp_path))
    assert read["backend"] == SECRET_MANAGER_BACKEND
    assert set(read["kwargs"]) <= BACKEND_PARAMETERS
    assert read["kwargs"]["connections_prefix"] == "airflow-connections" and read["kwargs"]["config_prefix"] is None
    assert read["parallelism"] == 64 and read["threshold"] == 1000
    instantiated = json.loads((tmp_path / "kwargs.json").read_text())  # by Airflow, from the rendered kwargs
    assert {k: instantiated[k] for k in read["kwargs"]} == read["kwargs"]
