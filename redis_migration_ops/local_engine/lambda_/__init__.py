"""Lambda as AWS behaves: handlers run in-process, RevisionId, versions and aliases, KMS-encrypted
environments, update latency, the functions' VPC, and their CloudWatch metrics."""
