"""The `airflow-gke-security` CrossGuard policy pack. Rules live in `policy.rules`; the pack is built
only in `policy/__main__.py`, which the Pulumi engine runs (`pulumi preview --policy-pack policy`)."""
