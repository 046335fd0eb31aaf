// tk_matmul: picks the kernels for this CPU once (or as tk_select_path says), quantizes the activations, and splits the
// product over the pool's threads in (weight-row chunk × activation-row block) tasks.
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "tk_internal.h"
#include "tk_matmul.h"

typedef struct tk_backend {
    const char *name; // "portable", "avx2-maddubs", "avx2-vnni", "avx512-vnni"
    int path;         // TK_PATH_*: the family ops.c and attention.c compile for
    tk_quantize_rows_fn quantize_rows;
    tk_q8_kernel (*q8_kernel)(int wtype);
    tk_f32_kernel (*f32_kernel)(int wtype);
} tk_backend;

static const tk_backend backend_portable = {"portable", TK_PATH_PORTABLE, tk_quantize_rows_portable,
                                            tk_q8_kernel_portable, tk_f32_kernel_portable};
#if defined(__x86_64__)
static const tk_backend backend_avx2 = {"avx2-maddubs", TK_PATH_AVX2, tk_quantize_rows_avx2, tk_q8_kernel_avx2,
                                        tk_f32_kernel_avx2};
static const tk_backend backend_avx2_vnni = {"avx2-vnni", TK_PATH_AVX2, tk_quantize_rows_avx2,
                                             tk_q8_kernel_avx2_vnni, tk_f32_kernel_avx2};
static const tk_backend backend_avx512 = {"avx512-vnni", TK_PATH_AVX512, tk_quantize_rows_avx512,
                                          tk_q8_kernel_avx512, tk_f32_kernel_avx512};
#endif

static int cpu_has_avx2, cpu_has_avx_vnni, cpu_has_avx512;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void detect_cpu(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    cpu_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    cpu_has_avx_vnni = cpu_has_avx2 && __builtin_cpu_supports("avxvnni");
    cpu_has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                     __builtin_cpu_supports("avx512dq") && cpu_has_avx2;
#endif
}

// The backend a path name means on this CPU, or NULL when the CPU cannot run it; *known is
// set to whether the name is a path or backend name at all.
static const tk_backend *backend_named(const char *name, int *known) {
    pthread_once(&cpu_once, detect_cpu);
    *known = 1;
    if (strcmp(name, "portable") == 0) return &backend_portable;
#if defined(__x86_64__)
    if (strcmp(name, "avx2") == 0) {
        if (!cpu_has_avx2) return NULL;
        return cpu_has_avx_vnni ? &backend_avx2_vnni : &backend_avx2;
    }
    if (strcmp(name, "avx2-maddubs") == 0) return cpu_has_avx2 ? &backend_avx2 : NULL;
    if (strcmp(name, "avx2-vnni") == 0) return cpu_has_avx_vnni ? &backend_avx2_vnni : NULL;
    if (strcmp(name, "avx512") == 0 || strcmp(name, "avx512-vnni") == 0) return cpu_has_avx512 ? &backend_avx512 : NULL;
    if (strcmp(name, "auto") == 0) {
        const tk_backend *be = backend_named("avx512", known);
        if (!be) be = backend_named("avx2", known);
        return be ? be : &backend_portable;
    }
#else
    if (strcmp(name, "auto") == 0) return &backend_portable;
    if (strcmp(name, "avx2") == 0 || strcmp(name, "avx512") == 0 || strcmp(name, "avx2-maddubs") == 0 ||
        strcmp(name, "avx2-vnni") == 0 || strcmp(name, "avx512-vnni") == 0)
        return NULL;
#endif
    *known = 0;
    return NULL;
}

// The process-wide choice (tk_select_path); NULL until the first use picks "auto".
static _Atomic(const tk_backend *) selected;

static const tk_backend *selected_backend(void) {
    const tk_backend *be = atomic_load_explicit(&selected, memory_order_acquire);
    if (!be) {
        int known;
        const tk_backend *best = backend_named("auto", &known), *expected = NULL;
        atomic_compare_exchange_strong(&selected, &expected, best);
        be = atomic_load_explicit(&selected, memory_order_acquire);
    }
    return be;
}

static const tk_backend *backend_for(tk_pool *pool) {
    const tk_backend *chosen = pool ? *tk_pool_backend_slot(pool) : NULL;
    return chosen ? chosen : selected_backend();
}

int tk_pool_path(tk_pool *pool) { return backend_for(pool)->path; }

const char *tk_cpu_backend(void) { return selected_backend()->name; }

const char *tk_cpu_path(void) {
    switch (selected_backend()->path) {
    case TK_PATH_AVX512: return "avx512";
    case TK_PATH_AVX2: return "avx2";
    default: return "portable";
    }
}

