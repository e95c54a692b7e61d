"""`python -m redis_migration_ops` runs the operator CLI."""

from redis_migration_ops.cli import main

main()
