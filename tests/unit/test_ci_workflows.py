"""The GitHub Actions the project ships (.github/): linted by actionlint, pinned, least privilege, keyless."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = {path.stem: path for path in sorted((GITHUB / "workflows").glob("*.yml"))}
ACTION_FILES = [*WORKFLOWS.values(), *sorted((GITHUB / "actions").glob("*/action.yml"))]
BIN = ROOT / ".venv" / "bin"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    assert path, f"{name} is not installed: make venv installs it from requirements.txt"
    return str(path)


def actionlint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([tool("actionlint"), f"-shellcheck={tool('shellcheck')}", "-no-color", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def load(path: Path) -> dict:
    # PyYAML reads the key `on` as True.
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def jobs(name: str) -> dict:
    return load(WORKFLOWS[name])["jobs"]


def steps_using(job: dict, prefix: str) -> list[dict]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(prefix)]


def test_the_expected_workflows_exist():
    assert set(WORKFLOWS) == {"pull-request", "deploy", "image", "e2e"}


def test_actionlint_passes_on_every_workflow():
    result = actionlint()
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_lints(tmp_path):
    # A broken workflow (unknown context, shell bug, bad `needs`) must be reported, or the test above proves nothing.
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: missing\n    steps:\n"
        "      - run: echo ${{ github.evnt.name }} $UNQUOTED_ARRAY[@]\n")
    result = actionlint(str(workflows / "bad.yml"), cwd=tmp_path)
    assert result.returncode != 0
    assert "missing" in result.stdout and "evnt" in result.stdout


def test_e2e_verify_script_passes_shellcheck():
    result = subprocess.run([tool("shellcheck"), str(ROOT / "scripts" / "e2e-verify.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("path", ACTION_FILES, ids=lambda p: str(p.relative_to(GITHUB)))
def test_every_action_is_pinned_to_a_commit_with_its_version(path):
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", line)
        if not match or match.group(1).startswith("./"):
            continue
        assert PINNED.match(match.group(1)), f"{path.name}: {match.group(1)} is not pinned to a full commit SHA"
        assert VERSION_COMMENT.search(match.group(2)), f"{path.name}: {match.group(1)} lacks a '# vX.Y.Z' comment"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_least_privilege_permissions_and_concurrency(name):
    workflow = load(WORKFLOWS[name])
    assert workflow["permissions"] == {}, "workflow-level permissions must be empty; jobs ask for what they need"
    for job_name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name}.{job_name} sets no permissions"
        assert "write-all" not in str(permissions) and all(v in ("read", "write", "none") for v in permissions.values())
        uses_google = bool(steps_using(job, "./.github/actions/pulumi-setup"))
        assert (permissions.get("id-token") == "write") == uses_google, \
            f"{name}.{job_name}: id-token: write exactly when it authenticates to Google Cloud"
        writes = {k for k, v in permissions.items() if v == "write"} - {"id-token"}
        assert writes <= ({"pull-requests"} if name == "pull-request" else set()), f"{name}.{job_name}: {writes}"
        assert workflow.get("concurrency") or job.get("concurrency"), f"{name}.{job_name} has no concurrency group"


def test_no_long_lived_keys_anywhere():
    for path in ACTION_FILES:
        text = path.read_text()
        for forbidden in ("credentials_json", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CREDENTIALS", "secrets.GCP_SA_KEY"):
            assert forbidden not in text, f"{path.name} uses {forbidden}"
    setup = (GITHUB / "actions" / "pulumi-setup" / "action.yml").read_text()
    assert "workload_identity_provider:" in setup and "google-github-actions/auth@" in setup


def test_pull_request_runs_the_suite_then_previews_both_stacks_with_policy_and_comment():
    pr = jobs("pull-request")
    assert any("bash .ci/run" in str(step.get("run", "")) for step in pr["test"]["steps"])
    preview = pr["preview"]
    include = preview["strategy"]["matrix"]["include"]
    assert preview["needs"] == "test" and [entry["stack"] for entry in include] == ["dev", "prod"]
    pulumi, = steps_using(preview, "pulumi/actions@")
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["comment-on-pr"] is True


def test_deploy_runs_dev_then_prod_behind_its_protected_environment():
    deploy = load(WORKFLOWS["deploy"])
    assert deploy["on"]["push"]["branches"] == ["main"]
    dev, prod = deploy["jobs"]["dev"], deploy["jobs"]["prod"]
    assert prod["needs"] == "dev" and prod["environment"] == "prod"
    for job, stack in ((dev, "dev"), (prod, "prod")):
        pulumi, = steps_using(job, "pulumi/actions@")
        assert pulumi["with"]["command"] == "up" and pulumi["with"]["stack-name"].endswith(stack)
        assert job["concurrency"]["cancel-in-progress"] is False


def test_image_is_pushed_under_the_commit_sha_and_never_overwritten():
    image = load(WORKFLOWS["image"])
    assert image["on"]["push"]["paths"] == ["image/**"]
    push = next(s for s in image["jobs"]["build-push"]["steps"] if s.get("id") == "push")
    assert ':${GITHUB_SHA}"' in push["run"] and "already exists" in push["run"]
    summary = image["jobs"]["build-push"]["steps"][-1]["run"]
    assert "pulumi config set airflow-gke:airflowImage" in summary


def test_registry_tags_are_immutable(dev):
    repo = dev.one("gcp:artifactregistry/repository:Repository")
    assert repo.inputs["dockerConfig"]["immutableTags"] is True


def test_e2e_always_destroys_and_checks_health_and_a_dag_run():
    e2e = load(WORKFLOWS["e2e"])
    assert set(e2e["on"]) == {"workflow_dispatch"}
    assert e2e["concurrency"]["cancel-in-progress"] is False
    steps = e2e["jobs"]["e2e"]["steps"]
    destroy = steps[-1]
    assert destroy["if"] == "always()" and "pulumi destroy" in destroy["run"]
    assert any("scripts/e2e-verify.sh" in str(s.get("run", "")) for s in steps)
    verify = (ROOT / "scripts" / "e2e-verify.sh").read_text()
    assert "/api/v2/monitor/health" in verify and "dags trigger" in verify and "reason=Scheduled" in verify


IDENTITY = re.compile(r"vars\.GCP_(WORKLOAD_IDENTITY_PROVIDER|DEPLOYER_SA|PREVIEW_SA)_(DEV|PROD)")


def identity(text: str, kind: str | None = None) -> set[str]:
    return {stack for found_kind, stack in IDENTITY.findall(text) if kind in (None, found_kind)}


def test_each_stack_uses_its_own_projects_identity():
    # dev and prod may be separate projects, each with its bootstrap: a prod job must never get dev's identity.
    include = jobs("pull-request")["preview"]["strategy"]["matrix"]["include"]
    for entry in include:
        assert identity(entry["workload_identity_provider"] + entry["service_account"]) == {entry["stack"].upper()}
    setup, = steps_using(jobs("pull-request")["preview"], "./.github/actions/pulumi-setup")
    assert setup["with"] == {"workload_identity_provider": "${{ matrix.workload_identity_provider }}",
                             "service_account": "${{ matrix.service_account }}"}
    for stack in ("dev", "prod"):
        setup, = steps_using(jobs("deploy")[stack], "./.github/actions/pulumi-setup")
        assert identity(str(setup["with"])) == {stack.upper()}
    setup, = steps_using(jobs("e2e")["e2e"], "./.github/actions/pulumi-setup")
    assert identity(str(setup["with"])) == {"DEV"}


def deployer_jobs() -> list[tuple[str, str, dict]]:
    return [(name, job_name, job) for name in WORKFLOWS for job_name, job in jobs(name).items()
            if identity(str(job), "DEPLOYER_SA")]


def environment_for(job: dict, stack: str) -> tuple[str, set[str]]:
    """The environment the job declares and the deployers it asks for when it deploys `stack`: a literal
    environment asks for one; `${{ inputs.stack || 'dev' }}` picks the deployer from the same input."""
    declared = str(job.get("environment", ""))
    setup, = steps_using(job, "./.github/actions/pulumi-setup")
    asked = str(setup["with"]["service_account"])
    if "${{" not in declared:
        return declared, identity(asked, "DEPLOYER_SA")
    assert job["env"]["STACK"] == declared, "the deployer must be chosen by the expression that names the environment"
    chosen = re.fullmatch(r"\$\{\{ env\.STACK == '(\w+)' && (vars\.\w+) \|\| (vars\.\w+) \}\}", asked)
    assert chosen, asked
    return stack, identity(chosen.group(2) if stack == chosen.group(1) else chosen.group(3), "DEPLOYER_SA")


def test_every_job_that_asks_for_a_deployer_declares_its_environment_and_runs_on_main():
    # bootstrap/ binds each deployer to jobs of its GitHub environment on refs/heads/main (the OIDC claims
    # `environment` and `ref`): a job that asks for it otherwise would fail to authenticate, or, with an
    # environment and a deployer that disagree, get none.
    found = deployer_jobs()
    assert {(name, job_name) for name, job_name, _ in found} == {
        ("deploy", "dev"), ("deploy", "prod"), ("e2e", "e2e"), ("image", "build-push")}
    for name, job_name, job in found:
        assert job.get("if") == "github.ref == 'refs/heads/main'", f"{name}.{job_name} must run on main only"
        stacks = ("dev", "prod") if "${{" in str(job.get("environment", "")) else (job.get("environment"),)
        for stack in stacks:
            environment, deployers = environment_for(job, stack)
            assert environment in ("dev", "prod"), f"{name}.{job_name} declares no environment"
            assert deployers == {environment.upper()}, f"{name}.{job_name} ({stack}) asks for {deployers}"


def test_the_environment_check_really_checks():
    job = {"environment": "dev", "steps": [{"uses": "./.github/actions/pulumi-setup",
                                            "with": {"service_account": "${{ vars.GCP_DEPLOYER_SA_PROD }}"}}]}
    assert environment_for(job, "dev") == ("dev", {"PROD"})


def test_pull_request_previews_run_as_the_preview_account():
    preview = jobs("pull-request")["preview"]
    assert "environment" not in preview  # a pull_request token never gets a deployer anyway
    for entry in preview["strategy"]["matrix"]["include"]:
        assert identity(entry["service_account"], "PREVIEW_SA") == {entry["stack"].upper()}
        assert not identity(entry["service_account"], "DEPLOYER_SA")


def test_pull_request_refuses_unacknowledged_data_loss_on_prod_with_the_change_plan():
    """The PR's config change is planned against its base branch; `changes_cli --base` exits 1 on prod for a change
    that replaces the database, its bucket or namespace unless acknowledged (rehearse/changes_cli.py)."""
    test_job = jobs("pull-request")["test"]
    checkout = steps_using(test_job, "actions/checkout@")[0]
    assert checkout["with"].get("fetch-depth") == 0, "the base branch must be in the clone for --base"
    runs = "\n".join(step.get("run", "") for step in test_job["steps"])
    assert re.search(r"rehearse\.changes_cli --stack \"\$\{stack\}\" --base \"origin/\$\{BASE_REF\}\"", runs)
    assert re.search(r"for stack in [^;]*\bprod\b", runs)
