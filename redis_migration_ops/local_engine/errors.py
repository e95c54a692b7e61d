"""The local engine's own error (a misuse of the engine, or a gap in what it models)."""


class LocalEngineError(RuntimeError):
    """The local engine was used out of order or cannot do what was asked."""
