"""Turning trio's exception groups back into the single exception a caller expects.

Nurseries wrap everything in ``BaseExceptionGroup`` (strict groups are trio's default). Our
nurseries only ever hold one task that can fail for a reason of its own -- the others are
background tasks that end by cancellation -- so a group here has one real error plus, at
most, ``Cancelled`` siblings. Users of the client should see that error, not a group.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import trio


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def collapse(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error in ``group``; the group itself if there really are several."""
    leaves = list(_leaves(group))
    errors = [exc for exc in leaves if not isinstance(exc, trio.Cancelled)]
    if len(errors) == 1:
        return errors[0]
    if not errors and leaves:
        return leaves[0]  # only cancellations: any one of them unwinds the cancelled scope
    return group


def reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` without making the group being handled its ``__context__``."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context
