/*
 * counter: Spacedrive's test extension, redone with the wasmjob C SDK.
 *
 * Job "counter" (resumable) counts from `current` to `target`, recording
 * "item_<n>" for each step. State and parameters share one JSON shape:
 *   {"current": 0, "target": 100, "processed": []}
 * and any missing field takes that default, so {"target": 25} is a first run.
 * It checkpoints every 10 items and whenever it is interrupted; the final state
 * is the result. Resuming from any checkpoint gives the uninterrupted result,
 * because the state holds everything the loop reads.
 */
#include "wasmjob.h"

typedef struct counter_state {
    int64_t current;
    int64_t target;
    wasmjob_strings processed;
} counter_state;

static int load_state(const wasmjob_job *job, counter_state *s) {
    s->current = 0;
    s->target = 100;
    wasmjob_strings_init(&s->processed);
    if (wasmjob_json_get_int(job->state, job->state_len, "current", &s->current) < 0
        || wasmjob_json_get_int(job->state, job->state_len, "target", &s->target) < 0
        || wasmjob_json_get_strings(job->state, job->state_len, "processed", &s->processed) < 0)
        return -1;
    return s->current < 0 || s->target < 0 ? -1 : 0;
}

/* Encode the state and hand it to `save` (wasmjob_checkpoint, _complete or _pause). */
static int32_t save_state(wasmjob_job *job, const counter_state *s,
                          int32_t (*save)(wasmjob_job *, const void *, uint32_t)) {
    wasmjob_json w;
    wasmjob_json_init(&w);
    wasmjob_json_object_begin(&w);
    wasmjob_json_key(&w, "current");
    wasmjob_json_int(&w, s->current);
    wasmjob_json_key(&w, "target");
    wasmjob_json_int(&w, s->target);
    wasmjob_json_key(&w, "processed");
    wasmjob_json_strings(&w, &s->processed);
    wasmjob_json_object_end(&w);
    int32_t rc = w.buf.failed ? wasmjob_fail(job, "out of memory encoding the state")
                              : save(job, w.buf.data, w.buf.len);
    wasmjob_json_free(&w);
    return rc;
}

static int32_t run_counter(wasmjob_job *job) {
    counter_state s;
    if (load_state(job, &s))
        return wasmjob_fail(job, "state must be {\"current\": int >= 0, \"target\": int >= 0, "
                                 "\"processed\": [string, ...]}");
    wasmjob_log_info("counter: starting at %lld of %lld", s.current, s.target);

    while (s.current < s.target) {
        if (wasmjob_interrupted(job)) {
            wasmjob_log_info("counter: interrupted at %lld of %lld", s.current, s.target);
            return save_state(job, &s, wasmjob_pause);
        }
        s.current += 1;
        char item[32];
        uint32_t len = wasmjob_format(item, sizeof item, "item_%lld", s.current);
        if (wasmjob_strings_push(&s.processed, item, len))
            return wasmjob_fail(job, "out of memory at item %lld", s.current);
        wasmjob_progress(job, (float)s.current / (float)s.target, "Counted %lld/%lld", s.current, s.target);
        wasmjob_add_items(job, 1);
        if (s.current % 10 == 0 && save_state(job, &s, wasmjob_checkpoint) != 0)
            wasmjob_log_warn("counter: checkpoint at %lld was not saved", s.current);
    }

    wasmjob_log_info("counter: completed, %u items processed", s.processed.count);
    return save_state(job, &s, wasmjob_complete);
}

WASMJOB_JOB(counter, run_counter)
WASMJOB_EXTENSION(WASMJOB_RESUMABLE(counter))
