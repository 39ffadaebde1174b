"""Registries that make the ledger extensible one module at a time.

* **Transaction kinds.** A kind is one `@tx_kind("name")` class in `ledger/txkinds/<name>.py`: the
  class is the kind's body record (its fields are `Annotated[..., Spec]` like any record) and it
  carries the kind's rules as two methods:

  - `check(self, params)`: stateless rules of the body alone (positive amounts, name length...),
    run before signature checks reach the state, e.g. by a mempool;
  - `apply(self, state, ctx, tx)`: the stateful rules and the effect on `state`. It raises
    `InvalidTransaction` when a rule is broken; the executor reverts whatever it changed, so a
    kind never has to undo half-done work itself.

  `ledger.txkinds` imports every module in its package, so dropping a file in adds the kind:
  nothing else is edited.

* **Block hooks.** `@block_hook("begin"|"end", order, name)` functions run at the start / end of
  every block (e.g. releasing matured unbondings; later: settling a day's rewards). They run in
  (order, name) order, the same on every node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ledger.codec import Record, record
from ledger.errors import DecodeError

if TYPE_CHECKING:  # pragma: no cover
    from ledger.execution import BlockContext
    from ledger.genesis import Params
    from ledger.state import State
    from ledger.tx import Transaction


class TxBody(Record):
    """Base of every transaction kind's body record."""

    kind: ClassVar[str] = ""

    def check(self, params: Params) -> None:
        """Stateless rules of the body; raise InvalidTransaction. Default: nothing to check."""

    def apply(self, state: State, ctx: BlockContext, tx: Transaction) -> None:  # pragma: no cover
        raise NotImplementedError


KINDS: dict[str, type[TxBody]] = {}


def tx_kind(name: str) -> Callable[[type], type]:
    """Class decorator: make the class a record and register it as transaction kind `name`."""

    def deco(cls: type) -> type:
        if not issubclass(cls, TxBody):
            raise TypeError(f"tx kind {name}: {cls.__name__} must subclass ledger.registry.TxBody")
        if name in KINDS and KINDS[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"tx kind {name!r} is registered twice")
        cls.kind = name
        cls = record(cls)
        KINDS[name] = cls
        return cls

    return deco


def body_class(kind: str) -> type[TxBody]:
    cls = KINDS.get(kind)
    if cls is not None:  # hot path (every decoded transaction): skip the import statement
        return cls
    from ledger import txkinds  # noqa: F401  (make sure every kind module is loaded)

    try:
        return KINDS[kind]
    except KeyError:
        raise DecodeError(f"unknown transaction kind {kind[:40]!r} (known: {', '.join(sorted(KINDS))})") from None


BlockHook = Callable[["State", "BlockContext"], Any]
_HOOKS: dict[str, dict[str, tuple[int, BlockHook]]] = {"begin": {}, "end": {}, "stake": {}}


def block_hook(phase: str, order: int, name: str) -> Callable[[BlockHook], BlockHook]:
    """Register `fn(state, ctx)` to run at the `phase` ("begin" or "end") of every block.

    Phase "stake" is different: `fn(state, staker, validator, kind, delta)` runs inside
    `State.change_stake` BEFORE a stake changes (the economics' F1 rewards realise what the old
    stake earned, see ledger/economics/f1_state.py)."""
    if phase not in _HOOKS:
        raise ValueError("phase is 'begin', 'end' or 'stake'")

    def deco(fn: BlockHook) -> BlockHook:
        _HOOKS[phase][name] = (order, fn)
        return fn

    return deco


def hooks(phase: str) -> list[BlockHook]:
    from ledger import txkinds  # noqa: F401

    return [fn for _, _, fn in sorted((o, n, f) for n, (o, f) in _HOOKS[phase].items())]
