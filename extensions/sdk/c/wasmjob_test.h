/*
 * wasmjob_test.h: a mock host for native tests of C jobs (run by `wasmjob test DIR`).
 *
 * A test file includes the extension's source in native mode, then this header:
 *
 *   #define WASMJOB_NATIVE
 *   #include "myext.c"
 *   #include "wasmjob_test.h"
 *
 *   int main(void) {
 *       wasmjob_test_interrupt_at(3);                       // the 3rd check says "stop"
 *       WASMJOB_CHECK(wasmjob_test_run(execute_count, "{\"target\": 100}") == WASMJOB_INTERRUPTED);
 *       WASMJOB_CHECK(wasmjob_test_resume(execute_count) == WASMJOB_COMPLETED);
 *       int64_t sum = 0;
 *       wasmjob_json_get_int(wasmjob_test.checkpoint.data, wasmjob_test.checkpoint.len, "sum", &sum);
 *       WASMJOB_CHECK(sum == 5050);
 *       return wasmjob_test_done();
 *   }
 *
 * The mock can interrupt at the Nth wasmjob_interrupted() call, refuse checkpoints,
 * serve the key-value operations, the config (wasmjob_test.config) and others
 * (through wasmjob_test.on_call), and
 * records the last checkpoint, the last error line and the counters.
 */
#ifndef WASMJOB_TEST_H
#define WASMJOB_TEST_H

#include <stdio.h>

#define WASMJOB_TEST_KV_MAX 64

typedef const char *(*wasmjob_test_handler)(const char *method, const uint8_t *payload, uint32_t len);

struct wasmjob_test_host {
    int64_t interrupt_at;     /* 0 = never; else the Nth check (1-based) and later ones stop */
    int64_t checks;
    int reject_checkpoints;   /* non-zero: every checkpoint is refused */
    int64_t checkpoints, refused, items, bytes, warnings;
    wasmjob_buf checkpoint;   /* the last accepted state */
    char last_error[1024];
    char last_progress[1024];
    float progress;
    const char *kv_keys[WASMJOB_TEST_KV_MAX];
    char *kv_values[WASMJOB_TEST_KV_MAX];
    int kv_len;
    const char *config;         /* what query:config.get.v1 answers (JSON object), or NULL */
    wasmjob_test_handler on_call; /* other methods: return JSON, or NULL to refuse */
    int failures;
};
static struct wasmjob_test_host wasmjob_test;

#define WASMJOB_CHECK(cond)                                                          \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            wasmjob_test.failures++;                                                 \
        }                                                                            \
    } while (0)

static void wasmjob_test_interrupt_at(int64_t n) { wasmjob_test.interrupt_at = n < 1 ? 1 : n; }

void wasmjob_host_log(int32_t level, const char *msg, uint32_t len) {
    fprintf(stderr, "[level %d] %.*s\n", level, (int)len, msg);
    if (level == WASMJOB_LOG_ERROR) snprintf(wasmjob_test.last_error, sizeof wasmjob_test.last_error, "%.*s", (int)len, msg);
}
int32_t wasmjob_host_register_job(const char *n, uint32_t nl, const char *e, uint32_t el, int32_t r) {
    (void)n, (void)nl, (void)e, (void)el, (void)r;
    return 0;
}
void wasmjob_host_progress(const uint8_t *job_id, float progress, const char *msg, uint32_t len) {
    (void)job_id;
    wasmjob_test.progress = progress;
    snprintf(wasmjob_test.last_progress, sizeof wasmjob_test.last_progress, "%.*s", (int)len, msg);
}
int32_t wasmjob_host_checkpoint(const uint8_t *job_id, const void *state, uint32_t len) {
    (void)job_id;
    if (wasmjob_test.reject_checkpoints) {
        wasmjob_test.refused++;
        return 1;
    }
    wasmjob_test.checkpoint.len = 0;
    wasmjob_buf_append(&wasmjob_test.checkpoint, state, len);
    wasmjob_test.checkpoints++;
    return 0;
}
int32_t wasmjob_host_check_interrupt(const uint8_t *job_id) {
    (void)job_id;
    wasmjob_test.checks++;
    return wasmjob_test.interrupt_at && wasmjob_test.checks >= wasmjob_test.interrupt_at;
}
void wasmjob_host_add_warning(const uint8_t *job_id, const char *msg, uint32_t len) {
    (void)job_id;
    fprintf(stderr, "[warning] %.*s\n", (int)len, msg);
    wasmjob_test.warnings++;
}
void wasmjob_host_increment_bytes(const uint8_t *job_id, int64_t n) { (void)job_id; wasmjob_test.bytes += n; }
void wasmjob_host_increment_items(const uint8_t *job_id, int64_t n) { (void)job_id; wasmjob_test.items += n; }

static uint8_t *wasmjob_test__answer(const char *json) {
    uint32_t n = (uint32_t)strlen(json);
    uint8_t *r = (uint8_t *)wasm_alloc((int32_t)(n + 4));
    r[0] = (uint8_t)n, r[1] = (uint8_t)(n >> 8), r[2] = (uint8_t)(n >> 16), r[3] = (uint8_t)(n >> 24);
    memcpy(r + 4, json, n);
    return r;
}

