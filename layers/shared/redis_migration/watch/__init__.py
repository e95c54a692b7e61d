"""The watch wing: after the cutover.

``probe`` and ``health`` read the self-hosted Redis from inside the VPC; ``bake`` compares the
functions with their baseline; ``metric_data`` reads CloudWatch in requests of 500;
``monitoring`` publishes the health metrics; ``backup`` takes and keeps the daily backups.
Nothing here imports a step.
"""
