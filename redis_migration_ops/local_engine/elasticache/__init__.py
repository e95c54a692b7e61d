"""ElastiCache as AWS behaves: a real endpoint (the stand-in), member clusters, metrics,
parameter and subnet groups, snapshots, deletion, and how long each operation takes."""
