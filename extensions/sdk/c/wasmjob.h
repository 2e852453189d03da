/*
 * wasmjob.h: the C SDK for wasmjob extension jobs (Spacedrive extension ABI v1).
 *
 * One header, freestanding (no libc): build with
 *   zig cc --target=wasm32-freestanding -O2 -nostdlib -Wl,--no-entry -I extensions/sdk/c
 * plus the flags in worker/builder.py, which `python extensions/build.py` applies
 * for you. Include it from exactly one .c file:
 * it defines the allocator the host calls (wasm_alloc/wasm_free), memcpy and
 * friends, and the exported entry points the macros below generate.
 *
 * An extension in full:
 *
 *   #include "wasmjob.h"
 *
 *   static int32_t run_hello(wasmjob_job *job) {
 *       int64_t n = 10;                               // default when absent
 *       if (wasmjob_json_get_int(job->state, job->state_len, "n", &n) < 0)
 *           return wasmjob_fail(job, "state is not {\"n\": <int>}");
 *       wasmjob_log_info("hello: n=%lld", n);
 *       if (wasmjob_interrupted(job))                 // pause / cancel / time slice over
 *           return wasmjob_pause(job, job->state, job->state_len);
 *       wasmjob_progress(job, 1.0f, "done");
 *       return wasmjob_complete(job, "{\"ok\":true}", 11);  // result = last checkpoint
 *   }
 *
 *   WASMJOB_JOB(hello, run_hello)                  // exports execute_hello
 *   WASMJOB_EXTENSION(WASMJOB_RESUMABLE(hello))    // exports plugin_init, plugin_cleanup
 *
 * A job function returns WASMJOB_COMPLETED (0) after checkpointing its final
 * state (wasmjob_complete), WASMJOB_INTERRUPTED (1) after checkpointing when
 * wasmjob_interrupted() said so (wasmjob_pause), or WASMJOB_FAILED (2) after
 * logging why (wasmjob_fail). job->state holds the parameters on a first run and
 * the last checkpoint on a resume; state_len 0 means "start from the defaults"
 * (the JSON readers report every field as absent then).
 *
 * Public names: WASMJOB_JOB, WASMJOB_EXTENSION, WASMJOB_RESUMABLE, WASMJOB_ONE_SHOT;
 * wasmjob_log_{debug,info,warn,error}, wasmjob_progress, wasmjob_checkpoint,
 * wasmjob_interrupted, wasmjob_warning, wasmjob_add_items, wasmjob_add_bytes,
 * wasmjob_complete, wasmjob_pause, wasmjob_fail, wasmjob_call, wasmjob_call_free;
 * wasmjob_buf_*, wasmjob_strings_*, wasmjob_json_* (writer and reader), wasmjob_format.
 */
#ifndef WASMJOB_H
#define WASMJOB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define WASMJOB_COMPLETED 0
#define WASMJOB_INTERRUPTED 1
#define WASMJOB_FAILED 2

#define WASMJOB_LOG_DEBUG 0
#define WASMJOB_LOG_INFO 1
#define WASMJOB_LOG_WARN 2
#define WASMJOB_LOG_ERROR 3

#ifdef WASMJOB_NATIVE
/* Native tests (wasmjob_test.h): plain functions, libc, the mock host's imports. */
#include <stdlib.h>
#include <string.h>
#define WASMJOB_EXPORT(name)
#define WASMJOB__IMPORT(name)
#else
#define WASMJOB_EXPORT(name) __attribute__((export_name(name)))
#define WASMJOB__IMPORT(name) __attribute__((import_module("spacedrive"), import_name(name)))
#endif
#define WASMJOB__PRINTF(fmt_index) __attribute__((format(printf, fmt_index, fmt_index + 1)))
/* Helpers are static inline: each extension is one translation unit, unused ones cost nothing. */
#define WASMJOB_API static inline

/* ---- Host imports (module "spacedrive"); only the ones a module uses are imported. ---- */

WASMJOB__IMPORT("spacedrive_log") void wasmjob_host_log(int32_t level, const char *msg, uint32_t len);
WASMJOB__IMPORT("register_job") int32_t wasmjob_host_register_job(
    const char *name, uint32_t name_len, const char *export_name, uint32_t export_len, int32_t resumable);
WASMJOB__IMPORT("job_report_progress") void wasmjob_host_progress(
    const uint8_t *job_id, float progress, const char *msg, uint32_t len);
WASMJOB__IMPORT("job_checkpoint") int32_t wasmjob_host_checkpoint(
    const uint8_t *job_id, const void *state, uint32_t len);
WASMJOB__IMPORT("job_check_interrupt") int32_t wasmjob_host_check_interrupt(const uint8_t *job_id);
WASMJOB__IMPORT("job_add_warning") void wasmjob_host_add_warning(
    const uint8_t *job_id, const char *msg, uint32_t len);
