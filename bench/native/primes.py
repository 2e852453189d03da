"""Pure-Python baselines for the primes extension: the segmented, odd-only sieve of
extensions/primes/primes_core.h, two ways.

``count_primes_loop`` is a line-for-line port of primes_core.h: its marking and
counting loops are Python loops, so it is the same algorithm in pure Python (row
4a's baseline). ``count_primes`` is the same sieve written for CPython: segments
are marked with bytearray slice assignment and counted with ``bytearray.count``,
so its inner loops run in C inside CPython (an informational row beside 4a).

    python bench/native/primes.py 10000000          # prints 664579
    python bench/native/primes.py 10000000 loop     # the literal port, same answer
"""

from __future__ import annotations

import sys
from math import isqrt

__all__ = ["CORE_SEGMENT", "DEFAULT_SEGMENT", "count_primes", "count_primes_loop"]

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


CORE_SEGMENT = 64 * 1024
"""The wasm job's default segment (primes.c's DEFAULT_SEGMENT), used by the literal port."""


def _isqrt(n: int) -> int:
    """primes_isqrt: the bit-by-bit integer square root."""
    r, bit = 0, 1 << 62
    while bit > n:
        bit >>= 2
    while bit:
        if n >= r + bit:
            n -= r + bit
            r = (r >> 1) + bit
        else:
            r >>= 1
        bit >>= 2
    return r


def _base_primes(root: int) -> list[int]:
    """primes__base: odd primes <= root by trial division."""
    out: list[int] = []
    for c in range(3, root + 1, 2):
        k, n = 0, len(out)
        while k < n and out[k] * out[k] <= c and c % out[k]:
            k += 1
        if k == n or out[k] * out[k] > c:
            out.append(c)
    return out


def _count_zeros(a: bytearray, n: int) -> int:
    """primes__count_zeros over a's n bytes, one byte per trip (Python has no cheap 8-byte word load)."""
    ones = 0
    for byte in a:
        ones += byte
    return n - ones


def count_primes_loop(limit: int, segment: int = CORE_SEGMENT) -> int:
    """Number of primes <= limit: primes_init, then primes_step until primes_done."""
    if limit < 2:
        return 0
    nxt, count = 3, 1  # primes_init(&s, limit, 3, limit >= 2, ...)
    primes = _base_primes(_isqrt(limit))
    nprimes, nactive = len(primes), 0
    offsets = [0] * nprimes
    while nxt <= limit:  # while (!primes_done(&s)) primes_step(&s);
        low, left = nxt, (limit - nxt) // 2 + 1
        n = min(segment, left)
        high = low + 2 * (n - 1)
        seg = bytearray(n)  # __builtin_memset(seg, 0, n)
        while nactive < nprimes and primes[nactive] * primes[nactive] <= high:
            p = primes[nactive]
            offsets[nactive] = (p * p - low) // 2
            nactive += 1
        for k in range(nactive):
            p, j = primes[k], offsets[k]
            p8 = 8 * p
            while j + 7 * p < n:
                seg[j] = 1
                seg[j + p] = 1
                seg[j + 2 * p] = 1
                seg[j + 3 * p] = 1
                seg[j + 4 * p] = 1
                seg[j + 5 * p] = 1
                seg[j + 6 * p] = 1
                seg[j + 7 * p] = 1
                j += p8
            while j < n:
                seg[j] = 1
                j += p
            offsets[k] = j - n
        count += _count_zeros(seg, n)
        nxt = high + 2
    return count


if __name__ == "__main__":
    loop = len(sys.argv) > 2 and sys.argv[2] == "loop"
    print((count_primes_loop if loop else count_primes)(int(sys.argv[1])))
