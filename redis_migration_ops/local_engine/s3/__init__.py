"""S3: buckets as AWS creates them today (ACLs disabled)."""
