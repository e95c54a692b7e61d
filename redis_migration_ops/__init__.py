"""Operator tooling for redis-migration (the CLI and the local engine); not shipped to Lambda."""