const char *tk_path_requirements(const char *path) {
    if (!path) return "";
    if (strcmp(path, "avx512") == 0) return "x86-64 with AVX-512 F, BW, VL, DQ and VNNI, AVX2, FMA and F16C";
    if (strcmp(path, "avx2") == 0) return "x86-64 with AVX2, FMA and F16C";
    return "";
}

int tk_cpu_supports_path(const char *path) {
    int known;
    if (!path) return -1;
    const tk_backend *be = backend_named(path, &known);
    return known ? be != NULL : -1;
}

int tk_select_path(const char *path) {
    int known;
    if (!path) return -1;
    const tk_backend *be = backend_named(path, &known);
    if (!known) return -1;
    if (!be) return -2;
    atomic_store_explicit(&selected, be, memory_order_release);
    return 0;
}

const char *tk_pool_backend(tk_pool *pool) { return backend_for(pool)->name; }

int tk_pool_set_backend(tk_pool *pool, const char *name) {
    int known;
    if (!pool || !name) return -1;
    const tk_backend *be = backend_named(name, &known);
    if (!be) return -1;
    *tk_pool_backend_slot(pool) = be;
    return 0;
}

int tk_matmul_supports(int wtype) {
    // Every type with a dequantizer has a portable kernel (checked by the tests).
    return tk_q8_kernel_portable(wtype) != NULL || tk_f32_kernel_portable(wtype) != NULL;
}

// Activation rows per task: a block of quantized X that stays in L2 while weight chunks stream.
#define TK_ROWS_PER_XBLOCK 64

// One weight matrix of a job and the tasks it contributes.
typedef struct {
    const uint8_t *w;
    int64_t row_bytes, n;
    float *y;
    tk_q8_kernel q8_kernel;
    tk_f32_kernel f32_kernel;
    int64_t chunk_rows, n_chunks, first_task;
} tk_matmul_part;

typedef struct {
    tk_matmul_part part[TK_MATMUL_MAX_PARTS];
    int n_parts;
    int64_t k, m;
    const float *x;
    tk_act_q8 act;
    tk_quantize_rows_fn quantize_rows;
    int64_t n_xblocks, n_tasks;
    _Alignas(64) _Atomic int64_t next_task;
    _Alignas(64) _Atomic int64_t next_xrow;
} tk_matmul_job;

#define TK_QUANTIZE_ROWS_PER_TASK 8

static void quantize_task(void *p, int ith, int nth) {
    (void)ith;
    (void)nth;
    tk_matmul_job *job = p;
    for (;;) {
        int64_t j0 = atomic_fetch_add_explicit(&job->next_xrow, TK_QUANTIZE_ROWS_PER_TASK, memory_order_relaxed);
        if (j0 >= job->m) return;
        int64_t j1 = j0 + TK_QUANTIZE_ROWS_PER_TASK < job->m ? j0 + TK_QUANTIZE_ROWS_PER_TASK : job->m;
        job->quantize_rows(job->x, job->k, j0, j1, &job->act);
    }
}

// Tasks are numbered part by part; within a part, activation-row block by weight-row chunk.
static void product_task(void *p, int ith, int nth) {
    (void)ith;
    (void)nth;
    tk_matmul_job *job = p;
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&job->next_task, 1, memory_order_relaxed);
        if (t >= job->n_tasks) return;
        int pi = 0;
        while (pi + 1 < job->n_parts && t >= job->part[pi + 1].first_task) pi++;
        const tk_matmul_part *part = &job->part[pi];
        t -= part->first_task;
        int64_t xb = t / part->n_chunks, chunk = t % part->n_chunks;
        int64_t i0 = chunk * part->chunk_rows;
        int64_t i1 = i0 + part->chunk_rows < part->n ? i0 + part->chunk_rows : part->n;
        int64_t j0 = xb * TK_ROWS_PER_XBLOCK;
        int64_t j1 = j0 + TK_ROWS_PER_XBLOCK < job->m ? j0 + TK_ROWS_PER_XBLOCK : job->m;
        if (part->q8_kernel)
            part->q8_kernel(part->w, part->row_bytes, i0, i1, job->k, &job->act, j0, j1, part->y, part->n);
        else
            part->f32_kernel(part->w, part->row_bytes, i0, i1, job->k, job->x, j0, j1, part->y, part->n);
    }
}

// The kernel of a weight type on a backend: its 8-bit-activation kernel, else the float one.
static void choose_kernel(const tk_backend *be, int wtype, tk_matmul_part *part) {
    part->q8_kernel = be->q8_kernel(wtype);
    if (!part->q8_kernel) part->q8_kernel = tk_q8_kernel_portable(wtype);
    part->f32_kernel = NULL;
    if (!part->q8_kernel) {
        part->f32_kernel = be->f32_kernel(wtype);
        if (!part->f32_kernel) part->f32_kernel = tk_f32_kernel_portable(wtype);
    }
}

