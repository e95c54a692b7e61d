"""IAM as AWS evaluates it: who is calling, the policies SAM writes, the resource ARNs AWS checks,
and the enforcement that denies what the template does not allow."""
