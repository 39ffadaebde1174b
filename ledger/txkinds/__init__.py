"""Transaction kinds, one module each; importing this package registers all of them.

To add a kind, add `ledger/txkinds/<kind>.py` with one `@tx_kind("<kind>")` class (see
`ledger.registry`). Nothing else changes: decoding dispatches on the `kind` string, and the
executor calls the class's `check` and `apply`.
"""

import importlib
import pkgutil

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_m}")