WASMJOB__IMPORT("job_increment_bytes") void wasmjob_host_increment_bytes(const uint8_t *job_id, int64_t n);
WASMJOB__IMPORT("job_increment_items") void wasmjob_host_increment_items(const uint8_t *job_id, int64_t n);
WASMJOB__IMPORT("spacedrive_call") uint8_t *wasmjob_host_call(const char *method, uint32_t method_len,
    const uint8_t *library_id, const void *payload, uint32_t payload_len);

#ifndef WASMJOB_NATIVE
/* ---- memcpy and friends: the compiler may emit calls to these. ---- */

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    if (d < s) return memcpy(dst, src, n);
    while (n--) d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    while (n--) *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}
#endif

WASMJOB_API uint32_t wasmjob_strlen(const char *s) {
    uint32_t n = 0;
    while (s[n]) n++;
    return n;
}

/* ---- Allocator: bump allocation plus one free list per power-of-two size class. ----
 * Blocks are 16 << class bytes and 16-byte aligned; wasm_free needs the size given
 * to wasm_alloc (the ABI passes it). Memory grows by whole pages as needed and never
 * shrinks; wasm_alloc returns 0 when it cannot grow. */

#ifdef WASMJOB_NATIVE
void *wasm_alloc(int32_t size) { return size < 0 ? 0 : malloc(size ? (size_t)size : 1); }
void wasm_free(void *ptr, int32_t size) { (void)size; free(ptr); }
#else
extern unsigned char __heap_base;
#define WASMJOB__SIZE_CLASSES 28 /* 16 B .. 2 GiB */
static uintptr_t wasmjob__heap_top;
static void *wasmjob__free_lists[WASMJOB__SIZE_CLASSES];

WASMJOB_API uint32_t wasmjob__size_class(uint32_t size) {
    return size <= 16 ? 0 : (uint32_t)(32 - __builtin_clz(size - 1)) - 4;
}

WASMJOB_EXPORT("wasm_alloc") void *wasm_alloc(int32_t size) {
    if (size < 0) return 0;
    uint32_t cls = wasmjob__size_class((uint32_t)size);
    if (cls >= WASMJOB__SIZE_CLASSES) return 0;
    void *reused = wasmjob__free_lists[cls];
    if (reused) {
        wasmjob__free_lists[cls] = *(void **)reused;
        return reused;
    }
    if (!wasmjob__heap_top) wasmjob__heap_top = ((uintptr_t)&__heap_base + 15) & ~(uintptr_t)15;
    uint64_t start = wasmjob__heap_top, end = start + ((uint64_t)16 << cls);
    uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) << 16;
    if (end > ((uint64_t)1 << 32)) return 0;
    if (end > have && __builtin_wasm_memory_grow(0, (size_t)((end - have + 0xffff) >> 16)) == (size_t)-1)
        return 0;
    wasmjob__heap_top = (uintptr_t)end;
    return (void *)(uintptr_t)start;
}

WASMJOB_EXPORT("wasm_free") void wasm_free(void *ptr, int32_t size) {
    uintptr_t p = (uintptr_t)ptr;
    if (!p || size < 0 || (p & 15) || p < (uintptr_t)&__heap_base || p >= wasmjob__heap_top) return;
    uint32_t cls = wasmjob__size_class((uint32_t)size);
    *(void **)ptr = wasmjob__free_lists[cls];
    wasmjob__free_lists[cls] = ptr;
}
#endif

/* ---- Growable byte buffer. A failed allocation sets `failed`; later appends are no-ops. ---- */

typedef struct wasmjob_buf {
    uint8_t *data;
    uint32_t len, cap;
    int failed;
} wasmjob_buf;

WASMJOB_API void wasmjob_buf_init(wasmjob_buf *b) { b->data = 0; b->len = b->cap = 0; b->failed = 0; }

WASMJOB_API void wasmjob_buf_free(wasmjob_buf *b) {
    if (b->data) wasm_free(b->data, (int32_t)b->cap);
    wasmjob_buf_init(b);
}

/* Make room for `extra` more bytes; returns 0 on success. */
WASMJOB_API int wasmjob_buf_reserve(wasmjob_buf *b, uint32_t extra) {
    if (b->failed) return -1;
    if (extra <= b->cap - b->len) return 0;
    uint64_t want = (uint64_t)b->len + extra, cap = b->cap ? b->cap : 64;
    while (cap < want) cap *= 2;
    uint8_t *grown = cap < 0x80000000u ? (uint8_t *)wasm_alloc((int32_t)cap) : 0;
    if (!grown) { b->failed = 1; return -1; }
    if (b->len) memcpy(grown, b->data, b->len);
    if (b->data) wasm_free(b->data, (int32_t)b->cap);
    b->data = grown;
    b->cap = (uint32_t)cap;
    return 0;
}

WASMJOB_API void wasmjob_buf_append(wasmjob_buf *b, const void *src, uint32_t n) {
    if (wasmjob_buf_reserve(b, n) == 0) { memcpy(b->data + b->len, src, n); b->len += n; }
}

WASMJOB_API void wasmjob_buf_byte(wasmjob_buf *b, uint8_t c) {
    if (b->len < b->cap) b->data[b->len++] = c;
    else wasmjob_buf_append(b, &c, 1);
}

