// Causal attention over the paged KV cache, one task per (query row, group of query heads
// sharing a KV head), spread over the pool round-robin so causal rows of different lengths
// balance out. Softmax is computed
// online one cache block at a time (running max and sum), so no buffer grows with the
// context length.
#include "tk_attention.h"
#include "tk_fast_exp.h"
#include "tk_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
// Below this many (query head, key) pairs a step's attention runs on the calling thread.
#define TK_ATTENTION_SERIAL_WORK 16384

// IEEE half to float, exactly, with selects only (no branches or table), so the loop over a
// block vectorizes in every path's variant. Same results as tk_fp16_to_fp32.
static inline __attribute__((always_inline)) void halves_to_floats(const uint16_t *src, float *dst, int n) {
    for (int i = 0; i < n; i++) {
        const uint32_t h = src[i], magnitude = h & 0x7fff, sign = (h & 0x8000) << 16;
        const float subnormal = (float)magnitude * 0x1p-24f;  // exact: magnitude < 2^10 here
        uint32_t sub_bits, bits = (magnitude << 13) + (112u << 23);
        memcpy(&sub_bits, &subnormal, 4);
        bits = magnitude < 0x400 ? sub_bits : magnitude >= 0x7c00 ? ((magnitude << 13) | 0x7f800000u) : bits;
        bits |= sign;
        memcpy(dst + i, &bits, 4);
    }
}

// Query heads attended together: the heads of one GQA group (or a part of it) share each K/V
// block load, and their independent accumulator chains keep the FMA units busy. Each head's
// arithmetic is exactly that of attending it alone (same operations in the same order), so
// results do not depend on how heads are grouped.
#define TK_ATTENTION_MAX_GROUP 4

// Heads head0 ..< head0 + G (one KV head) of one query row.
static inline __attribute__((always_inline)) void attend_heads(const tk_attention_args *a, int seq, int row, int head0,
                                                               const int G) {
    const int hd = a->head_dim, bs = a->block_size;
    const int kvh = head0 / (a->n_heads / a->n_kv_heads);
    const int pos = a->pos_start[seq] + (row - a->row_start[seq]);
    const int32_t *table = a->block_table + a->table_start[seq];
    const float *q = a->q + ((long)row * a->n_heads + head0) * hd;  // head g at q + g * hd
    float *out = a->out + ((long)row * a->n_heads + head0) * hd;
    const long block_stride = 2L * a->n_kv_heads * bs * hd;
    const long v_offset = (long)a->n_kv_heads * bs * hd;

    float acc[TK_ATTENTION_MAX_GROUP][TK_ATTENTION_MAX_HEAD_DIM];
    float scores[TK_ATTENTION_MAX_GROUP][TK_ATTENTION_MAX_BLOCK_SIZE];
    float running_max[TK_ATTENTION_MAX_GROUP], running_sum[TK_ATTENTION_MAX_GROUP];
    // A half-precision cache is read one block at a time into these (this KV head's K and V).
    float k_block[a->kv_f16 ? bs * hd : 1], v_block[a->kv_f16 ? bs * hd : 1];
    for (int g = 0; g < G; g++) {
        for (int d = 0; d < hd; d++) acc[g][d] = 0;
        running_max[g] = -INFINITY;
        running_sum[g] = 0;
    }

    for (int start = 0; start <= pos; start += bs) {
        const int count = (pos - start + 1) < bs ? (pos - start + 1) : bs;
        const long k_at = (long)table[start / bs] * block_stride + (long)kvh * bs * hd;
        const long v_at = k_at + v_offset;
        const float *kt = (const float *)a->kv_layer + k_at;  // [head_dim][block_size]
        const float *v = (const float *)a->kv_layer + v_at;   // [block_size][head_dim]
        if (a->kv_f16) {
            halves_to_floats((const uint16_t *)a->kv_layer + k_at, k_block, bs * hd);
            halves_to_floats((const uint16_t *)a->kv_layer + v_at, v_block, count * hd);
            kt = k_block;
            v = v_block;
        }
        // Scores of the whole block at once: K is stored transposed, so the inner loop runs
        // over the block's slots (one vector) with no horizontal sums.
        if (bs == 16) {
            float s16[TK_ATTENTION_MAX_GROUP][16];  // constant-size accumulators stay in registers
            for (int g = 0; g < G; g++)
                for (int j = 0; j < 16; j++) s16[g][j] = 0;
            for (int d = 0; d < hd; d++) {
                const float *kd = kt + (long)d * 16;
                for (int g = 0; g < G; g++) {
                    const float qd = q[(long)g * hd + d];
                    for (int j = 0; j < 16; j++) s16[g][j] += qd * kd[j];
                }
            }
            for (int g = 0; g < G; g++)
                for (int j = 0; j < 16; j++) scores[g][j] = s16[g][j];
        } else {
            for (int g = 0; g < G; g++) {
                for (int j = 0; j < bs; j++) scores[g][j] = 0;
                for (int d = 0; d < hd; d++) {
                    const float qd = q[(long)g * hd + d];
                    const float *kd = kt + (long)d * bs;
                    for (int j = 0; j < bs; j++) scores[g][j] += qd * kd[j];
                }
            }
        }
        for (int g = 0; g < G; g++) {
            float block_max = -INFINITY;
            for (int j = 0; j < count; j++) {
                scores[g][j] *= a->scale;
                block_max = scores[g][j] > block_max ? scores[g][j] : block_max;
            }
            if (block_max > running_max[g]) {
                const float rescale = tk_fast_expf(running_max[g] - block_max);
                for (int d = 0; d < hd; d++) acc[g][d] *= rescale;
                running_sum[g] *= rescale;
                running_max[g] = block_max;
            }
            for (int j = 0; j < count; j++) scores[g][j] = tk_fast_expf(scores[g][j] - running_max[g]);
            for (int j = 0; j < count; j++) running_sum[g] += scores[g][j];
        }
        // Weighted values, 16 dimensions at a time so the partial sums stay in registers.
        int d0 = 0;
        for (; d0 + 16 <= hd; d0 += 16) {
            float a16[TK_ATTENTION_MAX_GROUP][16];
            for (int g = 0; g < G; g++)
                for (int l = 0; l < 16; l++) a16[g][l] = acc[g][d0 + l];
            for (int j = 0; j < count; j++) {
                const float *vj = v + (long)j * hd + d0;
                for (int g = 0; g < G; g++) {
                    const float w = scores[g][j];
                    for (int l = 0; l < 16; l++) a16[g][l] += w * vj[l];
                }
            }
            for (int g = 0; g < G; g++)
                for (int l = 0; l < 16; l++) acc[g][d0 + l] = a16[g][l];
        }
        for (; d0 < hd; d0++)
            for (int g = 0; g < G; g++)
                for (int j = 0; j < count; j++) acc[g][d0] += scores[g][j] * v[(long)j * hd + d0];
    }
    for (int g = 0; g < G; g++) {
        const float inv = 1.0f / running_sum[g];
        for (int d = 0; d < hd; d++) out[(long)g * hd + d] = acc[g][d] * inv;
    }
}

