"""The base of every local-engine behaviour: a reversible replacement of attributes of moto.

Every behaviour hooks a moto internal (pinned: ``moto==5.2.5``), documents which gap it fills,
installs with :meth:`MotoPatch.install` and leaves moto exactly as it was with
:meth:`MotoPatch.uninstall`. Product code never knows it runs here: the handlers see ordinary AWS
behaviour.
"""

from __future__ import annotations

import abc
from typing import Any

_MISSING = object()


class MotoPatch(abc.ABC):
    """A reversible replacement of attributes of moto (or stdlib) objects."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    @property
    def installed(self) -> bool:
        """Whether the patch is in place."""
        return bool(self._saved)

    def _replace(self, owner: Any, attribute: str, value: Any) -> None:
        if not hasattr(owner, attribute):
            raise RuntimeError(f"{type(self).__name__}: {owner!r} has no {attribute}; is it moto 5.2.5?")
        own = vars(owner).get(attribute, _MISSING) if hasattr(owner, "__dict__") else _MISSING
        self._saved.append((owner, attribute, own))
        setattr(owner, attribute, value)

    def _add(self, owner: Any, attribute: str, value: Any) -> None:
        if hasattr(owner, attribute):
            raise RuntimeError(f"{type(self).__name__}: {owner!r} already has {attribute}; moto changed")
        self._saved.append((owner, attribute, _MISSING))
        setattr(owner, attribute, value)

    @abc.abstractmethod
    def install(self) -> None:
        """Put the patch in place."""

    def uninstall(self) -> None:
        """Restore every replaced attribute, last first."""
        while self._saved:
            owner, attribute, original = self._saved.pop()
            if original is _MISSING:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)