// Runs the parts already in job (n_parts, each with w, row_bytes, n, y and its kernel).
static int run_job(tk_pool *pool, const tk_backend *be, tk_matmul_job *job) {
    int64_t k = job->k, m = job->m;
    int nth = tk_pool_threads(pool), needs_act = 0;
    for (int p = 0; p < job->n_parts; p++) needs_act |= job->part[p].q8_kernel != NULL;
    job->quantize_rows = be->quantize_rows;
    void *owned = NULL;
    if (needs_act) {
        int64_t nb = k / TK_QK, b_stride = (nb + 1) / 2 * 2, q_stride = b_stride * TK_QK;
        // Per row: q (q_stride bytes), d (b_stride floats), s (2 b_stride), dexp (8 b_stride).
        size_t row_size = (size_t)q_stride + (size_t)b_stride * 11 * sizeof(float);
        size_t size = row_size * (size_t)m;
        uint8_t *mem = pool ? tk_pool_scratch(pool, size) : (owned = aligned_alloc(64, (size + 63) / 64 * 64));
        if (!mem) return -1;
        job->act.q_stride = q_stride;
        job->act.b_stride = b_stride;
        job->act.q = (int8_t *)mem;
        job->act.d = (float *)(mem + (size_t)q_stride * (size_t)m);
        job->act.s = job->act.d + b_stride * m;
        job->act.dexp = job->act.s + 2 * b_stride * m;
        // Quantizing one row is cheaper than waking the workers.
        atomic_store(&job->next_xrow, 0);
        if (m >= 2 * TK_QUANTIZE_ROWS_PER_TASK && nth > 1) tk_pool_share(pool, quantize_task, job);
        else job->quantize_rows(job->x, k, 0, m, &job->act);
    }

    // Chunks of weight rows: multiples of 16 rows (64-byte lines of Y per thread), about four
    // per thread and matrix so a thread slowed by the rest of the machine does not hold up the
    // others.
    job->n_xblocks = (m + TK_ROWS_PER_XBLOCK - 1) / TK_ROWS_PER_XBLOCK;
    job->n_tasks = 0;
    for (int p = 0; p < job->n_parts; p++) {
        tk_matmul_part *part = &job->part[p];
        int64_t n = part->n, chunk = (n + 4 * nth - 1) / (4 * nth);
        chunk = (chunk + 15) / 16 * 16;
        if (chunk < 16) chunk = 16;
        part->chunk_rows = chunk;
        part->n_chunks = (n + chunk - 1) / chunk;
        part->first_task = job->n_tasks;
        job->n_tasks += part->n_chunks * job->n_xblocks;
    }
    atomic_store(&job->next_task, 0);
    if (job->n_tasks > 1) tk_pool_share(pool, product_task, job);
    else product_task(job, 0, 1);
    free(owned);
    return 0;
}

int tk_matmul(tk_pool *pool, int wtype, const void *w, int64_t n, int64_t k, const float *x,
              int64_t m, float *y) {
    return tk_matmul_many(pool, 1, &wtype, &w, &n, k, x, m, &y);
}

int tk_matmul_many(tk_pool *pool, int count, const int *wtypes, const void *const *ws, const int64_t *ns,
                   int64_t k, const float *x, int64_t m, float *const *ys) {
    if (count < 1 || count > TK_MATMUL_MAX_PARTS || k < 0 || m < 0) return -1;
    for (int p = 0; p < count; p++) {
        if (!tk_matmul_supports(wtypes[p]) || ns[p] < 0 || k % tk_type_block_size(wtypes[p]) != 0) return -1;
    }
    const tk_backend *be = backend_for(pool);
    tk_matmul_job job;
    memset(&job, 0, sizeof(job));
    job.k = k;
    job.m = m;
    job.x = x;
    for (int p = 0; p < count; p++) {
        if (ns[p] == 0 || m == 0) continue;
        if (k == 0) {
            memset(ys[p], 0, (size_t)(ns[p] * m) * sizeof(float));
            continue;
        }
        tk_matmul_part *part = &job.part[job.n_parts++];
        part->w = ws[p];
        part->row_bytes = k / tk_type_block_size(wtypes[p]) * tk_type_block_bytes(wtypes[p]);
        part->n = ns[p];
        part->y = ys[p];
        choose_kernel(be, wtypes[p], part);
    }
    return job.n_parts ? run_job(pool, be, &job) : 0;
}