/* ---- printf-style formatting: %d %i %u %x %ld %lu %lld %llu %llx %s %.*s %c %%. ---- */

WASMJOB_API uint32_t wasmjob__utoa(char *out, uint64_t v, unsigned base) {
    char tmp[20];
    uint32_t n = 0, i = 0;
    do { tmp[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
    while (n) out[i++] = tmp[--n];
    return i;
}

/* Format into buf (always NUL-terminated, truncated to fit); returns the length written. */
WASMJOB_API uint32_t wasmjob_vformat(char *buf, uint32_t cap, const char *fmt, va_list ap) {
    uint32_t len = 0;
    char num[24];
#define WASMJOB__PUT(ptr, n)                                              \
    do {                                                                  \
        for (uint32_t k_ = 0; k_ < (uint32_t)(n) && len + 1 < cap; k_++)  \
            buf[len++] = (ptr)[k_];                                       \
    } while (0)
    if (!cap) return 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') { WASMJOB__PUT(f, 1); continue; }
        f++;
        int precision = -1, longs = 0;
        if (f[0] == '.' && f[1] == '*') { precision = va_arg(ap, int); f += 2; }
        while (*f == 'l') { longs++; f++; }
        if (*f == 's') {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            uint32_t n = 0;
            while ((precision < 0 || n < (uint32_t)precision) && s[n]) n++;
            WASMJOB__PUT(s, n);
        } else if (*f == 'd' || *f == 'i') {
            int64_t v = longs >= 2 ? va_arg(ap, long long) : longs ? va_arg(ap, long) : va_arg(ap, int);
            uint32_t n = 0;
            if (v < 0) num[n++] = '-';
            n += wasmjob__utoa(num + n, v < 0 ? -(uint64_t)v : (uint64_t)v, 10);
            WASMJOB__PUT(num, n);
        } else if (*f == 'u' || *f == 'x') {
            uint64_t v = longs >= 2 ? va_arg(ap, unsigned long long)
                       : longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            uint32_t n = wasmjob__utoa(num, v, *f == 'x' ? 16 : 10);
            WASMJOB__PUT(num, n);
        } else if (*f == 'c') {
            num[0] = (char)va_arg(ap, int);
            WASMJOB__PUT(num, 1);
        } else if (*f == '%') {
            WASMJOB__PUT("%", 1);
        } else {
            break; /* unsupported conversion: stop rather than misread the arguments */
        }
    }
#undef WASMJOB__PUT
    buf[len] = 0;
    return len;
}

WASMJOB_API WASMJOB__PRINTF(3) uint32_t wasmjob_format(char *buf, uint32_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    uint32_t n = wasmjob_vformat(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* ---- Logging (messages longer than 1 KiB are truncated). ---- */

#define WASMJOB__MSG_MAX 1024

WASMJOB_API WASMJOB__PRINTF(2) void wasmjob_log(int32_t level, const char *fmt, ...) {
    char msg[WASMJOB__MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    uint32_t n = wasmjob_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wasmjob_host_log(level, msg, n);
}

#define wasmjob_log_debug(...) wasmjob_log(WASMJOB_LOG_DEBUG, __VA_ARGS__)
#define wasmjob_log_info(...) wasmjob_log(WASMJOB_LOG_INFO, __VA_ARGS__)
#define wasmjob_log_warn(...) wasmjob_log(WASMJOB_LOG_WARN, __VA_ARGS__)
#define wasmjob_log_error(...) wasmjob_log(WASMJOB_LOG_ERROR, __VA_ARGS__)

/* ---- List of byte strings (for state such as ["item_1", "item_2"]). ---- */

typedef struct wasmjob_strings {
    wasmjob_buf bytes; /* the strings back to back */
    wasmjob_buf ends;  /* uint32_t end offset of each string in `bytes` */
    uint32_t count;
} wasmjob_strings;

WASMJOB_API void wasmjob_strings_init(wasmjob_strings *l) {
    wasmjob_buf_init(&l->bytes);
    wasmjob_buf_init(&l->ends);
    l->count = 0;
}

WASMJOB_API void wasmjob_strings_free(wasmjob_strings *l) {
    wasmjob_buf_free(&l->bytes);
    wasmjob_buf_free(&l->ends);
    l->count = 0;
}

/* Append a string; returns 0 on success, -1 when out of memory. */
WASMJOB_API int wasmjob_strings_push(wasmjob_strings *l, const void *s, uint32_t len) {
    wasmjob_buf_append(&l->bytes, s, len);
    uint32_t end = l->bytes.len;
    wasmjob_buf_append(&l->ends, &end, sizeof end);
    if (l->bytes.failed || l->ends.failed) return -1;
    l->count++;
    return 0;
}

/* The i-th string (not NUL-terminated) and its length. */
WASMJOB_API const char *wasmjob_strings_get(const wasmjob_strings *l, uint32_t i, uint32_t *len) {
    const uint32_t *ends = (const uint32_t *)(const void *)l->ends.data;
    uint32_t start = i ? ends[i - 1] : 0;
    *len = ends[i] - start;
    return (const char *)l->bytes.data + start;
}

/* ---- JSON writer: objects, arrays, integers, strings. Check w->buf.failed at the end. ----
 *   wasmjob_json w; wasmjob_json_init(&w);
 *   wasmjob_json_object_begin(&w);
 *   wasmjob_json_key(&w, "limit"); wasmjob_json_int(&w, 1000);
 *   wasmjob_json_object_end(&w);        // w.buf.data, w.buf.len: {"limit":1000}  */

typedef struct wasmjob_json {
    wasmjob_buf buf;
    int need_comma;
} wasmjob_json;

WASMJOB_API void wasmjob_json_init(wasmjob_json *w) { wasmjob_buf_init(&w->buf); w->need_comma = 0; }
WASMJOB_API void wasmjob_json_free(wasmjob_json *w) { wasmjob_buf_free(&w->buf); }

WASMJOB_API void wasmjob__json_value_start(wasmjob_json *w) {
    if (w->need_comma) wasmjob_buf_byte(&w->buf, ',');
    w->need_comma = 1;
}

WASMJOB_API void wasmjob_json_object_begin(wasmjob_json *w) { wasmjob__json_value_start(w); wasmjob_buf_byte(&w->buf, '{'); w->need_comma = 0; }
WASMJOB_API void wasmjob_json_object_end(wasmjob_json *w) { wasmjob_buf_byte(&w->buf, '}'); w->need_comma = 1; }
WASMJOB_API void wasmjob_json_array_begin(wasmjob_json *w) { wasmjob__json_value_start(w); wasmjob_buf_byte(&w->buf, '['); w->need_comma = 0; }
WASMJOB_API void wasmjob_json_array_end(wasmjob_json *w) { wasmjob_buf_byte(&w->buf, ']'); w->need_comma = 1; }

WASMJOB_API void wasmjob_json_int(wasmjob_json *w, int64_t v) {
    char num[24];
    uint32_t n = 0;
    wasmjob__json_value_start(w);
    if (v < 0) num[n++] = '-';
    n += wasmjob__utoa(num + n, v < 0 ? -(uint64_t)v : (uint64_t)v, 10);
    wasmjob_buf_append(&w->buf, num, n);
}

WASMJOB_API void wasmjob_json_string_n(wasmjob_json *w, const char *s, uint32_t len) {
    static const char hex[] = "0123456789abcdef";
    uint32_t plain = 0; /* start of the run of bytes that need no escape */
    wasmjob__json_value_start(w);
    wasmjob_buf_byte(&w->buf, '"');
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        wasmjob_buf_append(&w->buf, s + plain, i - plain);
        plain = i + 1;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        uint32_t n = 2;
        if (c == '\n') esc[1] = 'n';
        else if (c == '\t') esc[1] = 't';
        else if (c == '\r') esc[1] = 'r';
        else if (c < 0x20) { esc[1] = 'u'; esc[2] = esc[3] = '0'; esc[4] = hex[c >> 4]; esc[5] = hex[c & 15]; n = 6; }
        wasmjob_buf_append(&w->buf, esc, n);
    }
    wasmjob_buf_append(&w->buf, s + plain, len - plain);
    wasmjob_buf_byte(&w->buf, '"');
}

WASMJOB_API void wasmjob_json_string(wasmjob_json *w, const char *s) { wasmjob_json_string_n(w, s, wasmjob_strlen(s)); }

/* Object key; the value written next belongs to it. */
WASMJOB_API void wasmjob_json_key(wasmjob_json *w, const char *key) {
    wasmjob_json_string(w, key);
    wasmjob_buf_byte(&w->buf, ':');
    w->need_comma = 0;
}

WASMJOB_API void wasmjob_json_strings(wasmjob_json *w, const wasmjob_strings *l) {
    wasmjob_json_array_begin(w);
    for (uint32_t i = 0; i < l->count; i++) {
        uint32_t len;
        const char *s = wasmjob_strings_get(l, i, &len);
        wasmjob_json_string_n(w, s, len);
    }
    wasmjob_json_array_end(w);
}

/* ---- JSON reader: fields of a top-level object, by key. ----
 * Each getter returns 1 if the field was read, 0 if it is absent or null (or the
 * document is empty), -1 if it has another type or the document is malformed.
 * Keys are compared byte for byte (no escapes in keys). */

typedef struct wasmjob__cursor {
    const uint8_t *p, *end;
} wasmjob__cursor;

WASMJOB_API void wasmjob__skip_ws(wasmjob__cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

WASMJOB_API int wasmjob__hex(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

WASMJOB_API int wasmjob__hex4(wasmjob__cursor *c, uint32_t *out) {
    if (c->end - c->p < 4) return -1;
    *out = 0;
    for (int i = 0; i < 4; i++) {
        int h = wasmjob__hex(*c->p++);
        if (h < 0) return -1;
        *out = *out << 4 | (uint32_t)h;
    }
    return 0;
}

WASMJOB_API void wasmjob__put_utf8(wasmjob_buf *out, uint32_t cp) {
    uint8_t b[4];
    uint32_t n;
    if (cp < 0x80) { b[0] = (uint8_t)cp; n = 1; }
    else if (cp < 0x800) { b[0] = (uint8_t)(0xc0 | cp >> 6); b[1] = (uint8_t)(0x80 | (cp & 0x3f)); n = 2; }
    else if (cp < 0x10000) { b[0] = (uint8_t)(0xe0 | cp >> 12); b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); b[2] = (uint8_t)(0x80 | (cp & 0x3f)); n = 3; }
    else { b[0] = (uint8_t)(0xf0 | cp >> 18); b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f)); b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); b[3] = (uint8_t)(0x80 | (cp & 0x3f)); n = 4; }
    wasmjob_buf_append(out, b, n);
}

/* Read a string at the cursor (which is on the opening quote); unescaped bytes go
 * to `out` when it is not NULL. */
WASMJOB_API int wasmjob__read_string(wasmjob__cursor *c, wasmjob_buf *out) {
    if (c->p >= c->end || *c->p != '"') return -1;
    c->p++;
    while (c->p < c->end) {
        uint8_t ch = *c->p++;
        if (ch == '"') return 0;
        if (ch != '\\') { if (out) wasmjob_buf_byte(out, ch); continue; }
        if (c->p >= c->end) return -1;
        ch = *c->p++;
        uint32_t cp;
        switch (ch) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case '"': case '\\': case '/': cp = ch; break;
        case 'u':
            if (wasmjob__hex4(c, &cp)) return -1;
            if (cp >= 0xd800 && cp < 0xdc00) { /* high surrogate: a low one should follow */
                uint32_t lo;
                wasmjob__cursor save = *c;
                if (c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' && (c->p += 2, !wasmjob__hex4(c, &lo))
                    && lo >= 0xdc00 && lo < 0xe000)
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else { *c = save; cp = 0xfffd; }
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                cp = 0xfffd;
            }
            break;
        default: return -1;
        }
        if (out) wasmjob__put_utf8(out, cp);
    }
    return -1;
}

