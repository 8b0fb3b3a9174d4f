"""Semantic versions 2.0.0 as CONTRACT.md section 3 reads them: optional leading `v`, missing minor or
patch read as 0, pre-releases ordered as the spec says, build metadata ignored."""

from __future__ import annotations

import re
from functools import total_ordering

MAX_SEMVER_LENGTH = 256
"""CONTRACT.md section 3: a longer operand is refused, a longer context value never satisfies a condition."""

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    # ASCII: `\d` would otherwise accept other scripts' digits ("1.2.3\u0663" read as 1.2.33).
    re.ASCII,
)


@total_ordering
class SemVer:
    """A parsed version; compares by precedence (build metadata ignored)."""

    __slots__ = ("core", "pre")

    def __init__(self, core: tuple[int, int, int], pre: tuple[str, ...]) -> None:
        self.core = core
        self.pre = pre

    def _pre_key(self) -> tuple[int, tuple[tuple[int, int, str], ...]]:
        # A version without pre-release ranks above any pre-release of the same core; numeric
        # identifiers rank below alphanumeric ones and compare as numbers. Numeric identifiers have
        # no leading zeros, so (length, text) orders them as numbers without int(), which refuses
        # more than 4300 digits.
        if not self.pre:
            return (1, ())
        return (0, tuple((0, len(p), p) if p.isdigit() else (1, 0, p) for p in self.pre))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and (self.core, self._pre_key()) == (other.core, other._pre_key())

    def __lt__(self, other: SemVer) -> bool:
        return (self.core, self._pre_key()) < (other.core, other._pre_key())

    def __hash__(self) -> int:
        return hash((self.core, self._pre_key()))


def parse_semver(text: object) -> SemVer | None:
    """Return the version, or None when `text` is not a string holding a semantic version.

    Over MAX_SEMVER_LENGTH characters is None without parsing, so no context value costs more than that.
    """
    if not isinstance(text, str) or len(text) > MAX_SEMVER_LENGTH:
        return None
    # fullmatch: `$` would also accept a trailing newline.
    match = _SEMVER.fullmatch(text)
    if match is None:
        return None
    pre = tuple(match["pre"].split(".")) if match["pre"] else ()
    if any(p.isdigit() and len(p) > 1 and p.startswith("0") for p in pre):
        return None
    try:
        core = (int(match["major"]), int(match["minor"] or 0), int(match["patch"] or 0))
    except ValueError:  # a number of more than 4300 digits (sys.get_int_max_str_digits)
        return None
    return SemVer(core, pre)
