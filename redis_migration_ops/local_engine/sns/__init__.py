"""SNS as AWS enforces it: publish limits (subject length, message size)."""
