"""One registry for every kind of named thing piaa lets a user choose (backbones, pair samplers,
built-in profiles, data sets, ranking losses, retouching operators, evaluation methods).

Modelled on timm's ``register_model`` / ``list_models`` / ``create_model``: things register themselves
under a name with optional metadata (readable without building anything), ``names()`` lists them, with
an optional filter on that metadata, and ``get()`` fails with one message that names the choices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from piaa.errors import UnknownNameError

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError"]


class Registry(Generic[T]):
    """Named entries of one kind, in registration order.

    ``kind`` is the noun of the error message (``"unknown backbone 'x'; choose one of: a, b"``);
    ``key`` maps a user's spelling to the stored name (e.g. case and ``-``/``_`` folded), and ``error``
    is the exception class raised for an unknown name (a :class:`~piaa.errors.PiaaError` subclass, so
    the command line reports it in one line with exit status 2).
    """

    def __init__(
        self,
        kind: str,
        *,
        key: Callable[[str], str] | None = None,
        error: type[Exception] = UnknownNameError,
    ) -> None:
        self.kind = kind
        self._key = key or (lambda name: name)
        self._error = error
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._names: dict[str, str] = {}  # key -> name as registered

    @overload
    def register(self, name: str, obj: T, **meta: Any) -> T: ...
    @overload
    def register(self, name: str, obj: None = None, **meta: Any) -> Callable[[T], T]: ...

    def register(self, name: str, obj: T | None = None, **meta: Any) -> T | Callable[[T], T]:
        """Add ``obj`` under ``name`` with ``meta``; without ``obj``, a decorator that does so.
        Registering a name twice replaces the entry (a plugin may override a built-in one)."""

        def add(o: T) -> T:
            self._entries[name] = o
            self._meta[name] = dict(meta)
            self._names[self._key(name)] = name
            return o

        return add if obj is None else add(obj)

    def resolve(self, name: str) -> str:
        """The registered spelling of ``name``; raises ``error`` naming every choice if unknown."""
        found = self._names.get(self._key(str(name)))
        if found is None:
            raise self._error(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}")
        return found

    def get(self, name: str) -> T:
        """The entry registered as ``name``; raises ``error`` naming every choice if unknown."""
        return self._entries[self.resolve(name)]

    __getitem__ = get

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata ``name`` was registered with (a copy)."""
        return dict(self._meta[self.resolve(name)])

    def names(self, where: Callable[[dict[str, Any]], bool] | None = None, **match: Any) -> list[str]:
        """Registered names in order; only those whose metadata satisfies ``where`` and has every
        ``key=value`` of ``match`` (``registry.names(offline=True)``)."""
        return [
            n
            for n, m in self._meta.items()
            if (where is None or where(m)) and all(m.get(k) == v for k, v in match.items())
        ]

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def values(self) -> list[T]:
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
