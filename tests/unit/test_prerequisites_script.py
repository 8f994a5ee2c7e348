"""scripts/check-prerequisites.sh against stand-in `gcloud`, `pulumi` and auth-plugin commands (no cloud)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from components.services import PREREQUISITE_APIS, REQUIRED_APIS
from preview.harness import ROOT

SCRIPT = ROOT / "scripts" / "check-prerequisites.sh"

# A stand-in gcloud: logged in unless NO_ADC is set; `services list` prints $ENABLED_APIS, one per line.
FAKE_GCLOUD = """#!/bin/sh
case "$*" in
  "auth application-default print-access-token") [ -z "$NO_ADC" ] && echo token && exit 0; exit 1 ;;
  "services list --enabled --project "*) printf '%s\\n' $ENABLED_APIS ; exit 0 ;;
esac
exit 3
"""


def run(tmp_path: Path, enabled: tuple[str, ...], tools=("gcloud", "pulumi", "gke-gcloud-auth-plugin"),
        **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        path = bin_dir / tool
        path.write_text(FAKE_GCLOUD if tool == "gcloud" else "#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    # Only the stand-ins and the few system commands the script uses: a gcloud installed on this machine
    # must not answer for them.
    for command in ("grep", "sh"):
        (bin_dir / command).unlink(missing_ok=True)
        (bin_dir / command).symlink_to(shutil.which(command))
    environment = {"PATH": str(bin_dir), "ENABLED_APIS": " ".join(enabled), **env}
    return subprocess.run([shutil.which("bash"), str(SCRIPT), "my-project"], env=environment, capture_output=True,
                          text=True, timeout=30)


def test_the_script_checks_the_apis_the_program_cannot_enable():
    listed = re.search(r'^prerequisite_apis="([^"]*)"', SCRIPT.read_text(), re.M).group(1).split()
    assert tuple(listed) == PREREQUISITE_APIS
    assert not set(PREREQUISITE_APIS) & set(REQUIRED_APIS)


def test_ready_project_passes(tmp_path):
    result = run(tmp_path, PREREQUISITE_APIS + ("compute.googleapis.com",))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize("missing", PREREQUISITE_APIS)
def test_a_missing_prerequisite_api_is_named_with_its_fix(tmp_path, missing):
    result = run(tmp_path, tuple(a for a in PREREQUISITE_APIS if a != missing))
    assert result.returncode == 1
    assert f"MISSING: {missing} is not enabled in my-project" in result.stderr
    assert f"fix: gcloud services enable {missing} --project my-project" in result.stderr


def test_missing_tools_and_credentials_are_reported_together(tmp_path):
    result = run(tmp_path, PREREQUISITE_APIS, tools=("gcloud",), NO_ADC="1")
    assert result.returncode == 1
    for expected in ("MISSING: pulumi", "MISSING: gke-gcloud-auth-plugin", "gcloud auth application-default login"):
        assert expected in result.stderr
    assert "3 prerequisite(s) missing" in result.stderr
