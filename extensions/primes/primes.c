/*
 * primes: a CPU-heavy, resumable job for benchmarks.
 *
 * Job "count_primes" counts the primes <= limit with the segmented sieve in
 * primes_core.h. Parameters: {"limit": N} with N <= 10^12, and optionally
 *   "segment":       bytes (= odd numbers) per sieve segment, default 64 KiB;
 *   "poll_segments": segments sieved between two visits to the host, default 16.
 * State and result: {"limit": N, "count": C, "next": X, "segment": S,
 * "poll_segments": P}: C primes are below the odd number X. The result has
 * X > N and C = pi(N).
 *
 * A host call from wasm into a Python host costs microseconds, so the job
 * visits the host once per poll (16 segments, ~2-3 ms of sieving): it checks
 * for interruption, reports progress and counts items; it checkpoints every
 * CHECKPOINT_POLLS polls (~0.1 s: well under 1% of the time even for a slow
 * store) and whenever it is interrupted. A resume continues from (next, count).
 */
#include "wasmjob.h"
#include "primes_core.h"

#define DEFAULT_SEGMENT (64 * 1024)
#define MIN_SEGMENT 1024
#define MAX_SEGMENT (16 * 1024 * 1024)
#define DEFAULT_POLL_SEGMENTS 16
#define MAX_POLL_SEGMENTS 65536
#define CHECKPOINT_POLLS 32

typedef struct primes_params {
    int64_t limit, next, count, segment, poll_segments;
} primes_params;

static int32_t save_state(wasmjob_job *job, const primes_sieve *s, int64_t poll_segments,
                          int32_t (*save)(wasmjob_job *, const void *, uint32_t)) {
    wasmjob_json w;
    wasmjob_json_init(&w);
    wasmjob_json_object_begin(&w);
    wasmjob_json_key(&w, "limit");
    wasmjob_json_int(&w, (int64_t)s->limit);
    wasmjob_json_key(&w, "count");
    wasmjob_json_int(&w, (int64_t)s->count);
    wasmjob_json_key(&w, "next");
    wasmjob_json_int(&w, (int64_t)s->next);
    wasmjob_json_key(&w, "segment");
    wasmjob_json_int(&w, s->segment);
    wasmjob_json_key(&w, "poll_segments");
    wasmjob_json_int(&w, poll_segments);
    wasmjob_json_object_end(&w);
    int32_t rc = w.buf.failed ? wasmjob_fail(job, "out of memory encoding the state")
                              : save(job, w.buf.data, w.buf.len);
    wasmjob_json_free(&w);
    return rc;
}

/* Read and check the state; returns NULL when it is valid, else what is wrong. */
static const char *read_state(const wasmjob_job *job, primes_params *p) {
    const uint8_t *st = job->state;
    uint32_t len = job->state_len;
    p->next = 3;
    p->count = -1;
    p->segment = DEFAULT_SEGMENT;
    p->poll_segments = DEFAULT_POLL_SEGMENTS;
    if (wasmjob_json_get_int(st, len, "limit", &p->limit) != 1) return "\"limit\" (an integer) is required";
    if (wasmjob_json_get_int(st, len, "next", &p->next) < 0 || wasmjob_json_get_int(st, len, "count", &p->count) < 0
        || wasmjob_json_get_int(st, len, "segment", &p->segment) < 0
        || wasmjob_json_get_int(st, len, "poll_segments", &p->poll_segments) < 0)
        return "\"next\", \"count\", \"segment\" and \"poll_segments\" must be integers";
    if (p->limit < 0 || (uint64_t)p->limit > PRIMES_MAX_LIMIT) return "\"limit\" must be in 0..10^12";
    if (p->segment < MIN_SEGMENT || p->segment > MAX_SEGMENT) return "\"segment\" must be in 1024..16777216";
    if (p->poll_segments < 1 || p->poll_segments > MAX_POLL_SEGMENTS) return "\"poll_segments\" must be in 1..65536";
    if (p->next < 3 || !(p->next & 1) || (p->next > p->limit + 2 && p->next != 3))
        return "\"next\" must be odd, >= 3 and <= limit + 2";
    if (p->count < 0) {
        if (p->next != 3) return "\"count\" is required with \"next\"";
        p->count = p->limit >= 2; /* the prime 2, which the odd-only sieve never sees */
    }
    return p->count > p->next ? "\"count\" cannot exceed \"next\"" : 0;
}

static int32_t run_count_primes(wasmjob_job *job) {
    primes_params p;
    const char *problem = read_state(job, &p);
    if (problem) return wasmjob_fail(job, "count_primes: bad state: %s", problem);

    uint32_t cap = primes_base_capacity((uint64_t)p.limit);
    uint32_t *primes = wasm_alloc((int32_t)(cap * sizeof *primes));
    uint32_t *offsets = wasm_alloc((int32_t)(cap * sizeof *offsets));
    uint8_t *buffer = wasm_alloc((int32_t)p.segment);
    if (!primes || !offsets || !buffer) return wasmjob_fail(job, "count_primes: out of memory");
    primes_sieve s;
    primes_init(&s, (uint64_t)p.limit, (uint64_t)p.next, (uint64_t)p.count, (uint32_t)p.segment, primes, offsets,
                buffer);
    wasmjob_log_info("count_primes: limit %lld, sieving from %lld (%lld primes below)", p.limit, p.next, p.count);

    for (uint32_t polls = 1; !primes_done(&s); polls++) {
        if (wasmjob_interrupted(job)) {
            wasmjob_log_info("count_primes: interrupted at %llu", s.next);
            return save_state(job, &s, p.poll_segments, wasmjob_pause);
        }
        uint64_t start = s.next;
        for (int64_t k = 0; k < p.poll_segments && !primes_done(&s); k++) primes_step(&s);
        uint64_t sieved = (primes_done(&s) ? s.limit + 1 : s.next) - 3;
        wasmjob_progress(job, p.limit > 2 ? (float)sieved / (float)(p.limit - 2) : 1.0f,
                         "sieved to %llu: %llu primes", s.next - 2, s.count);
        wasmjob_add_items(job, (int64_t)(s.next - start));
        if (polls % CHECKPOINT_POLLS == 0 && !primes_done(&s)
            && save_state(job, &s, p.poll_segments, wasmjob_checkpoint))
            wasmjob_log_warn("count_primes: checkpoint at %llu was not saved", s.next);
    }
    wasmjob_log_info("count_primes: %llu primes <= %lld", s.count, p.limit);
    return save_state(job, &s, p.poll_segments, wasmjob_complete);
}

WASMJOB_JOB(count_primes, run_count_primes)
WASMJOB_EXTENSION(WASMJOB_RESUMABLE(count_primes))
