"""SSM Run Command on the sandbox host: commands really run, output cut as AWS cuts it, and the
waiter woken when a command finishes."""
