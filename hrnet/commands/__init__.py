"""Subcommands of the `hrnet` CLI (one module each)."""
