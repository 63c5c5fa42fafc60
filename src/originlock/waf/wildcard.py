"""``wildcard`` / ``strict wildcard`` patterns: syntax check and a matcher without regexes.

Rules (spec §1.5): ``*`` matches zero or more bytes, ``\\*`` is a literal star, ``\\\\`` a literal
backslash, any other escape is an error, and ``**`` is an error. The whole value must match;
``wildcard`` folds ASCII case, ``strict wildcard`` does not.

Matching splits the pattern at its stars into literal segments and checks them with
``startswith`` / ``find`` / ``endswith``: a greedy left-to-right search is exact for patterns
whose only metacharacter is ``*`` and costs a few C-level bytes operations per request.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["compile_wildcard", "split_wildcard"]


def split_wildcard(pattern: bytes) -> tuple[bytes, ...]:
    """The literal segments between unescaped stars (so ``len - 1`` stars).

    Raises:
        ValueError: with wirefilter's message for a bad escape or a double star.
    """
    segments: list[bytes] = []
    current = bytearray()
    prev_star = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == 0x5C:  # backslash
            if i + 1 >= len(pattern):
                raise ValueError(
                    f"invalid wildcard: wildcard syntax error at position {i}: "
                    "incomplete escape sequence at the end of the wildcard"
                )
            nxt = pattern[i + 1]
            if nxt not in (0x2A, 0x5C):
                raise ValueError(f"invalid wildcard: wildcard syntax error at position {i}: invalid escape sequence")
            current.append(nxt)
            i += 2
            prev_star = False
            continue
        if c == 0x2A:  # star
            if prev_star:
                raise ValueError("wildcard contains a double star")
            segments.append(bytes(current))
            current = bytearray()
            prev_star = True
        else:
            current.append(c)
            prev_star = False
        i += 1
    segments.append(bytes(current))
    return tuple(segments)


def compile_wildcard(pattern: bytes, *, strict: bool) -> Callable[[bytes], bool]:
    """A predicate for one validated pattern; ``strict=False`` folds ASCII case."""
    segments = split_wildcard(pattern)
    if not strict:
        segments = tuple(s.lower() for s in segments)
    if len(segments) == 1:
        only = segments[0]
        if strict:
            return lambda value: value == only
        return lambda value: value.lower() == only
    head, *middle, tail = segments
    minimum = sum(len(s) for s in segments)

    def match(value: bytes) -> bool:
        if not strict:
            value = value.lower()
        if len(value) < minimum or not value.startswith(head) or not value.endswith(tail):
            return False
        pos = len(head)
        stop = len(value) - len(tail)
        for seg in middle:
            found = value.find(seg, pos, stop)
            if found < 0:
                return False
            pos = found + len(seg)
        return True

    return match