// Compiled once per kernel path (the loops vectorize for each instruction set) and group size.
TK_PATH_VARIANTS(attend_1, (const tk_attention_args *a, int seq, int row, int head0), (a, seq, row, head0))
static inline __attribute__((always_inline)) void attend_1_body(const tk_attention_args *a, int seq, int row, int head0) {
    attend_heads(a, seq, row, head0, 1);
}
TK_PATH_VARIANTS(attend_2, (const tk_attention_args *a, int seq, int row, int head0), (a, seq, row, head0))
static inline __attribute__((always_inline)) void attend_2_body(const tk_attention_args *a, int seq, int row, int head0) {
    attend_heads(a, seq, row, head0, 2);
}
TK_PATH_VARIANTS(attend_3, (const tk_attention_args *a, int seq, int row, int head0), (a, seq, row, head0))
static inline __attribute__((always_inline)) void attend_3_body(const tk_attention_args *a, int seq, int row, int head0) {
    attend_heads(a, seq, row, head0, 3);
}
TK_PATH_VARIANTS(attend_4, (const tk_attention_args *a, int seq, int row, int head0), (a, seq, row, head0))
static inline __attribute__((always_inline)) void attend_4_body(const tk_attention_args *a, int seq, int row, int head0) {
    attend_heads(a, seq, row, head0, 4);
}

// Heads per task: the largest of 4, 3, 2, 1 that divides the GQA group size.
static int heads_per_task(const tk_attention_args *a) {
    const int group = a->n_heads / a->n_kv_heads;
    for (int g = TK_ATTENTION_MAX_GROUP; g > 1; g--)
        if (group % g == 0) return g;
    return 1;
}

static void attend_task(int path, int heads, const tk_attention_args *a, int seq, int row, int head0) {
    switch (heads) {
    case 4: TK_PATH_DISPATCH(path, attend_4, (a, seq, row, head0)) break;
    case 3: TK_PATH_DISPATCH(path, attend_3, (a, seq, row, head0)) break;
    case 2: TK_PATH_DISPATCH(path, attend_2, (a, seq, row, head0)) break;
    default: TK_PATH_DISPATCH(path, attend_1, (a, seq, row, head0)) break;
    }
}

typedef struct {
    const tk_attention_args *args;
    int n_rows;
    int path;
    int heads;  // per task
} attention_job;

// Task t: query row t / (n_heads / heads), heads from (t % (n_heads / heads)) * heads.
static inline void run_task(const attention_job *job, long t, int *seq) {
    const tk_attention_args *a = job->args;
    const int per_row = a->n_heads / job->heads;
    const int row = (int)(t / per_row), head0 = (int)(t % per_row) * job->heads;
    while (row >= a->row_start[*seq + 1]) (*seq)++;
    attend_task(job->path, job->heads, a, *seq, row, head0);
}

static void attention_worker(void *ctx, int ith, int nth) {
    const attention_job *job = ctx;
    const long tasks = (long)job->n_rows * (job->args->n_heads / job->heads);
    int seq = 0;
    for (long t = ith; t < tasks; t += nth) run_task(job, t, &seq);
}

void tk_attention(tk_pool *pool, const tk_attention_args *args) {
    if (args->block_size > TK_ATTENTION_MAX_BLOCK_SIZE || args->head_dim > TK_ATTENTION_MAX_HEAD_DIM) abort();
    attention_job job = {args, args->row_start[args->n_seqs], tk_pool_path(pool), heads_per_task(args)};
    if (job.n_rows == 0) return;
    // Small steps (a few sequences decoding) are cheaper on the caller than a pool wake-up.
    long key_visits = 0;
    for (int s = 0; s < args->n_seqs; s++) {
        const long rows = args->row_start[s + 1] - args->row_start[s];
        key_visits += rows * (args->pos_start[s] + (rows + 1) / 2);
    }
    if (key_visits * args->n_heads < TK_ATTENTION_SERIAL_WORK) attention_worker(&job, 0, 1);
    else tk_pool_run(pool, attention_worker, &job);
}
