"""Names a package exports lazily: imported from their module on first use, so importing the package stays cheap.

```python
__getattr__, __dir__ = lazy_exports(__name__, {"load_model": "affectseq.predict.model"})
```
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``exports`` is read from its module (``{name:
    module}``) on first access and then kept in the package's namespace; any other name is an AttributeError.
    ``dir(package)`` lists its ``__all__`` (else the exported names)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(getattr(sys.modules[package], "__all__", exports))

    return __getattr__, __dir__