/* Skip any value (nested containers are matched by bracket depth, not validated). */
WASMJOB_API int wasmjob__skip_value(wasmjob__cursor *c) {
    if (c->p >= c->end) return -1;
    if (*c->p == '"') return wasmjob__read_string(c, 0);
    if (*c->p == '{' || *c->p == '[') {
        uint32_t depth = 0;
        while (c->p < c->end) {
            uint8_t ch = *c->p;
            if (ch == '"') { if (wasmjob__read_string(c, 0)) return -1; continue; }
            c->p++;
            if (ch == '{' || ch == '[') depth++;
            else if ((ch == '}' || ch == ']') && --depth == 0) return 0;
        }
        return -1;
    }
    const uint8_t *start = c->p;
    while (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || (*c->p >= 'a' && *c->p <= 'z')
                             || *c->p == '-' || *c->p == '+' || *c->p == '.' || *c->p == 'E'))
        c->p++;
    return c->p > start ? 0 : -1;
}

/* Position the cursor on the value of `key`: 1 found, 0 absent/null, -1 malformed. */
WASMJOB_API int wasmjob__find(wasmjob__cursor *c, const uint8_t *json, uint32_t len, const char *key) {
    uint32_t key_len = wasmjob_strlen(key);
    c->p = json;
    c->end = json + len;
    wasmjob__skip_ws(c);
    if (c->p == c->end) return 0;
    if (*c->p++ != '{') return -1;
    wasmjob__skip_ws(c);
    if (c->p < c->end && *c->p == '}') return 0;
    while (c->p < c->end) {
        const uint8_t *name = c->p + 1;
        if (wasmjob__read_string(c, 0)) return -1;
        int match = (uint32_t)(c->p - 1 - name) == key_len && memcmp(name, key, key_len) == 0;
        wasmjob__skip_ws(c);
        if (c->p >= c->end || *c->p++ != ':') return -1;
        wasmjob__skip_ws(c);
        if (match) {
            if (c->p >= c->end) return -1;
            if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) return 0;
            return 1;
        }
        if (wasmjob__skip_value(c)) return -1;
        wasmjob__skip_ws(c);
        if (c->p < c->end && *c->p == '}') return 0;
        if (c->p >= c->end || *c->p++ != ',') return -1;
        wasmjob__skip_ws(c);
    }
    return -1;
}

