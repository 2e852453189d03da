/*
 * nqueens: counts the solutions of the N-Queens puzzle by backtracking.
 *
 * Job "nqueens" takes {"n": 12} and completes with {"n": 12, "solutions": 14200}.
 * Its whole state is the recursion: the board lives in stack frames, the
 * partial count in locals. It never checkpoints. It calls wasmjob_interrupted()
 * every few thousand placements; the manifest puts the extension in snapshot
 * mode, so the host answers that call by snapshotting the whole guest (memory,
 * globals, call stack) and a later run continues from the same placement.
 * Run in checkpoint mode it can only start over: on an interrupt it saves its
 * parameters and the next run restarts from the first row.
 */
#include "wasmjob.h"

#define MAX_N 20
#define CHECK_EVERY 4096

typedef struct search {
    wasmjob_job *job;
    int32_t n;
    uint32_t all;        /* n low bits set: every column */
    uint32_t since_check;
    int32_t interrupted; /* checkpoint mode only: the host asked us to stop */
} search;

/* Solutions below a board whose queens occupy `cols` and attack the diagonals
 * `left` and `right` on row `row`. `placed` is this frame's record of the
 * column chosen on each row so far (kept on the stack only to make the state
 * live in frames, as a real solver's would). */
static int64_t solve(search *s, int32_t row, uint32_t cols, uint32_t left, uint32_t right,
                     const uint8_t *placed) {
    if (row == s->n) return 1;
    uint8_t here[MAX_N];
    memcpy(here, placed, (size_t)row);
    int64_t count = 0;
    uint32_t free_cols = s->all & ~(cols | left | right);
    while (free_cols && !s->interrupted) {
        uint32_t bit = free_cols & (0u - free_cols);
        free_cols ^= bit;
        here[row] = (uint8_t)__builtin_ctz(bit);
        if (++s->since_check == CHECK_EVERY) {
            s->since_check = 0;
            if (wasmjob_interrupted(s->job)) {
                s->interrupted = 1;
                break;
            }
        }
        count += solve(s, row + 1, cols | bit, (left | bit) << 1, (right | bit) >> 1, here);
    }
    return count;
}

static int32_t run_nqueens(wasmjob_job *job) {
    int64_t n = 8;
    if (wasmjob_json_get_int(job->state, job->state_len, "n", &n) < 0 || n < 1 || n > MAX_N)
        return wasmjob_fail(job, "state must be {\"n\": 1..%d}", MAX_N);
    wasmjob_log_info("nqueens: counting the solutions for n=%lld", n);
    search s = {job, (int32_t)n, (n == 32 ? 0u : (1u << n)) - 1u, 0, 0};
    uint8_t none[1] = {0};
    int64_t solutions = solve(&s, 0, 0, 0, 0, none);
    if (s.interrupted) {
        wasmjob_log_info("nqueens: interrupted in checkpoint mode: the next run starts over");
        return wasmjob_pause(job, job->state, job->state_len);
    }
    char out[96];
    uint32_t len = wasmjob_format(out, sizeof out, "{\"n\":%lld,\"solutions\":%lld}", n, solutions);
    wasmjob_progress(job, 1.0f, "%lld solutions", solutions);
    return wasmjob_complete(job, out, len);
}

WASMJOB_JOB(nqueens, run_nqueens)
WASMJOB_EXTENSION(WASMJOB_RESUMABLE(nqueens))
