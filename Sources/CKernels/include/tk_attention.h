// Causal grouped-query attention over a paged KV cache (engine side).
//
// KV cache layout of one layer (float32, or IEEE half when kv_f16), per block: K as [kv_heads][head_dim][block_size]
// (transposed: one dimension of all the block's slots is contiguous), then V as
// [kv_heads][block_size][head_dim]. A sequence's token at position p lives in block
// block_table[p / block_size], slot p % block_size.
#pragma once
#include <stdint.h>
#include "tk_matmul.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Largest block size (slots per block) and head size tk_attention accepts; its per-task
/// buffers are sized by them. The engine's KV cache rejects larger layouts up front.
#define TK_ATTENTION_MAX_BLOCK_SIZE 256
#define TK_ATTENTION_MAX_HEAD_DIM 512

typedef struct tk_attention_args {
    const float *q;           ///< [n_rows][n_heads * head_dim], RoPE applied
    float *out;               ///< [n_rows][n_heads * head_dim]
    const void *kv_layer;     ///< this layer's cache blocks (layout above)
    int n_heads, n_kv_heads, head_dim, block_size;
    int n_seqs;
    const int32_t *row_start;   ///< [n_seqs + 1]: rows of sequence s are row_start[s] ..< row_start[s+1]
    const int32_t *pos_start;   ///< [n_seqs]: position of each sequence's first row
    const int32_t *block_table; ///< all sequences' block tables, concatenated
    const int32_t *table_start; ///< [n_seqs]: offset of sequence s's table in block_table
    float scale;                ///< usually 1/sqrt(head_dim)
    int kv_f16;                 ///< nonzero: the cache holds IEEE half values (uint16_t), read as float
} tk_attention_args;

/// Row r of sequence s (position pos_start[s] + r - row_start[s]) attends to positions
/// 0 ... its own position of its sequence, whose K/V must already be in the cache.
/// Aborts when block_size or head_dim exceeds the limits above.
void tk_attention(tk_pool *pool, const tk_attention_args *args);

#ifdef __cplusplus
}
#endif