/* An integer field; accepts 1000, -5, 1e9, 1000.0 (any number whose value is integral). */
WASMJOB_API int wasmjob_json_get_int(const uint8_t *json, uint32_t len, const char *key, int64_t *out) {
    wasmjob__cursor c;
    int found = wasmjob__find(&c, json, len, key);
    if (found <= 0) return found;
    int negative = c.p < c.end && *c.p == '-', digits = 0;
    int32_t exp10 = 0;
    uint64_t mant = 0;
    const uint64_t max = (uint64_t)INT64_MAX + (uint64_t)negative;
    if (negative) c.p++;
    for (int fraction = 0; c.p < c.end; c.p++) {
        uint8_t ch = *c.p;
        if (ch == '.' && !fraction) { fraction = 1; continue; }
        if (ch < '0' || ch > '9') break;
        digits++;
        if (mant > (max - (ch - '0')) / 10) { if (fraction && ch == '0') continue; return -1; }
        mant = mant * 10 + (ch - '0');
        exp10 -= fraction;
    }
    if (!digits) return -1;
    if (c.p < c.end && (*c.p == 'e' || *c.p == 'E')) {
        int eneg = 0, e = 0;
        c.p++;
        if (c.p < c.end && (*c.p == '+' || *c.p == '-')) eneg = *c.p++ == '-';
        if (c.p >= c.end || *c.p < '0' || *c.p > '9') return -1;
        while (c.p < c.end && *c.p >= '0' && *c.p <= '9') { if (e < 10000) e = e * 10 + (*c.p - '0'); c.p++; }
        exp10 += eneg ? -e : e;
    }
    for (; exp10 > 0; exp10--) { if (mant > max / 10) return -1; mant *= 10; }
    for (; exp10 < 0; exp10++) { if (mant % 10) return -1; mant /= 10; }
    *out = negative ? (int64_t)(0 - mant) : (int64_t)mant;
    return 1;
}

