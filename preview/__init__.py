"""Offline preview: the real program under Pulumi mocks, no cloud account and no Pulumi CLI."""