static int wasmjob_test__kv_find(const char *key) {
    for (int i = 0; i < wasmjob_test.kv_len; i++)
        if (!strcmp(wasmjob_test.kv_keys[i], key)) return i;
    return -1;
}

uint8_t *wasmjob_host_call(const char *method, uint32_t method_len, const uint8_t *library_id,
                           const void *payload, uint32_t payload_len) {
    char name[256];
    static char answer[70000];
    wasmjob_buf key, value;
    (void)library_id;
    snprintf(name, sizeof name, "%.*s", (int)method_len, method);
    wasmjob_buf_init(&key);
    wasmjob_buf_init(&value);
    const uint8_t *p = (const uint8_t *)payload;
    uint8_t *result = 0;
    if (!strcmp(name, "query:kv.get.v1") && wasmjob_json_get_string(p, payload_len, "key", &key) == 1) {
        wasmjob_buf_byte(&key, 0);
        int i = wasmjob_test__kv_find((const char *)key.data);
        wasmjob_json w;
        wasmjob_json_init(&w);
        wasmjob_json_object_begin(&w);
        wasmjob_json_key(&w, "value");
        if (i < 0) wasmjob_buf_append(&w.buf, "null", 4); else wasmjob_json_string(&w, wasmjob_test.kv_values[i]);
        wasmjob_json_object_end(&w);
        snprintf(answer, sizeof answer, "%.*s", (int)w.buf.len, (const char *)w.buf.data);
        wasmjob_json_free(&w);
        result = wasmjob_test__answer(answer);
    } else if (!strcmp(name, "action:kv.set.v1") && wasmjob_json_get_string(p, payload_len, "key", &key) == 1
               && wasmjob_json_get_string(p, payload_len, "value", &value) == 1) {
        wasmjob_buf_byte(&key, 0);
        wasmjob_buf_byte(&value, 0);
        int i = wasmjob_test__kv_find((const char *)key.data);
        if (i < 0 && wasmjob_test.kv_len < WASMJOB_TEST_KV_MAX) {
            i = wasmjob_test.kv_len++;
            wasmjob_test.kv_keys[i] = strdup((const char *)key.data);
            wasmjob_test.kv_values[i] = 0;
        }
        if (i >= 0) {
            free(wasmjob_test.kv_values[i]);
            wasmjob_test.kv_values[i] = strdup((const char *)value.data);
            result = wasmjob_test__answer("{\"ok\":true}");
        }
    } else if (!strcmp(name, "query:config.get.v1")) {
        snprintf(answer, sizeof answer, "{\"config\": %s}", wasmjob_test.config ? wasmjob_test.config : "null");
        result = wasmjob_test__answer(answer);
    } else if (wasmjob_test.on_call) {
        const char *json = wasmjob_test.on_call(name, p, payload_len);
        if (json) result = wasmjob_test__answer(json);
    }
    wasmjob_buf_free(&key);
    wasmjob_buf_free(&value);
    if (!result) {
        char line[512];
        int n = snprintf(line, sizeof line, "host call %s failed (the mock has no answer)", name);
        wasmjob_host_log(WASMJOB_LOG_ERROR, line, (uint32_t)n);
    }
    return result;
}

typedef int32_t (*wasmjob_test_export)(const uint8_t *, uint32_t, const uint8_t *, uint32_t);

static const char wasmjob_test__ctx[] =
    "{\"job_id\": \"00000000-0000-4000-8000-000000000001\", \"library_id\": \"00000000-0000-0000-0000-000000000000\"}";

/* Run a job's export with these parameters (JSON text, or NULL for none); returns its code. */
static int32_t wasmjob_test_run(wasmjob_test_export fn, const char *params) {
    wasmjob_test.checks = 0;
    wasmjob_test.last_error[0] = 0;
    int32_t rc = fn((const uint8_t *)wasmjob_test__ctx, sizeof wasmjob_test__ctx - 1, (const uint8_t *)params,
                    params ? (uint32_t)strlen(params) : 0);
    wasmjob_test.interrupt_at = 0;
    return rc;
}

/* Run it again from the last accepted checkpoint, as the host does after a pause. */
static int32_t wasmjob_test_resume(wasmjob_test_export fn) {
    wasmjob_buf state;
    wasmjob_buf_init(&state);
    wasmjob_buf_append(&state, wasmjob_test.checkpoint.data, wasmjob_test.checkpoint.len);
    wasmjob_buf_byte(&state, 0);
    int32_t rc = wasmjob_test_run(fn, (const char *)state.data);
    wasmjob_buf_free(&state);
    return rc;
}

/* main's return value: 0 when every WASMJOB_CHECK held. */
static int wasmjob_test_done(void) {
    if (wasmjob_test.failures) fprintf(stderr, "%d check(s) failed\n", wasmjob_test.failures);
    else fprintf(stderr, "all checks passed\n");
    return wasmjob_test.failures ? 1 : 0;
}

#endif /* WASMJOB_TEST_H */