/* A string field, unescaped and appended to `out` (not NUL-terminated). */
WASMJOB_API int wasmjob_json_get_string(const uint8_t *json, uint32_t len, const char *key, wasmjob_buf *out) {
    wasmjob__cursor c;
    int found = wasmjob__find(&c, json, len, key);
    if (found <= 0) return found;
    return wasmjob__read_string(&c, out) || out->failed ? -1 : 1;
}

/* An array-of-strings field, each string appended to `out`. */
WASMJOB_API int wasmjob_json_get_strings(const uint8_t *json, uint32_t len, const char *key, wasmjob_strings *out) {
    wasmjob__cursor c;
    int found = wasmjob__find(&c, json, len, key);
    if (found <= 0) return found;
    if (*c.p++ != '[') return -1;
    wasmjob__skip_ws(&c);
    if (c.p < c.end && *c.p == ']') return 1;
    while (c.p < c.end) {
        if (wasmjob__read_string(&c, &out->bytes)) return -1;
        uint32_t end = out->bytes.len;
        wasmjob_buf_append(&out->ends, &end, sizeof end);
        if (out->bytes.failed || out->ends.failed) return -1;
        out->count++;
        wasmjob__skip_ws(&c);
        if (c.p < c.end && *c.p == ']') return 1;
        if (c.p >= c.end || *c.p++ != ',') return -1;
        wasmjob__skip_ws(&c);
    }
    return -1;
}

/* ---- The running job ---- */

typedef struct wasmjob_job {
    uint8_t job_id[16];      /* raw UUID bytes: what job_* imports are given */
    uint8_t library_id[16];  /* raw UUID bytes: what spacedrive_call is given */
    const uint8_t *state;    /* parameters on a first run, last checkpoint on a resume */
    uint32_t state_len;      /* 0 = start from the default state */
} wasmjob_job;

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (dashes optional) into 16 bytes. */
WASMJOB_API int wasmjob__parse_uuid(const wasmjob_buf *text, uint8_t out[16]) {
    uint32_t nibbles = 0;
    for (uint32_t i = 0; i < text->len; i++) {
        int h = wasmjob__hex(text->data[i]);
        if (text->data[i] == '-') continue;
        if (h < 0 || nibbles >= 32) return -1;
        out[nibbles / 2] = (uint8_t)(nibbles % 2 ? out[nibbles / 2] << 4 | h : h);
        nibbles++;
    }
    return nibbles == 32 ? 0 : -1;
}

WASMJOB_API int wasmjob__ctx_uuid(const uint8_t *ctx, uint32_t ctx_len, const char *key, uint8_t out[16]) {
    wasmjob_buf text;
    wasmjob_buf_init(&text);
    int ok = wasmjob_json_get_string(ctx, ctx_len, key, &text) == 1 && wasmjob__parse_uuid(&text, out) == 0;
    wasmjob_buf_free(&text);
    if (!ok) wasmjob_log_error("job context has no valid \"%s\" UUID string", key);
    return ok ? 0 : -1;
}

/* Called by the execute_<name> export WASMJOB_JOB generates. */
WASMJOB_API int wasmjob__open_job(wasmjob_job *job, const uint8_t *ctx, uint32_t ctx_len,
                             const uint8_t *state, uint32_t state_len) {
    job->state = state;
    job->state_len = state_len;
    if (wasmjob__ctx_uuid(ctx, ctx_len, "job_id", job->job_id)) return -1;
    return wasmjob__ctx_uuid(ctx, ctx_len, "library_id", job->library_id);
}

/* Report progress in [0, 1] with a printf-style message. */
WASMJOB_API WASMJOB__PRINTF(3) void wasmjob_progress(wasmjob_job *job, float fraction, const char *fmt, ...) {
    char msg[WASMJOB__MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    uint32_t n = wasmjob_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!(fraction >= 0.0f)) fraction = 0.0f; /* also catches NaN */
    if (fraction > 1.0f) fraction = 1.0f;
    wasmjob_host_progress(job->job_id, fraction, msg, n);
}

