"""Concatenation references, one sequence per destination.

A phone joins parts by (sender, reference), so two long messages to the same
number in flight at once need different references; messages to different
numbers may share one.  The sequence starts at a random value per destination
so that a restart does not reuse the references of parts still in flight.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class ReferenceCounter:
    """Hands out 8-bit (0..255) or 16-bit (0..65535) references per destination, wrapping to 0."""

    def __init__(
        self,
        bits: int = 8,
        *,
        start: Callable[[str], int] | None = None,
        max_destinations: int = 100_000,
    ) -> None:
        if bits not in (8, 16):
            raise ValueError(f"reference bits must be 8 or 16, not {bits}")
        if max_destinations < 1:
            raise ValueError("max_destinations must be at least 1")
        self.bits = bits
        self.modulus = 1 << bits
        self._start = start if start is not None else _random_start(self.modulus)
        self._max = max_destinations
        self._next: OrderedDict[str, int] = OrderedDict()

    def next(self, destination: str) -> int:
        """The reference for the next concatenated message to ``destination``."""
        value = self._next.pop(destination, None)
        if value is None:
            value = self._start(destination) % self.modulus
            if len(self._next) >= self._max:  # forget the destination unused longest
                self._next.popitem(last=False)
        self._next[destination] = (value + 1) % self.modulus
        return value

    def for_destination(self, destination: str) -> Callable[[], int]:
        """A function giving ``next(destination)``, for ``split_text(reference=...)``."""
        return lambda: self.next(destination)


def _random_start(modulus: int) -> Callable[[str], int]:
    import random  # only a long-running gateway needs it; `mailsms split` does not

    rng = random.Random()  # noqa: S311 - a concatenation reference, not a secret; seeded once, no syscall per call
    return lambda _destination: rng.randrange(modulus)
