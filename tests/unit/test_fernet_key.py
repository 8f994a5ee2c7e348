"""The fernet key (components/airflow/fernet.py): protected like the database it unlocks, rotated by a
config change (fernetKeyVersion) that renders `new,old`, and flagged as data loss by the change plan."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, MultiFernet

from rehearse.changes import Rules, plan
from tests.conftest import run_stack
from tests.unit.test_rotation import pod_checksum, secret_data

RANDOM_ID = "random:index/randomId:RandomId"


def fernet_resources(capture) -> dict[str, bool]:
    """Fernet key resource name -> Pulumi `protect`."""
    return {r.name: r.protect for r in capture.of_type(RANDOM_ID) if "fernet-key" in r.name}


def rendered_keys(capture) -> list[str]:
    return secret_data(capture)["fernet-key"].split(",")


def test_prod_protects_the_key_like_the_database(prod):
    assert fernet_resources(prod) == {"airflow-fernet-key": True}
    assert prod.one("gcp:sql/databaseInstance:DatabaseInstance").protect


def test_an_unprotected_database_leaves_its_key_unprotected(dev):
    # dev's database is not Pulumi-protected (dbPulumiProtect defaults to prod only): the stack stays destroyable.
    assert fernet_resources(dev) == {"airflow-fernet-key": False}
    assert fernet_resources(run_stack("dev", dbPulumiProtect="true")) == {"airflow-fernet-key": True}


def test_the_rendered_key_is_a_valid_fernet_key(dev):
    (key,) = rendered_keys(dev)
    token = Fernet(key.encode()).encrypt(b"conn-password")
    assert Fernet(key.encode()).decrypt(token) == b"conn-password"


@pytest.fixture(scope="module")
def rotated():
    return {version: run_stack("prod", fernetKeyVersion=str(version)) for version in (2, 3)}


def test_a_bump_puts_a_new_key_first_and_keeps_the_old_one(prod, rotated):
    (old,) = rendered_keys(prod)
    new, previous = rendered_keys(rotated[2])
    assert previous == old and new != old
    token = Fernet(old.encode()).encrypt(b"secret")
    assert MultiFernet([Fernet(k.encode()) for k in rendered_keys(rotated[2])]).decrypt(token) == b"secret"
    assert pod_checksum(rotated[2]) != pod_checksum(prod)  # the pods roll onto the new key
    assert fernet_resources(rotated[2]) == {"airflow-fernet-key": True, "airflow-fernet-key-v2": True}


def test_the_next_bump_drops_the_oldest_and_unprotects_it_before_its_delete(rotated):
    newest, previous = rendered_keys(rotated[3])
    assert previous == rendered_keys(rotated[2])[0] and newest not in rendered_keys(rotated[2])
    # v1 is no longer read; declared unprotected one more version so that the bump after deletes it.
    assert fernet_resources(rotated[3]) == {"airflow-fernet-key": False, "airflow-fernet-key-v2": True,
                                           "airflow-fernet-key-v3": True}


def test_the_change_plan_flags_a_replaced_fernet_key_as_data_loss(prod, rotated):
    rules = Rules.load()
    renamed = run_stack("prod", namePrefix="airflow2")
    assert any("fernet-key" in urn for urn in plan(prod, renamed, rules).data_loss)
    bumped = plan(prod, rotated[2], rules)
    assert not [urn for urn in bumped.data_loss if "fernet-key" in urn]
    assert any(urn.endswith("airflow-fernet-key-v2") for urn in bumped.created)
