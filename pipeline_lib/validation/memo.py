"""Great Expectations validations one at a time, each expectation's configuration built once.

GX 1.24 rebuilds ``Expectation.configuration`` (a pydantic ``dict()`` and a new
``ExpectationConfiguration``) every time it reads an expectation's kwargs while it plans the
metrics of a validation: some 130 times per expectation in one validation of the prices suite,
38% of its time. Within one validation nothing changes an expectation, so :func:`one_validation`
keeps each expectation's configuration, with the expectation itself (its id is not reused while
it is kept), until the validation ends, then puts GX's own property back. Only the validating
thread sees the kept ones; any other thread gets GX's property as ever. The results are the same
(``tests/unit/test_validation_memo.py`` compares them).

GX's batch manager is shared state and the property belongs to the class, so validations in one
process run one at a time under one lock (each takes ~0.1 s).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.Lock()


@contextmanager
def one_validation() -> Iterator[None]:
    """Hold the validation lock, with ``Expectation.configuration`` kept per expectation."""
    from great_expectations.expectations.expectation import Expectation

    with _LOCK:
        built = Expectation.configuration
        owner = threading.get_ident()
        # id -> (the expectation, its configuration): holding the expectation keeps its id
        # from being reused by another object for as long as the entry lives
        kept: dict[int, tuple[Any, Any]] = {}

        def configuration(self: Any) -> Any:
            if threading.get_ident() != owner:
                return built.fget(self)  # type: ignore[attr-defined]
            if id(self) not in kept:
                kept[id(self)] = (self, built.fget(self))  # type: ignore[attr-defined]
            return kept[id(self)][1]

        Expectation.configuration = property(configuration)  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            Expectation.configuration = built  # type: ignore[method-assign]
