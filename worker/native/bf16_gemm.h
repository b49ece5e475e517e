// bfloat16 products for the LSTM op, the opt-in mode of the spec's
// `training.matmul_precision` (worker/fused_lstm.py): C (float32) = or += A @ B with A and B
// rounded to bfloat16 (to nearest even) and the products summed in float32, what PyTorch's
// autocast and Keras' mixed_bfloat16 compute on a CPU. Why: vdpbf16ps (AVX512_BF16) does 2
// multiply-adds a lane where vfmadd231ps does 1, so where it issues as often, twice the FLOPs
// (bench/README.md, issue 16, goal 0, says what it gives here).
//
// vdpbf16ps takes its operands in pairs along K: one 32-bit lane holds elements k and k + 1
// (k even) of a column of B or of a row of A. B is packed once, in panels of kNR columns as
// gemm.h's PackedB; A's rows are converted into pairs first (ToPairs, or PairRows for an A
// that is stored transposed) and broadcast a pair at a time.
//
// Compiled only where the compiler targets AVX512_BF16 (-march=native on such a CPU) and
// called only where the CPU has it (Bf16Supported); elsewhere the op keeps its float32
// products and the stubs below are never reached.
#pragma once

#include <cstdlib>
#include <vector>

#include "gemm.h"

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#define FUSED_LSTM_BF16 1
#endif

namespace fused_lstm {

using Pair = uint32_t;  // two bfloat16s: element k in the low half, k + 1 in the high one

inline int64_t PairsOf(int64_t K) { return (K + 1) / 2; }

// Whether this library's bfloat16 products run here: built with them, on a CPU that has them.
inline bool Bf16Supported() {
#ifdef FUSED_LSTM_BF16
  static const bool cpu = __builtin_cpu_supports("avx512bf16");
  return cpu;
#else
  return false;
#endif
}

#ifdef FUSED_LSTM_BF16
inline __mmask16 FirstN(int64_t n) {
  return static_cast<__mmask16>((1u << std::clamp<int64_t>(n, 0, 16)) - 1);
}

// The floats of `mask` at p (the others 0), rounded to bfloat16.
inline __m256i Bf16x16(const float* p, __mmask16 mask) {
  return (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, p));
}

// Pairs (lo[j], hi[j]) as 16 32-bit lanes.
inline __m512i Interleave(__m256i lo, __m256i hi) {
  return _mm512_or_si512(_mm512_cvtepu16_epi32(lo),
                         _mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
}

// Rows [k0, k1) of a matrix of K rows (row k's W floats at row(k)) as pairs along k: the
// pair of column w holding row k is at at(w0, k / 2) + (w - w0) * stride, w0 = w rounded
// down to 16. A pair whose rows are both in the range (or the last row, whose partner is
// the zero that pads an odd K) is written whole; a row whose partner another range
// holds (ranges packed by different threads) writes its half only.
template <class Row, class At>
inline void PairRows(int64_t k0, int64_t k1, int64_t K, int64_t W, Row row, At at,
                     int64_t stride) {
  const __m512i index = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
      _mm512_set1_epi32(static_cast<int>(stride)));
  for (int64_t k = k0; k < k1;) {
    const bool whole = k % 2 == 0 && (k + 1 < k1 || k + 1 == K);
    const float* lo_row = row(k);
    const float* hi_row = whole && k + 1 < K ? row(k + 1) : nullptr;
    for (int64_t w0 = 0; w0 < W; w0 += 16) {
      const __mmask16 mask = FirstN(W - w0);
      Pair* out = at(w0, k / 2);
      const __m256i lo = Bf16x16(lo_row + w0, mask);
      if (whole) {
        const __m256i hi = hi_row ? Bf16x16(hi_row + w0, mask) : _mm256_setzero_si256();
        const __m512i pairs = Interleave(lo, hi);
        if (stride == 1)  // a packed panel: its columns past W are zeros
          _mm512_storeu_si512(out, pairs);
        else
          _mm512_mask_i32scatter_epi32(out, mask, index, pairs, 4);
      } else {
        alignas(32) uint16_t half[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(half), lo);
        uint16_t* o = reinterpret_cast<uint16_t*>(out) + k % 2;  // x86: low half first
        const int64_t n = stride == 1 ? 16 : std::min<int64_t>(16, W - w0);
        for (int64_t j = 0; j < n; ++j) o[2 * j * stride] = half[j];
      }
    }
    k += whole ? 2 : 1;
  }
}

