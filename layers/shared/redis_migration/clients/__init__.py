"""The clients wing: who uses Redis, and switching them.

``preflight`` checks the functions before any change (unreadable environments, aliases, owners);
``aliases`` moves aliases forward and back; ``waves`` splits the plan into canary waves;
``connected`` lists the clients connected to a Redis and names them; ``migrated`` is the scheduled
check that migrated functions were not reverted. Nothing here imports a step.
"""
