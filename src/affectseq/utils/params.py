"""Declared settings: each setting once, with its default, constraint and help, in the style of scikit-learn's
``_parameter_constraints``.

An options dataclass lists its settings in a ``PARAMS`` class attribute (``{name: Param}``); the dataclass's
``__post_init__`` calls :func:`validate_params`, and :func:`params_fingerprint` gives the settings that change
results (those with ``fingerprint=True``), so no options class hand-writes either. The same declaration gives
the command line its options (``affectseq.cli.options``), the web form its parsing (:meth:`Param.parse`) and the
HTTP API its schema (:meth:`Param.json_schema`).

```python
@dataclass(frozen=True)
class CropOptions:
    PARAMS: ClassVar = {"jpeg_quality": Param(95, Interval(int, 1, 100), "JPEG quality of the crops")}
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        validate_params(self)
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from affectseq.errors import SettingError

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float) in ``[low, high]`` (``None``: unbounded on that side); never NaN or inf."""

    kind: type
    low: float | None = None
    high: float | None = None

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.kind is float else int):
            return False
        if isinstance(value, float) and not math.isfinite(value):  # NaN passes no comparison; inf is no setting
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            return f"{what} between {self.low:g} and {self.high:g}"
        if self.low is not None:
            return f"{what} >= {self.low:g}"
        return f"{what} <= {self.high:g}" if self.high is not None else what

    def parse(self, text: str) -> Any:
        try:
            return self.kind(text.strip())
        except ValueError:
            raise ValueError(f"must be {'an integer' if self.kind is int else 'a number'}") from None

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer" if self.kind is int else "number"}
        if self.low is not None:
            schema["minimum"] = self.low
        if self.high is not None:
            schema["maximum"] = self.high
        return schema


@dataclass(frozen=True)
class OneOf:
    """One of some names; ``names`` may be a function, asked each time (a registry that grows)."""

    names: tuple[str, ...] | Callable[[], Iterable[str]]
    fold_case: bool = False  # compare lower-cased (as the registry looks names up)

    def choices(self) -> tuple[str, ...]:
        return tuple(self.names() if callable(self.names) else self.names)

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return (value.strip().lower() if self.fold_case else value) in self.choices()

    def describe(self) -> str:
        return f"one of {', '.join(self.choices())}"

    def parse(self, text: str) -> Any:
        return text.strip()

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices())}


@dataclass(frozen=True)
class Boolean:
    """``True`` or ``False`` (text: 1/0, true/false, on/off, yes/no)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"

    def parse(self, text: str) -> Any:
        value = text.strip().lower()
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        raise ValueError("must be true or false")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


Constraint = Interval | OneOf | Boolean


@dataclass(frozen=True)
class Param:
    """One setting: its default, constraint, help text, command-line flag and whether it is in the fingerprint.

    ``flag`` defaults to ``--name-with-dashes``; ``nullable`` also accepts ``None``.
    """

    default: Any
    constraint: Constraint
    help: str = ""
    flag: str | None = None
    fingerprint: bool = True
    nullable: bool = False

    def option(self, name: str) -> str:
        """The command-line flag of this setting."""
        return self.flag or "--" + name.replace("_", "-")

    def check(self, name: str, value: Any) -> Any:
        """``value`` when the constraint accepts it; else a :class:`SettingError` naming the setting."""
        if (value is None and self.nullable) or self.constraint.accepts(value):
            return value
        raise SettingError(f"{name} must be {self.constraint.describe()}, got {value!r}")

    def parse(self, name: str, text: str) -> Any:
        """A value from text (a web form field), checked; SettingError naming ``name`` otherwise."""
        try:
            value = self.constraint.parse(text)
        except ValueError as err:
            raise SettingError(f"{name} {err}, got {text!r}") from None
        return self.check(name, value)

    def json_schema(self) -> dict[str, Any]:
        """The OpenAPI/JSON schema of the setting (with its default and help)."""
        schema = self.constraint.json_schema()
        if self.default is not None:
            schema["default"] = self.default
        if self.help:
            schema["description"] = self.help
        return schema


def validate_params(obj: Any, params: Mapping[str, Param] | None = None) -> None:
    """Check each declared setting of ``obj`` (``type(obj).PARAMS`` unless given); SettingError on the first bad one."""
    for name, param in (type(obj).PARAMS if params is None else params).items():
        param.check(name, getattr(obj, name))


def params_fingerprint(obj: Any, params: Mapping[str, Param] | None = None) -> dict[str, Any]:
    """The declared settings of ``obj`` that change its results, in declaration order."""
    return {name: getattr(obj, name)
            for name, param in (type(obj).PARAMS if params is None else params).items() if param.fingerprint}
