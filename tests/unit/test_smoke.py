def test_dev_stack_declares_the_foundation(dev):
    types = {r.type for r in dev.resources}
    for required in ("gcp:compute/network:Network", "gcp:container/cluster:Cluster",
                     "gcp:sql/databaseInstance:DatabaseInstance", "pulumi:providers:kubernetes"):
        assert required in types
