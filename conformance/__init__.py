"""Rules the Pulumi CLI applies before a program runs, ported from its Go source (see pulumi_cli.py)."""
