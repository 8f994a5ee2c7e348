"""`group:` members of uiAccess: the Cloud Identity check the api-server makes (auth/airflow_gke_groups.py)
against a loopback stand-in for the metadata server and the Groups API, and role_for's use of it."""

from __future__ import annotations

import pytest

from tests.cloud_identity_stub import ACCESS_TOKEN, CloudIdentityStub, Group
from tests.iap_tokens import iap

import airflow_gke_groups as groups  # noqa: E402 (tests.iap_tokens puts auth/ on sys.path)

DATA = "data@example.com"
ADMINS = "admins@example.com"


@pytest.fixture
def google(monkeypatch):
    stub = CloudIdentityStub({DATA: Group("0abc123", direct={"cy@partner.org", "o'hara@example.com"},
                                          nested={"di@example.com"}),
                              ADMINS: Group("0def456", direct={"ana@example.com"})})
    monkeypatch.setenv("GCE_METADATA_HOST", stub.host)
    monkeypatch.delenv("GCE_METADATA_ROOT", raising=False)
    yield stub
    stub.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def check(google, clock):
    return groups.CloudIdentityGroups(google.api_url, timeout=1, clock=clock)


def test_a_direct_and_a_nested_member_are_members_through_the_transitive_check(google, check):
    assert check("cy@partner.org", DATA) and check("Di@Example.com", DATA)
    assert not check("eve@other.org", DATA)
    transitive = google.calls("transitive")
    assert [c["path"] for c in transitive] == ["/v1/groups/0abc123/memberships:checkTransitiveMembership"] * 3
    assert transitive[0]["query"]["query"] == ["member_key_id == 'cy@partner.org'"]
    assert google.calls("lookup")[0]["query"] == {"groupKey.id": [DATA]}
    assert not google.calls("membership")


def test_every_call_carries_the_metadata_servers_token_fetched_once(google, check):
    check("cy@partner.org", DATA)
    check("ana@example.com", ADMINS)
    api_calls = [r for r in google.requests if r["kind"] != "token"]
    assert api_calls and {r["authorization"] for r in api_calls} == {f"Bearer {ACCESS_TOKEN}"}
    assert len(google.calls("token")) == 1


def test_an_apostrophe_in_the_address_stays_inside_the_query_string(google, check):
    assert check("o'hara@example.com", DATA)
    assert google.calls("transitive")[0]["query"]["query"] == ["member_key_id == 'o\\'hara@example.com'"]


def test_without_the_premium_edition_direct_members_still_count_nested_ones_do_not(google, check, caplog):
    google.premium = False
    assert check("cy@partner.org", DATA)
    assert not check("di@example.com", DATA)  # 404 from memberships:lookup: not a (direct) member
    assert not check("eve@other.org", DATA)
    assert not check("eve@other.org", DATA)  # a 404 is an answer: cached like a yes
    assert len(google.calls("membership")) == 3
    assert google.calls("membership")[0]["query"] == {"memberKey.id": ["cy@partner.org"]}
    assert len(google.calls("transitive")) == 1  # the 403 is remembered, not paid again per person
    assert sum("nested groups are not followed" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("kind, status", [("transitive", 500), ("transitive", 429), ("membership", 503),
                                          ("lookup", 500), ("lookup", 403), ("token", 500)])
def test_any_other_answer_denies_this_request_only(google, check, kind, status):
    google.premium = kind != "membership"
    google.fail[kind] = status
    assert check("cy@partner.org", DATA) is False  # never an exception: that would be a 500
    del google.fail[kind]
    assert check("cy@partner.org", DATA) is True  # the failure was not cached


def test_a_timeout_denies_this_request_only(google, check):
    google.delay["transitive"] = 2  # the check's timeout is 1 s
    assert check("cy@partner.org", DATA) is False
    google.delay.clear()
    assert check("cy@partner.org", DATA) is True


def test_an_unreachable_api_or_metadata_server_denies(google, monkeypatch, clock):
    assert groups.CloudIdentityGroups("http://127.0.0.1:9/v1", timeout=1, clock=clock)("cy@partner.org", DATA) \
        is False
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    assert groups.CloudIdentityGroups(google.api_url, timeout=1, clock=clock)("cy@partner.org", DATA) is False


def test_answers_are_cached_for_minutes_group_names_for_an_hour(google, check, clock):
    assert check("cy@partner.org", DATA)
    google.groups[DATA].direct.discard("cy@partner.org")  # removed from the group
    clock.now += groups.MEMBERSHIP_TTL - 1
    assert check("cy@partner.org", DATA)  # still cached
    assert len(google.calls("transitive")) == 1
    clock.now += 2
    assert not check("cy@partner.org", DATA)  # the removal took effect within the TTL
    assert len(google.calls("lookup")) == 1  # the group's name is still cached
    clock.now += groups.GROUP_NAME_TTL
    check("cy@partner.org", DATA)
    assert len(google.calls("lookup")) == 2


def test_the_token_is_refreshed_before_it_expires(google, check, clock):
    check("cy@partner.org", DATA)
    clock.now += 3599 - groups.TOKEN_MARGIN + 1
    check("ana@example.com", ADMINS)
    assert len(google.calls("token")) == 2


ROLE_MAP = {"Admin": [f"group:{ADMINS}", "user:root@example.com"], "Op": ["user:bo@example.com"],
            "Viewer": [f"group:{DATA}", "domain:example.com"]}


@pytest.mark.parametrize("claims, role, groups_asked", [
    ({"email": "cy@partner.org", "hd": "partner.org"}, "Viewer", [ADMINS, DATA]),
    ({"email": "ana@example.com", "hd": "example.com"}, "Admin", [ADMINS]),  # the group's role beats the domain's
    ({"email": "bo@example.com", "hd": "example.com"}, "Op", [ADMINS]),  # Viewer's group can't raise Op
    ({"email": "root@example.com", "hd": "example.com"}, "Admin", []),  # the highest role already: no call
    ({"email": "eve@other.org", "hd": "other.org"}, None, [ADMINS, DATA]),  # in no group: no role
])
def test_the_highest_role_wins_and_groups_are_asked_only_above_the_direct_role(claims, role, groups_asked):
    asked = []

    def in_group(email, group):
        asked.append(group)
        return group == ADMINS and email == "ana@example.com" or group == DATA and email == "cy@partner.org"

    assert iap.role_for(claims, ROLE_MAP, in_group) == role
    assert asked == groups_asked


def test_role_for_with_the_real_check(google, check):
    assert iap.role_for({"email": "di@example.com"}, ROLE_MAP, check) == "Viewer"  # nested in data@
    assert iap.role_for({"email": "eve@other.org"}, ROLE_MAP, check) is None


def test_the_check_exists_only_when_a_member_is_a_group():
    assert groups.group_check({"Viewer": ["user:a@example.com", "domain:example.com"]}, "http://x") is None
    assert isinstance(groups.group_check({"Op": [f"group:{DATA}"]}, "http://x"), groups.CloudIdentityGroups)


def test_the_metadata_host_is_read_like_google_auth_reads_it(monkeypatch):
    monkeypatch.delenv("GCE_METADATA_HOST", raising=False)
    monkeypatch.delenv("GCE_METADATA_ROOT", raising=False)
    assert groups.metadata_host() == "metadata.google.internal"
    monkeypatch.setenv("GCE_METADATA_ROOT", "old:1")
    assert groups.metadata_host() == "old:1"
    monkeypatch.setenv("GCE_METADATA_HOST", "new:2")
    assert groups.metadata_host() == "new:2"
