// Causal attention over the paged KV cache, one task per (query row, head), spread over the
// pool round-robin so causal rows of different lengths balance out. Softmax is computed
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

// Compiled once per kernel path (the loops vectorize for each instruction set).
TK_PATH_VARIANTS(attend_one, (const tk_attention_args *a, int seq, int row, int head), (a, seq, row, head))
static inline __attribute__((always_inline)) void attend_one_body(const tk_attention_args *a, int seq, int row,
                                                                  int head) {
    const int hd = a->head_dim, bs = a->block_size;
    const int kvh = head / (a->n_heads / a->n_kv_heads);
    const int pos = a->pos_start[seq] + (row - a->row_start[seq]);
    const int32_t *table = a->block_table + a->table_start[seq];
    const float *q = a->q + ((long)row * a->n_heads + head) * hd;
    float *out = a->out + ((long)row * a->n_heads + head) * hd;
    const long block_stride = 2L * a->n_kv_heads * bs * hd;
    const long v_offset = (long)a->n_kv_heads * bs * hd;

    float acc[TK_ATTENTION_MAX_HEAD_DIM];
    float scores[TK_ATTENTION_MAX_BLOCK_SIZE];
    // A half-precision cache is read one block at a time into these (this head's K and V).
    float k_block[a->kv_f16 ? bs * hd : 1], v_block[a->kv_f16 ? bs * hd : 1];
    for (int d = 0; d < hd; d++) acc[d] = 0;
    float running_max = -INFINITY, running_sum = 0;

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
            float s16[16] = {0};  // a constant-size accumulator stays in a register
            for (int d = 0; d < hd; d++) {
                const float qd = q[d];
                const float *kd = kt + (long)d * 16;
                for (int j = 0; j < 16; j++) s16[j] += qd * kd[j];
            }
            for (int j = 0; j < 16; j++) scores[j] = s16[j];
        } else {
            for (int j = 0; j < bs; j++) scores[j] = 0;
            for (int d = 0; d < hd; d++) {
                const float qd = q[d];
                const float *kd = kt + (long)d * bs;
                for (int j = 0; j < bs; j++) scores[j] += qd * kd[j];
            }
        }
        float block_max = -INFINITY;
        for (int j = 0; j < count; j++) {
            scores[j] *= a->scale;
            block_max = scores[j] > block_max ? scores[j] : block_max;
        }
        if (block_max > running_max) {
            const float rescale = tk_fast_expf(running_max - block_max);
            for (int d = 0; d < hd; d++) acc[d] *= rescale;
            running_sum *= rescale;
            running_max = block_max;
        }
        for (int j = 0; j < count; j++) scores[j] = tk_fast_expf(scores[j] - running_max);
        for (int j = 0; j < count; j++) running_sum += scores[j];
        // Weighted values, 16 dimensions at a time so the partial sums stay in a register.
        int d0 = 0;
        for (; d0 + 16 <= hd; d0 += 16) {
            float a16[16];
            for (int l = 0; l < 16; l++) a16[l] = acc[d0 + l];
            for (int j = 0; j < count; j++) {
                const float w = scores[j];
                const float *vj = v + (long)j * hd + d0;
                for (int l = 0; l < 16; l++) a16[l] += w * vj[l];
            }
            for (int l = 0; l < 16; l++) acc[d0 + l] = a16[l];
        }
        for (; d0 < hd; d0++)
            for (int j = 0; j < count; j++) acc[d0] += scores[j] * v[(long)j * hd + d0];
    }
    const float inv = 1.0f / running_sum;
    for (int d = 0; d < hd; d++) out[d] = acc[d] * inv;
}

typedef struct {
    const tk_attention_args *args;
    int n_rows;
    int path;
} attention_job;

static void attention_worker(void *ctx, int ith, int nth) {
    const attention_job *job = ctx;
    const tk_attention_args *a = job->args;
    const long tasks = (long)job->n_rows * a->n_heads;
    int seq = 0;
    for (long t = ith; t < tasks; t += nth) {
        const int row = (int)(t / a->n_heads), head = (int)(t % a->n_heads);
        while (row >= a->row_start[seq + 1]) seq++;
        TK_PATH_DISPATCH(job->path, attend_one, (a, seq, row, head))
    }
}

void tk_attention(tk_pool *pool, const tk_attention_args *args) {
    if (args->block_size > TK_ATTENTION_MAX_BLOCK_SIZE || args->head_dim > TK_ATTENTION_MAX_HEAD_DIM) abort();
    attention_job job = {args, args->row_start[args->n_seqs], tk_pool_path(pool)};
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
