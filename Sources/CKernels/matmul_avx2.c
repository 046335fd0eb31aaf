// AVX2 + FMA kernels with vpmaddubsw + vpmaddwd products (x86-64 with avx2/fma/f16c; chosen at
// run time in matmul.c). The code is matmul_avx2_body.h, shared with matmul_avx2_vnni.c.
#if defined(__x86_64__)
#define TK_AVX2_VNNI 0
#include "matmul_avx2_body.h"
#endif
