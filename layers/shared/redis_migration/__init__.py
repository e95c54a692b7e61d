"""The domain of redis-migration, one wing per concern.

- ``data/``: copy, verify, compare, preflight and digest what Redis holds;
- ``host/``: the instance, through SSM (the shell scripts and what builds and reads them);
- ``clients/``: who uses Redis, and switching them;
- ``watch/``: after the cutover (probe, health, bake, metrics, backups);
- ``decommission/``: retiring ElastiCache after the soak;
- ``steps/``: one module per workflow step, the only place that composes wings.

At the root, the ground every wing stands on: ``models`` (which imports no wing), ``errors``,
``aws``, ``records``, ``executions``, ``lambda_support``, ``preflight_network``.
``scripts/check_layout.py`` keeps these walls. Nothing here creates an AWS client or reads the
environment at import time.
"""
