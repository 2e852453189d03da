/*
 * primes_core.h: counting primes <= limit with a segmented, odd-only sieve of
 * Eratosthenes. Freestanding C (stdint only, no allocation): the wasm job
 * (primes.c) and the native benchmark (bench/native/primes_native.c) share it.
 *
 * Byte i of a segment stands for the odd number low + 2i; 1 = composite.
 * Memory: the odd base primes <= sqrt(limit) with one offset each, plus one
 * segment buffer. All progress is (next, count): every prime < next has been
 * counted, so a run can stop after any segment and resume from those two
 * numbers; the offsets are recomputed from `next`.
 *
 *   primes_sieve s;
 *   primes_init(&s, limit, next, count, segment, primes, offsets, buffer);
 *       // primes/offsets: room for primes_base_capacity(limit) entries each,
 *       // buffer: `segment` bytes; next = 3, count = limit >= 2 on a first run
 *   while (!primes_done(&s)) primes_step(&s);
 *   // s.count is the number of primes <= limit
 */
#ifndef PRIMES_CORE_H
#define PRIMES_CORE_H

#include <stdint.h>

/* Largest limit accepted: keeps the base primes under ~1 MiB and every
 * intermediate product inside 64 bits. */
#define PRIMES_MAX_LIMIT 1000000000000ull /* 10^12 */

typedef struct primes_sieve {
    uint64_t limit;    /* count primes <= limit */
    uint64_t next;     /* smallest odd number not sieved yet (3 on a first run) */
    uint64_t count;    /* primes < next, 2 included */
    uint32_t segment;  /* odd numbers per segment = bytes in `buffer` */
    uint32_t nprimes;  /* odd base primes <= sqrt(limit) */
    uint32_t nactive;  /* base primes whose square has been reached */
    uint32_t *primes;  /* the base primes, ascending */
    uint32_t *offsets; /* per active prime: index of its next odd multiple in the next segment */
    uint8_t *buffer;
} primes_sieve;

static inline uint32_t primes_isqrt(uint64_t n) {
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > n) bit >>= 2;
    for (; bit; bit >>= 2) {
        if (n >= r + bit) { n -= r + bit; r = (r >> 1) + bit; }
        else r >>= 1;
    }
    return (uint32_t)r;
}

/* Entries needed for the base primes (and their offsets): only numbers coprime to
 * 30 can be prime above 5, at most 8 in every 30, so this bounds pi(sqrt(limit)). */
static inline uint32_t primes_base_capacity(uint64_t limit) {
    return primes_isqrt(limit) / 15 * 4 + 16;
}

/* Odd primes <= root by trial division (root <= 10^6, a few ms at most). */
static inline uint32_t primes__base(uint32_t root, uint32_t *out) {
    uint32_t n = 0;
    for (uint32_t c = 3; c <= root; c += 2) {
        uint32_t k = 0;
        while (k < n && (uint64_t)out[k] * out[k] <= c && c % out[k]) k++;
        if (k == n || (uint64_t)out[k] * out[k] > c) out[n++] = c;
    }
    return n;
}

/* Prepare to sieve from `next` (odd, >= 3) with `count` primes found below it. */
static inline void primes_init(primes_sieve *s, uint64_t limit, uint64_t next, uint64_t count,
                               uint32_t segment, uint32_t *primes, uint32_t *offsets, uint8_t *buffer) {
    s->limit = limit;
    s->next = next;
    s->count = count;
    s->segment = segment;
    s->primes = primes;
    s->offsets = offsets;
    s->buffer = buffer;
    s->nprimes = primes__base(primes_isqrt(limit), primes);
    /* Primes whose square is below `next` are mid-way: find their first odd multiple >= next. */
    for (s->nactive = 0; s->nactive < s->nprimes; s->nactive++) {
        uint64_t p = primes[s->nactive];
        if (p * p >= next) break;
        uint64_t m = (next + p - 1) / p * p;
        if (!(m & 1)) m += p;
        offsets[s->nactive] = (uint32_t)((m - next) / 2);
    }
}

static inline int primes_done(const primes_sieve *s) { return s->next > s->limit; }

/* Count zero bytes in a 0/1 byte array, 32 at a time: four 8-byte words summed per
 * trip (fewer back-edges, each of which pays for fuel and epoch checks in wasm). */
static inline uint32_t primes__count_zeros(const uint8_t *a, uint32_t n) {
    uint32_t ones = 0, i = 0;
    while (i + 32 <= n) {
        uint64_t acc = 0; /* eight byte lanes, each below 256: at most 63 trips of 4 ones */
        for (uint32_t k = 0; k < 63 && i + 32 <= n; k++, i += 32) {
            uint64_t w0, w1, w2, w3;
            __builtin_memcpy(&w0, a + i, 8);
            __builtin_memcpy(&w1, a + i + 8, 8);
            __builtin_memcpy(&w2, a + i + 16, 8);
            __builtin_memcpy(&w3, a + i + 24, 8);
            acc += (w0 + w1) + (w2 + w3);
        }
        acc = (acc & 0x00ff00ff00ff00ffull) + ((acc >> 8) & 0x00ff00ff00ff00ffull);
        ones += (uint32_t)((acc * 0x0001000100010001ull) >> 48);
    }
    for (; i < n; i++) ones += a[i];
    return n - ones;
}

/* Sieve one segment starting at s->next; returns the primes found in it. */
static inline uint32_t primes_step(primes_sieve *s) {
    uint64_t low = s->next, left = (s->limit - low) / 2 + 1;
    uint32_t n = left < s->segment ? (uint32_t)left : s->segment;
    uint64_t high = low + 2 * (uint64_t)(n - 1);
    uint8_t *seg = s->buffer;
    __builtin_memset(seg, 0, n);
    /* Primes whose square falls in this segment start marking there. */
    while (s->nactive < s->nprimes && (uint64_t)s->primes[s->nactive] * s->primes[s->nactive] <= high) {
        uint64_t p = s->primes[s->nactive];
        s->offsets[s->nactive++] = (uint32_t)((p * p - low) / 2);
    }
    for (uint32_t k = 0; k < s->nactive; k++) {
        uint32_t p = s->primes[k], j = s->offsets[k];
        /* Eight marks per iteration: fewer loop back-edges, which matters in wasm
         * where each one also pays for fuel and epoch checks. j + 7p < n <= 2^30
         * and p < 2^20, so no sum below overflows 32 bits. */
        for (uint32_t p8 = 8 * p; j + 7 * p < n; j += p8) {
            seg[j] = 1;
            seg[j + p] = 1;
            seg[j + 2 * p] = 1;
            seg[j + 3 * p] = 1;
            seg[j + 4 * p] = 1;
            seg[j + 5 * p] = 1;
            seg[j + 6 * p] = 1;
            seg[j + 7 * p] = 1;
        }
        for (; j < n; j += p) seg[j] = 1;
        s->offsets[k] = j - n;
    }
    uint32_t found = primes__count_zeros(seg, n);
    s->count += found;
    s->next = high + 2;
    return found;
}

#endif /* PRIMES_CORE_H */
