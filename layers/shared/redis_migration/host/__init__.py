"""The host wing: the instance Redis runs on, reached only through SSM Run Command.

The shell scripts beside these modules run on the instance; ``scripts`` ships them, ``install``
builds the install command, ``rules`` are the host preflight rules, ``state`` the read-only inspect
and "exactly as before", ``revert`` the host's compensation, ``services`` the systemd services that
use Redis, ``commands`` sends a command and reads its result line. Nothing here imports a step.
"""