// A 16 x 16 block of 32-bit lanes transposed in registers: lane j of r[i] becomes lane i of
// r[j] (unpacks within 128-bit lanes, then 128-bit lanes shuffled across registers).
inline void Transpose16(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // r[i + q], 128-bit lane L: rows i..i+3 of column 4L + q
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 16; i += 8)
    for (int q = 0; q < 4; ++q) {
      t[i + q] = _mm512_shuffle_i32x4(r[i + q], r[i + 4 + q], 0x88);  // lanes 0, 2 of each
      t[i + 4 + q] = _mm512_shuffle_i32x4(r[i + q], r[i + 4 + q], 0xdd);  // lanes 1, 3
    }
  for (int q = 0; q < 8; ++q) {
    r[q] = _mm512_shuffle_i32x4(t[q], t[8 + q], 0x88);
    r[8 + q] = _mm512_shuffle_i32x4(t[q], t[8 + q], 0xdd);
  }
}

// Rows [k0, k1) of a matrix of K rows (row k's W floats at row(k)) as pairs along k of its
// columns, column w's pair k / 2 at out + w * ld + k / 2: the A operand x^T of a product
// summed over k. Blocks of 32 rows (16 pairs) from an even row are converted 16 columns at
// a time and transposed in registers, 64-byte stores; the rows around them as PairRows
// writes them (a 32-bit scatter each, a quarter of the speed, scratch benchmark 2026-12-08).
template <class Row>
inline void TransposeToPairs(int64_t k0, int64_t k1, int64_t K, int64_t W, Row row, Pair* out,
                             int64_t ld) {
  auto at = [&](int64_t w, int64_t kp) { return out + w * ld + kp; };
  const int64_t b0 = std::min(k1, (k0 + 1) / 2 * 2);
  const int64_t b1 = b0 + std::max<int64_t>(0, (k1 - b0) / 32 * 32);
  PairRows(k0, b0, K, W, row, at, ld);
  for (int64_t k = b0; k < b1; k += 32)
    for (int64_t w0 = 0; w0 < W; w0 += 16) {
      const __mmask16 mask = FirstN(W - w0);
      __m512i v[16];
      for (int p = 0; p < 16; ++p)
        v[p] = Interleave(Bf16x16(row(k + 2 * p) + w0, mask),
                          Bf16x16(row(k + 2 * p + 1) + w0, mask));
      Transpose16(v);
      for (int64_t j = 0; j < std::min<int64_t>(16, W - w0); ++j)
        _mm512_storeu_si512(at(w0 + j, k / 2), v[j]);
    }
  PairRows(b1, k1, K, W, row, at, ld);
}

// Rows of A (M x K, row m's K floats at a + m * rs) as pairs, row m's at out + m * ld.
inline void ToPairs(int64_t M, const float* a, int64_t rs, int64_t K, Pair* out, int64_t ld) {
  for (int64_t m = 0; m < M; ++m, a += rs, out += ld)
    for (int64_t k = 0; k < K; k += 32) {
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(FirstN(K - k - 16), a + k + 16),
                                             _mm512_maskz_loadu_ps(FirstN(K - k), a + k));
      _mm512_mask_storeu_epi32(out + k / 2, FirstN(PairsOf(K - k)), (__m512i)v);
    }
}
#else
template <class Row, class At>
inline void PairRows(int64_t, int64_t, int64_t, int64_t, Row, At, int64_t) { std::abort(); }
template <class Row>
inline void TransposeToPairs(int64_t, int64_t, int64_t, int64_t, Row, Pair*, int64_t) {
  std::abort();
}
inline void ToPairs(int64_t, const float*, int64_t, int64_t, Pair*, int64_t) { std::abort(); }
#endif

