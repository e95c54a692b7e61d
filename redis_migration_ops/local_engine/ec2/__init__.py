"""EC2: security groups that reference each other, and the network guard (loopback only; sandbox
addresses redirected to their forwarders)."""
