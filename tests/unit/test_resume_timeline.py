"""The modelled resume of a paused stack (rehearse/resume.py): healthy UI and a scheduled task within 10 minutes."""

from __future__ import annotations

import re

import pytest

from rehearse.graph import Graph
from rehearse.resume import load_resume_rules, resume_report, resume_stages
from rehearse.rules import RulesError
from tests.conftest import run_stack

SOURCE = re.compile(r"https://\S+|[\w.-]+/[\w.-]+#\d+|docs/\w+\.md")


@pytest.fixture(scope="module")
def scheduled():
    return run_stack("dev", activeHours="Mon-Fri 08:00-18:00 Europe/Berlin")


def test_dev_resumes_within_ten_minutes(scheduled):
    source = scheduled.one("gcp:workflows/workflow:Workflow").inputs["sourceContents"]
    stages = resume_stages(source)
    total = sum(stage.seconds for stage in stages)
    assert total <= load_resume_rules()["goal_seconds"] == 600, total
    names = " ".join(stage.what for stage in stages)
    # the database start, the node boot and the pod start-up are all on the path, in the workflow's order
    assert names.index("database_always") < names.index("pool_0_autoscaling_on") < names.index("pool_0_to_min") \
        < names.index("image start")
    assert all(SOURCE.search(stage.source) for stage in stages)


def test_the_report_is_printed_only_for_a_scheduled_stack(scheduled, dev):
    assert resume_report(Graph.from_capture(dev)) is None
    report = resume_report(Graph.from_capture(scheduled))
    assert "database_always" in report and report.rstrip().endswith("ok")


def test_a_call_without_a_duration_is_an_error(scheduled):
    rules = load_resume_rules()
    rules = {**rules, "calls": [c for c in rules["calls"] if not c["call"].endswith("setSize")]}
    source = scheduled.one("gcp:workflows/workflow:Workflow").inputs["sourceContents"]
    with pytest.raises(RulesError, match="setSize"):
        resume_stages(source, rules)


def test_a_slower_database_start_goes_over_the_goal(scheduled):
    rules = load_resume_rules()
    rules = {**rules, "calls": [{**c, "seconds": 600} if "sqladmin" in c["call"] else c for c in rules["calls"]]}
    assert resume_report(Graph.from_capture(scheduled), rules).rstrip().endswith("OVER")