/* Record a non-fatal problem with the job. */
WASMJOB_API WASMJOB__PRINTF(2) void wasmjob_warning(wasmjob_job *job, const char *fmt, ...) {
    char msg[WASMJOB__MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    uint32_t n = wasmjob_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wasmjob_host_add_warning(job->job_id, msg, n);
}

/* Persist the state; 0 = saved, non-zero = not saved (too large, lease lost, store down). */
WASMJOB_API int32_t wasmjob_checkpoint(wasmjob_job *job, const void *state, uint32_t len) {
    return wasmjob_host_checkpoint(job->job_id, state, len);
}

/* Non-zero when the host asks the job to stop: checkpoint and return WASMJOB_INTERRUPTED. */
WASMJOB_API int32_t wasmjob_interrupted(wasmjob_job *job) { return wasmjob_host_check_interrupt(job->job_id); }

WASMJOB_API void wasmjob_add_items(wasmjob_job *job, int64_t n) { wasmjob_host_increment_items(job->job_id, n); }
WASMJOB_API void wasmjob_add_bytes(wasmjob_job *job, int64_t n) { wasmjob_host_increment_bytes(job->job_id, n); }

/* Log why and return WASMJOB_FAILED. */
WASMJOB_API WASMJOB__PRINTF(2) int32_t wasmjob_fail(wasmjob_job *job, const char *fmt, ...) {
    char msg[WASMJOB__MSG_MAX];
    va_list ap;
    (void)job;
    va_start(ap, fmt);
    uint32_t n = wasmjob_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wasmjob_host_log(WASMJOB_LOG_ERROR, msg, n);
    return WASMJOB_FAILED;
}

/* Checkpoint the final state (the job's result) and return WASMJOB_COMPLETED,
 * or WASMJOB_FAILED if the host would not save it. */
WASMJOB_API int32_t wasmjob_complete(wasmjob_job *job, const void *state, uint32_t len) {
    int32_t rc = wasmjob_checkpoint(job, state, len);
    return rc ? wasmjob_fail(job, "final state (%u bytes) was not saved (checkpoint returned %d)", len, rc)
              : WASMJOB_COMPLETED;
}

/* Checkpoint and return WASMJOB_INTERRUPTED. If the checkpoint is not saved the
 * job resumes from the previous one, which is still correct, only later. */
WASMJOB_API int32_t wasmjob_pause(wasmjob_job *job, const void *state, uint32_t len) {
    if (wasmjob_checkpoint(job, state, len)) wasmjob_log_warn("state at interruption was not saved");
    return WASMJOB_INTERRUPTED;
}

/* Call a host operation (e.g. "query:jobs.status.v1") on the job's library with a
 * JSON payload. Returns the JSON result (*result_len bytes) or NULL on failure (the
 * host logs why). Release it with wasmjob_call_free. */
WASMJOB_API const uint8_t *wasmjob_call(wasmjob_job *job, const char *method, const void *payload,
                                   uint32_t payload_len, uint32_t *result_len) {
    uint8_t *r = wasmjob_host_call(method, wasmjob_strlen(method), job->library_id, payload, payload_len);
    if (!r) { *result_len = 0; return 0; }
    *result_len = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
    return r + 4;
}

WASMJOB_API void wasmjob_call_free(const uint8_t *result, uint32_t result_len) {
    if (result) wasm_free((void *)(uintptr_t)(result - 4), (int32_t)(result_len + 4));
}

/* Log "code: why" and return WASMJOB_FAILED: the failure reason starts with a stable
 * code, e.g. wasmjob_fail_code(job, WASMJOB_E_INVALID_INPUT, "target must be > 0"). */
#define WASMJOB_E_INVALID_INPUT "invalid_input"
#define WASMJOB_E_NOT_FOUND "not_found"
#define WASMJOB_E_PERMISSION_DENIED "permission_denied"
#define WASMJOB_E_HOST_CALL "host_call"
#define WASMJOB_E_OPERATION_FAILED "operation_failed"
WASMJOB_API WASMJOB__PRINTF(3) int32_t wasmjob_fail_code(wasmjob_job *job, const char *code, const char *fmt, ...) {
    char msg[WASMJOB__MSG_MAX];
    va_list ap;
    (void)job;
    uint32_t n = wasmjob_format(msg, sizeof msg, "%s: ", code);
    va_start(ap, fmt);
    n += wasmjob_vformat(msg + n, sizeof msg - n, fmt, ap);
    va_end(ap);
    wasmjob_host_log(WASMJOB_LOG_ERROR, msg, n);
    return WASMJOB_FAILED;
}

/* Key-value store of the extension and tenant (values are strings; the Rust SDK
 * stores JSON text). wasmjob_kv_get: 1 = found (value in *out), 0 = never set,
 * -1 = the call failed (the host logged why). wasmjob_kv_set: 0 = stored. */
WASMJOB_API int wasmjob_kv_get(wasmjob_job *job, const char *key, wasmjob_buf *out) {
    wasmjob_json req;
    uint32_t len;
    wasmjob_json_init(&req);
    wasmjob_json_object_begin(&req);
    wasmjob_json_key(&req, "key");
    wasmjob_json_string(&req, key);
    wasmjob_json_object_end(&req);
    const uint8_t *r = wasmjob_call(job, "query:kv.get.v1", req.buf.data, req.buf.len, &len);
    wasmjob_json_free(&req);
    if (!r) return -1;
    int got = wasmjob_json_get_string(r, len, "value", out);
    wasmjob_call_free(r, len);
    return got == 1 ? 1 : 0;
}

WASMJOB_API int wasmjob_kv_set(wasmjob_job *job, const char *key, const char *value) {
    wasmjob_json req;
    uint32_t len;
    wasmjob_json_init(&req);
    wasmjob_json_object_begin(&req);
    wasmjob_json_key(&req, "key");
    wasmjob_json_string(&req, key);
    wasmjob_json_key(&req, "value");
    wasmjob_json_string(&req, value);
    wasmjob_json_object_end(&req);
    const uint8_t *r = wasmjob_call(job, "action:kv.set.v1", req.buf.data, req.buf.len, &len);
    wasmjob_json_free(&req);
    if (!r) return -1;
    wasmjob_call_free(r, len);
    return 0;
}

/* The raw JSON text of a field (an object, array, number, ...) appended to `out`:
 * 1 = found, 0 = absent or null, -1 = malformed. Read inside it with the getters above. */
WASMJOB_API int wasmjob_json_get_raw(const uint8_t *json, uint32_t len, const char *key, wasmjob_buf *out) {
    wasmjob__cursor c;
    int found = wasmjob__find(&c, json, len, key);
    if (found <= 0) return found;
    const uint8_t *start = c.p;
    if (wasmjob__skip_value(&c)) return -1;
    wasmjob_buf_append(out, start, (uint32_t)(c.p - start));
    return out->failed ? -1 : 1;
}

/* The extension's configuration, the manifest's "wasmjob": {"config": {...}}, as JSON
 * text in `out` (query:config.get.v1): 1 = there is one, 0 = none, -1 = the call failed. */
WASMJOB_API int wasmjob_config(wasmjob_job *job, wasmjob_buf *out) {
    uint32_t len;
    const uint8_t *r = wasmjob_call(job, "query:config.get.v1", "{}", 2, &len);
    if (!r) return -1;
    int got = wasmjob_json_get_raw(r, len, "config", out);
    wasmjob_call_free(r, len);
    return got;
}

/* ---- Declaring jobs and the extension ---- */

typedef struct wasmjob_job_decl {
    const char *name;        /* job name given to register_job */
    const char *export_name; /* "execute_<name>" */
    int32_t resumable;
} wasmjob_job_decl;

/* WASMJOB_JOB(name, fn): export execute_<name>, which parses the context and calls
 * int32_t fn(wasmjob_job *job). */
#define WASMJOB_JOB(name, fn)                                                                   \
    WASMJOB_EXPORT("execute_" #name) int32_t execute_##name(                                    \
        const uint8_t *ctx, uint32_t ctx_len, const uint8_t *state, uint32_t state_len);       \
    int32_t execute_##name(const uint8_t *ctx, uint32_t ctx_len, const uint8_t *state,          \
                           uint32_t state_len) {                                                \
        wasmjob_job job;                                                                        \
        if (wasmjob__open_job(&job, ctx, ctx_len, state, state_len)) return WASMJOB_FAILED;     \
        return fn(&job);                                                                        \
    }

