"""Pure-Python baseline for the primes extension: the same segmented, odd-only
sieve as extensions/primes/primes_core.h, written for CPython.

Benchmarks run ``count_primes`` in a plain Celery task to compare with the wasm
job, so it is kept honestly fast: segments are marked with bytearray slice
assignment (C speed) and counted with ``bytearray.count``; segments are larger
than the wasm job's because the per-prime loop here is interpreted.

    python bench/native/primes.py 10000000      # prints 664579
"""

from __future__ import annotations

import sys
from math import isqrt

__all__ = ["count_primes", "DEFAULT_SEGMENT"]

DEFAULT_SEGMENT = 1 << 20
"""Odd numbers per segment (one byte each)."""


def _odd_base_primes(root: int) -> list[int]:
    """Odd primes <= root, by a plain odd-only sieve."""
    if root < 3:
        return []
    size = (root - 1) // 2  # index i stands for 2i + 3
    sieve = bytearray(b"\x01") * size
    for i in range((isqrt(root) - 1) // 2):
        if sieve[i]:
            p = 2 * i + 3
            start = (p * p - 3) // 2
            sieve[start::p] = bytes(len(range(start, size, p)))
    return [2 * i + 3 for i, is_prime in enumerate(sieve) if is_prime]


def count_primes(limit: int, segment: int = DEFAULT_SEGMENT) -> int:
    """Number of primes <= limit."""
    if limit < 2:
        return 0
    primes = _odd_base_primes(isqrt(limit))
    offsets: list[int] = []  # per active prime: index of its next multiple in the next segment
    active = 0
    count = 1  # the prime 2
    low = 3  # first odd number of the current segment
    zeros = memoryview(bytes(segment))
    while low <= limit:
        n = min(segment, (limit - low) // 2 + 1)
        high = low + 2 * (n - 1)
        while active < len(primes) and primes[active] * primes[active] <= high:
            offsets.append((primes[active] ** 2 - low) // 2)
            active += 1
        seg = bytearray(b"\x01") * n  # 1 = not yet crossed out
        for k in range(active):
            p, j = primes[k], offsets[k]
            if j < n:
                marks = (n - 1 - j) // p + 1
                seg[j::p] = zeros[:marks]
                j += marks * p
            offsets[k] = j - n
        count += seg.count(1)
        low = high + 2
    return count


if __name__ == "__main__":
    print(count_primes(int(sys.argv[1])))
