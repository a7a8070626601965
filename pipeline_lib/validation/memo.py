"""Great Expectations validations one at a time, each expectation's configuration and domain
object built once and each metric id from plain values without GX's general conversion.

GX 1.24 rebuilds ``Expectation.configuration`` (a pydantic ``dict()`` and a new
``ExpectationConfiguration``) every time it reads an expectation's kwargs while it plans the
metrics of a validation: some 130 times per expectation in one validation of the prices suite,
38% of its time. Within one validation nothing changes an expectation, so :func:`one_validation`
keeps each expectation's configuration, with the expectation itself (its id is not reused while
it is kept), until the validation ends, then puts GX's own property back. Only the validating
thread sees the kept ones; any other thread gets GX's property as ever. The results are the same
(``tests/unit/test_validation_memo.py`` compares them). The same goes for
``ExpectationConfiguration.to_domain_obj`` (a new pydantic ``Expectation`` each call), which GX
calls for every metric it asks of an expectation: about ten times per expectation.

Every metric configuration GX plans gets an id: ``IDDict.to_id`` turns its kwargs into JSON
with ``convert_to_json_serializable``, which tries some twenty types on every value (``None``
goes through four numpy ``issubdtype`` calls): 28% of a validation of the features suite. While
a validation runs, ``to_id`` gets :func:`plain_json` instead, which converts ``None``, ``str``,
``int``, ``bool``, ``float``, ``dict``, ``list``, ``tuple`` and ``set`` (exactly those types) as
GX does and hands anything else to GX's function: the same ids, so any thread may use it.

GX's batch manager is shared state and the property belongs to the class, so validations in one
process run one at a time under one lock (each takes ~0.1 s). A validation of the features
suite (98 expectations) on four rows took 0.38-0.42 s with the kept configurations alone,
0.28-0.32 s with all three; the prices suite 0.16-0.20 -> 0.12-0.16 s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.Lock()
_SCALARS = (str, int, bool)


def plain_json(data: Any) -> Any:
    """``convert_to_json_serializable(data)``, faster on plain Python values (equal results)."""
    kind = type(data)
    if data is None or kind in _SCALARS:
        return data
    if kind is float:
        return None if data != data else data  # NaN: None, as GX gives
    if kind is dict:
        return {str(k): plain_json(v) for k, v in data.items()}
    if kind in (list, tuple, set):
        return [plain_json(v) for v in data]
    from great_expectations.util import convert_to_json_serializable  # anything else: GX's

    return convert_to_json_serializable(data)


@contextmanager
def one_validation() -> Iterator[None]:
    """Hold the validation lock, with ``Expectation.configuration`` and
    ``ExpectationConfiguration.to_domain_obj`` kept per object for the validating thread, and
    the metric ids made by :func:`plain_json`."""
    from great_expectations.core import id_dict
    from great_expectations.expectations.expectation import Expectation
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    with _LOCK:
        owner = threading.get_ident()
        built = Expectation.configuration
        made = ExpectationConfiguration.to_domain_obj
        configuration = _kept_per_object(built.fget, owner)  # type: ignore[attr-defined]
        Expectation.configuration = property(configuration)  # type: ignore[method-assign,assignment]
        ExpectationConfiguration.to_domain_obj = _kept_per_object(made, owner)  # type: ignore[method-assign,assignment]
        converter = id_dict.convert_to_json_serializable
        id_dict.convert_to_json_serializable = plain_json
        try:
            yield
        finally:
            Expectation.configuration = built  # type: ignore[method-assign]
            ExpectationConfiguration.to_domain_obj = made  # type: ignore[method-assign]
            id_dict.convert_to_json_serializable = converter


def _kept_per_object(build: Callable[[Any], Any], owner: int) -> Callable[[Any], Any]:
    """``build(self)``, made once per object for the thread ``owner`` (others get a new one)."""
    # id -> (the object, what was built): holding the object keeps its id from being reused by
    # another object for as long as the entry lives
    kept: dict[int, tuple[Any, Any]] = {}

    def once(self: Any) -> Any:
        if threading.get_ident() != owner:
            return build(self)
        if id(self) not in kept:
            kept[id(self)] = (self, build(self))
        return kept[id(self)][1]

    return once
