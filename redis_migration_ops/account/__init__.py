"""The account description: its file format (``description``) and reading a real account into it
(``describe``, read-only calls)."""