/* Entries for WASMJOB_EXTENSION. */
#define WASMJOB_RESUMABLE(name) { #name, "execute_" #name, 1 }
#define WASMJOB_ONE_SHOT(name) { #name, "execute_" #name, 0 }

WASMJOB_API int32_t wasmjob__register_all(const wasmjob_job_decl *jobs, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        int32_t rc = wasmjob_host_register_job(jobs[i].name, wasmjob_strlen(jobs[i].name), jobs[i].export_name,
                                               wasmjob_strlen(jobs[i].export_name), jobs[i].resumable);
        if (rc) {
            wasmjob_log_error("register_job(\"%s\") returned %d", jobs[i].name, rc);
            return 1;
        }
    }
    return 0;
}

/* WASMJOB_EXTENSION(WASMJOB_RESUMABLE(a), WASMJOB_ONE_SHOT(b), ...): export
 * plugin_init (registers each job, 0 = ok) and plugin_cleanup. */
#define WASMJOB_EXTENSION(...)                                                                  \
    static const wasmjob_job_decl wasmjob__jobs[] = {__VA_ARGS__};                              \
    WASMJOB_EXPORT("plugin_init") int32_t plugin_init(void);                                    \
    int32_t plugin_init(void) {                                                                 \
        return wasmjob__register_all(wasmjob__jobs, sizeof wasmjob__jobs / sizeof *wasmjob__jobs); \
    }                                                                                           \
    WASMJOB_EXPORT("plugin_cleanup") int32_t plugin_cleanup(void);                              \
    int32_t plugin_cleanup(void) { return 0; }

#endif /* WASMJOB_H */
