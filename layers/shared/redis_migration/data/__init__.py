"""The data wing: moving and checking what Redis holds.

``link`` connects to a Redis (TLS, credentials, the Lua scripts in ``lua/``); ``preflight`` reads
the source before anything changes; ``copy`` carries keys across in bounded, resumable slices;
``verify`` and ``compare`` check them key by key; ``digest`` is the canonical digest of a keyspace
shared with the host's Lua. Nothing here imports a step.
"""
