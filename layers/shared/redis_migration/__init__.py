"""The domain of redis-migration: models, steps, AWS adapters, Redis checks and the host script.

Nothing here creates an AWS client or reads the environment at import time.
"""