// B (K x N) as pairs along K, in panels of kNR columns, each PairsOf(K) rows of kNR pairs,
// zero-padded past K and N, in storage the caller owns (64-byte aligned).
class PackedB16 {
 public:
  static int64_t Pairs(int64_t K, int64_t N) { return (N + kNR - 1) / kNR * PairsOf(K) * kNR; }
  PackedB16(Pair* storage, int64_t K, int64_t N) : data_(storage), K_(K), N_(N) {}

  // Element (k, n) of B at b[k * k_stride + n * n_stride].
  void Pack(const float* b, int64_t k_stride, int64_t n_stride) {
    if (n_stride == 1) return PackRows(0, K_, [&](int64_t k) { return b + k * k_stride; });
    // Rows gathered in turn into two buffers: PairRows holds rows k and k + 1 at once.
    std::vector<float> gathered(2 * N_);
    PackRows(0, K_, [&](int64_t k) {
      float* out = gathered.data() + k % 2 * N_;
      for (int64_t n = 0; n < N_; ++n) out[n] = b[k * k_stride + n * n_stride];
      return static_cast<const float*>(out);
    });
  }
  // Rows [k0, k1), row k's N floats contiguous at row(k); ranges may be packed at once.
  template <class Row>
  void PackRows(int64_t k0, int64_t k1, Row row) {
    auto at = [this](int64_t n0, int64_t kp) {
      return data_ + (n0 / kNR * PairsOf(K_) + kp) * kNR + n0 % kNR;
    };
    PairRows(k0, k1, K_, N_, row, at, 1);
  }
  int64_t K() const { return K_; }
  int64_t N() const { return N_; }
  int64_t Panels() const { return (N_ + kNR - 1) / kNR; }
  const Pair* Panel(int64_t p, int64_t kp) const { return data_ + (p * PairsOf(K_) + kp) * kNR; }

 private:
  Pair* data_;
  int64_t K_, N_;
};

#ifdef FUSED_LSTM_BF16
// M rows x one panel, over KP pairs of K: as gemm.h's Kernel, a pair of A broadcast at a time.
template <int M>
inline void Kernel16(int64_t KP, const Pair* a, int64_t lda, const Pair* b, float* c,
                     int64_t ldc, const __mmask16* mask, bool accumulate) {
  __m512 acc[M][4];
  for (int r = 0; r < M; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t kp = 0; kp < KP; ++kp, b += kNR, ++a) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16),
                   b2 = (__m512bh)_mm512_load_si512(b + 32),
                   b3 = (__m512bh)_mm512_load_si512(b + 48);
    for (int r = 0; r < M; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r * lda]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], av, b2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], av, b3);
    }
  }
  StoreTile<M>(acc, c, ldc, mask, accumulate);
}

// C row m at c + m * ldc; A's row m as pairs at a + m * lda; B's panels [p0, p1) only
// (p1 < 0: to the last), that is C's columns [p0 * kNR, p1 * kNR).
inline void Gemm16(int64_t M, const Pair* a, int64_t lda, const PackedB16& B, float* c,
                   int64_t ldc, bool accumulate, int64_t p0 = 0, int64_t p1 = -1) {
  ForTiles(M, B.N(), PairsOf(B.K()), p0, p1 < 0 ? B.Panels() : p1, accumulate,
           [&](auto rows, int64_t m0, int64_t p, int64_t k0, int64_t kk, const __mmask16* mask,
               bool acc) {
             Kernel16<decltype(rows)::value>(kk, a + m0 * lda + k0, lda, B.Panel(p, k0),
                                             c + m0 * ldc + p * kNR, ldc, mask, acc);
           });
}
#else
inline void Gemm16(int64_t, const Pair*, int64_t, const PackedB16&, float*, int64_t, bool,
                   int64_t = 0, int64_t = -1) {
  std::abort();
}
#endif

}  // namespace fused_lstm
