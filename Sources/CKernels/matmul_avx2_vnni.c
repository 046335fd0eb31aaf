// AVX2 kernels with AVX-VNNI products (vpdpbusd on 256-bit vectors: Alder Lake and later,
// Zen 5); the same code and results as matmul_avx2.c (matmul_avx2_body.h).
#if defined(__x86_64__)
#define TK_AVX2_VNNI 1
#include "matmul_avx2_body.h"
#endif
