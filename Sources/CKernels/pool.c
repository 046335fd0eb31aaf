// Compute thread pool: persistent workers woken per job by a generation counter.
// Workers spin for a short while after a job (decode issues hundreds of small jobs per token),
// then sleep on a futex so an idle pool costs no CPU.
//
// Two kinds of job: tk_pool_run calls fn on every thread and waits for all of them; a shared
// job (tk_pool_share, used by tk_matmul) is joined only by the workers that arrive while the
// caller is still working on it — fn claims work dynamically — so on a machine busier than its
// cores a descheduled worker costs nothing instead of a scheduler time slice per job.
// A worker enters a job only after announcing itself in `active` and then finding the job
// still open (`open_gen`); the caller closes the job and waits for `active` to drain before
// the job's context may go away (both sides seq_cst, so one of them sees the other).
#define _GNU_SOURCE
#include "tk_matmul.h"
#include "tk_internal.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define tk_cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define tk_cpu_relax() __asm__ __volatile__("yield")
#else
#define tk_cpu_relax() ((void)0)
#endif

// How long an idle worker spins before sleeping.
#define TK_SPIN_NS 200000

struct tk_pool {
    int n_threads;
    pthread_t *threads;
    void (*fn)(void *ctx, int ith, int nth);
    void *ctx;
    int shared;                               // the current job is a shared one
    _Alignas(64) _Atomic uint32_t generation; // bumped per job (never 0); futex word
    _Alignas(64) _Atomic uint32_t open_gen;   // generation of the job still open, or 0
    _Alignas(64) _Atomic int active;          // workers inside (or about to check) a job
    _Alignas(64) _Atomic int sleepers;
    _Alignas(64) _Atomic int finished;        // workers done with the current tk_pool_run job
    _Atomic int quit;
    // Per-call scratch for tk_matmul (quantized activations); only the caller touches it.
    void *scratch;
    size_t scratch_size;
    const struct tk_backend *backend;
};

typedef struct {
    tk_pool *pool;
    int ith;
} tk_worker_arg;

static uint64_t tk_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void tk_futex_wait(_Atomic uint32_t *addr, uint32_t expected) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void tk_futex_wake_all(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

// Waits until the generation differs from `seen`; returns the new one.
static uint32_t tk_wait_generation(tk_pool *pool, uint32_t seen) {
    uint64_t start = tk_now_ns();
    for (int spins = 0;; spins++) {
        uint32_t g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen) return g;
        tk_cpu_relax();
        if ((spins & 63) == 63 && tk_now_ns() - start > TK_SPIN_NS) break;
    }
    for (;;) {
        // Dekker-style handshake with tk_pool_run: either we see the new generation here,
        // or the caller sees sleepers > 0 and wakes us (both sides use seq_cst).
        atomic_fetch_add(&pool->sleepers, 1);
        uint32_t g = atomic_load(&pool->generation);
        if (g == seen) tk_futex_wait(&pool->generation, seen);
        atomic_fetch_sub(&pool->sleepers, 1);
        g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen) return g;
    }
}

static void *tk_worker_main(void *p) {
    tk_worker_arg arg = *(tk_worker_arg *)p;
    free(p);
    tk_pool *pool = arg.pool;
    uint32_t seen = 0;
    for (;;) {
        seen = tk_wait_generation(pool, seen);
        if (atomic_load_explicit(&pool->quit, memory_order_acquire)) return NULL;
        atomic_fetch_add(&pool->active, 1);
        if (atomic_load(&pool->open_gen) == seen) {
            int shared = pool->shared;
            pool->fn(pool->ctx, arg.ith, pool->n_threads);
            if (!shared) atomic_fetch_add_explicit(&pool->finished, 1, memory_order_acq_rel);
        }
        atomic_fetch_sub_explicit(&pool->active, 1, memory_order_release);
    }
}

tk_pool *tk_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    tk_pool *pool = aligned_alloc(64, (sizeof(tk_pool) + 63) / 64 * 64);
    if (!pool) return NULL;
    memset(pool, 0, sizeof(*pool));
    pool->n_threads = n_threads;
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->threads) {
        free(pool);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        tk_worker_arg *arg = malloc(sizeof(*arg));
        if (arg) {
            arg->pool = pool;
            arg->ith = i;
        }
        if (!arg || pthread_create(&pool->threads[i], NULL, tk_worker_main, arg) != 0) {
            free(arg);
            pool->n_threads = i; // the workers started so far are joined by destroy
            tk_pool_destroy(pool);
            return NULL;
        }
    }
    return pool;
}

void tk_pool_destroy(tk_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->quit, 1);
    uint32_t g = atomic_load(&pool->generation) + 1;
    atomic_store(&pool->generation, g == 0 ? 1 : g);
    tk_futex_wake_all(&pool->generation);
    for (int i = 1; i < pool->n_threads; i++) pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    free(pool->scratch);
    free(pool);
}

int tk_pool_threads(const tk_pool *pool) { return pool ? pool->n_threads : 1; }

static void tk_wait_zero(_Atomic int *counter, int target) {
    for (int spins = 0; atomic_load_explicit(counter, memory_order_acquire) != target; spins++) {
        // A worker may have been descheduled on a busy machine: stop burning its core.
        if (spins > 20000) sched_yield();
        else tk_cpu_relax();
    }
}

static void tk_pool_dispatch(tk_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx, int shared) {
    if (!pool || pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    pool->shared = shared;
    atomic_store_explicit(&pool->finished, 0, memory_order_relaxed);
    uint32_t g = atomic_load_explicit(&pool->generation, memory_order_relaxed) + 1;
    if (g == 0) g = 1;
    atomic_store(&pool->open_gen, g);
    atomic_store(&pool->generation, g); // seq_cst: publishes the job, pairs with sleepers
    if (atomic_load(&pool->sleepers) > 0) tk_futex_wake_all(&pool->generation);
    fn(ctx, 0, pool->n_threads);
    if (!shared) tk_wait_zero(&pool->finished, pool->n_threads - 1);
    atomic_store(&pool->open_gen, 0);
    tk_wait_zero(&pool->active, 0);
}

void tk_pool_run(tk_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx) {
    tk_pool_dispatch(pool, fn, ctx, 0);
}

void tk_pool_share(tk_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx) {
    tk_pool_dispatch(pool, fn, ctx, 1);
}

void *tk_pool_scratch(tk_pool *pool, size_t size) {
    if (pool->scratch_size >= size) return pool->scratch;
    free(pool->scratch);
    pool->scratch = aligned_alloc(64, (size + 63) / 64 * 64);
    pool->scratch_size = pool->scratch ? size : 0;
    return pool->scratch;
}

const struct tk_backend **tk_pool_backend_slot(tk_pool *pool) { return &pool->backend; }

int tk_pool_sleeping_workers(tk_pool *pool) { return pool ? atomic_load(&pool->sleepers) : 0; }
