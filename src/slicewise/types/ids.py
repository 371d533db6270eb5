"""Numbers written as text in files and requests (ids, class indices, external ids)."""

from __future__ import annotations

import re

_INT = re.compile(r"-?[0-9]{1,18}")


def ascii_int(text: object, *, negative: bool = False) -> int | None:
    """The integer that ``text`` spells in ASCII digits (at most 18, a leading ``-`` when ``negative``), else
    None. (``str.isdigit`` is also true of '²' and other characters that ``int`` refuses.)

    >>> ascii_int("42"), ascii_int("²"), ascii_int("-3"), ascii_int("-3", negative=True), ascii_int(" 7")
    (42, None, None, -3, None)
    """
    s = str(text)
    if not _INT.fullmatch(s) or (s.startswith("-") and not negative):
        return None
    return int(s)
