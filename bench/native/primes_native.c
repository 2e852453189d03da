/*
 * Native baseline for the primes extension: the same segmented sieve
 * (extensions/primes/primes_core.h) compiled for the host CPU.
 *
 *   gcc -O2 -I extensions/primes -o primes_native bench/native/primes_native.c
 *   ./primes_native 1000000000 [segment_bytes]    # prints 50847534
 */
#include <stdio.h>
#include <stdlib.h>

#include "primes_core.h"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s LIMIT [SEGMENT_BYTES]\n", argv[0]);
        return 2;
    }
    unsigned long long limit = strtoull(argv[1], NULL, 10);
    unsigned long segment = argc == 3 ? strtoul(argv[2], NULL, 10) : 64 * 1024;
    if (limit > PRIMES_MAX_LIMIT || segment == 0 || segment > (1ul << 30)) {
        fprintf(stderr, "limit must be <= %llu and segment in 1..2^30\n", PRIMES_MAX_LIMIT);
        return 2;
    }
    uint32_t cap = primes_base_capacity(limit);
    uint32_t *primes = malloc(cap * sizeof *primes), *offsets = malloc(cap * sizeof *offsets);
    uint8_t *buffer = malloc(segment);
    if (!primes || !offsets || !buffer) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    primes_sieve s;
    primes_init(&s, limit, 3, limit >= 2, (uint32_t)segment, primes, offsets, buffer);
    while (!primes_done(&s)) primes_step(&s);
    printf("%llu\n", (unsigned long long)s.count);
    free(primes);
    free(offsets);
    free(buffer);
    return 0;
}
