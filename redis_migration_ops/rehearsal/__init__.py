"""The local rehearsal: a migration (``migration``) or a decommission (``decommission``) on a local
account (``local_account``), with the sandbox's Redis (``sandbox_redis``), a throwaway Redis for
tests (``local_redis``), the clients' modelled traffic (``client_traffic``) and the workdir it owns
(``workdir``)."""
