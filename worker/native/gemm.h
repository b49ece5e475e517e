// C (M x N) = or += A (M x K) @ B (K x N) for the products of an LSTM layer. B is packed
// once and reused: the recurrent kernel by every step of the window, which a general GEMM
// (Eigen's) would pack again at each of them. A is read in place through two strides, so a
// transposed or strided operand (a time step's rows, dz^T) costs no copy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <Eigen/Core>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fused_lstm {

constexpr int64_t kNR = 64;   // columns of a packed panel: 4 AVX-512 registers
constexpr int kMR = 6;        // rows per kernel call: 6 x 4 = 24 accumulator registers of 32
constexpr int64_t kKC = 128;  // depth per pass: a 128 x 64 panel (32 KB) stays in L1

// B (K x N) in panels of kNR columns, each K rows of kNR floats, zero-padded past N, in
// storage the caller owns (64-byte aligned: a TF tensor's buffer).
class PackedB {
 public:
  static int64_t Floats(int64_t K, int64_t N) { return (N + kNR - 1) / kNR * K * kNR; }
  PackedB(float* storage, int64_t K, int64_t N) : data_(storage), K_(K), N_(N) {}

  // Element (k, n) of B at b[k * k_stride + n * n_stride].
  void Pack(const float* b, int64_t k_stride, int64_t n_stride) {
    for (int64_t k = 0; k < K_; ++k)
      for (int64_t n = 0; n < Panels() * kNR; ++n)
        At(k, n) = n < N_ ? b[k * k_stride + n * n_stride] : 0.f;
  }
  // Rows [k0, k1), row k's N floats contiguous at row(k).
  template <class Row>
  void PackRows(int64_t k0, int64_t k1, Row row) {
    for (int64_t k = k0; k < k1; ++k) {
      const float* src = row(k);
      for (int64_t p = 0; p < Panels(); ++p) {
        float* out = data_ + (p * K_ + k) * kNR;
        const int64_t n = std::min(kNR, N_ - p * kNR);
        std::copy(src + p * kNR, src + p * kNR + n, out);
        std::fill(out + n, out + kNR, 0.f);
      }
    }
  }
  int64_t K() const { return K_; }
  int64_t N() const { return N_; }
  int64_t Panels() const { return (N_ + kNR - 1) / kNR; }
  const float* Panel(int64_t p, int64_t k) const { return data_ + (p * K_ + k) * kNR; }

 private:
  float& At(int64_t k, int64_t n) { return data_[(n / kNR * K_ + k) * kNR + n % kNR]; }
  float* data_;
  int64_t K_, N_;
};

#if defined(__AVX512F__)
// A kernel's M x kNR tile of C from its accumulators: the columns of `mask` only.
template <int M>
inline void StoreTile(__m512 (&acc)[M][4], float* c, int64_t ldc, const __mmask16* mask,
                      bool accumulate) {
  for (int r = 0; r < M; ++r)
    for (int j = 0; j < 4; ++j) {
      if (!mask[j]) continue;
      float* cp = c + r * ldc + 16 * j;
      __m512 v = acc[r][j];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask[j], cp));
      _mm512_mask_storeu_ps(cp, mask[j], v);
    }
}

// The tiles of an M x N product over depth K, panel by panel from panel p0 to p1, K in
// passes of kKC: tile(rows, m0, p, k0, kk, mask, accumulate) computes rows [m0, m0 + rows)
// of panel p over depth [k0, k0 + kk), rows a std::integral_constant (kMR, then the rest).
template <class Tile>
inline void ForTiles(int64_t M, int64_t N, int64_t K, int64_t p0, int64_t p1, bool accumulate,
                     Tile tile) {
  for (int64_t p = p0; p < p1; ++p) {
    __mmask16 mask[4];
    for (int j = 0; j < 4; ++j) {
      const int64_t left = std::clamp<int64_t>(N - p * kNR - 16 * j, 0, 16);
      mask[j] = static_cast<__mmask16>((1u << left) - 1);
    }
    for (int64_t k0 = 0; k0 < K; k0 += kKC) {
      const int64_t kk = std::min(kKC, K - k0);
      const bool acc = accumulate || k0 > 0;
      int64_t m0 = 0;
      for (; m0 + kMR <= M; m0 += kMR)
        tile(std::integral_constant<int, kMR>(), m0, p, k0, kk, mask, acc);
      switch (M - m0) {
        case 5: tile(std::integral_constant<int, 5>(), m0, p, k0, kk, mask, acc); break;
        case 4: tile(std::integral_constant<int, 4>(), m0, p, k0, kk, mask, acc); break;
        case 3: tile(std::integral_constant<int, 3>(), m0, p, k0, kk, mask, acc); break;
        case 2: tile(std::integral_constant<int, 2>(), m0, p, k0, kk, mask, acc); break;
        case 1: tile(std::integral_constant<int, 1>(), m0, p, k0, kk, mask, acc); break;
        default: break;
      }
    }
  }
}

// M rows x one panel, over K: accumulators in registers, A broadcast from memory.
template <int M>
inline void Kernel(int64_t K, const float* a, int64_t rs, int64_t ks, const float* b, float* c,
                   int64_t ldc, const __mmask16* mask, bool accumulate) {
  __m512 acc[M][4];
  for (int r = 0; r < M; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k, b += kNR, a += ks) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16),
                 b2 = _mm512_load_ps(b + 32), b3 = _mm512_load_ps(b + 48);
    for (int r = 0; r < M; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * rs]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(av, b2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(av, b3, acc[r][3]);
    }
  }
  StoreTile<M>(acc, c, ldc, mask, accumulate);
}

// C row m at c + m * ldc; A(m, k) at a[m * rs + k * ks].
inline void Gemm(int64_t M, const float* a, int64_t rs, int64_t ks, const PackedB& B, float* c,
                 int64_t ldc, bool accumulate) {
  ForTiles(M, B.N(), B.K(), 0, B.Panels(), accumulate,
           [&](auto rows, int64_t m0, int64_t p, int64_t k0, int64_t kk, const __mmask16* mask,
               bool acc) {
             Kernel<decltype(rows)::value>(kk, a + m0 * rs + k0 * ks, rs, ks, B.Panel(p, k0),
                            c + m0 * ldc + p * kNR, ldc, mask, acc);
           });
}
#else
// Built without AVX-512: Eigen's product on the unpacked B.
inline void Gemm(int64_t M, const float* a, int64_t rs, int64_t ks, const PackedB& B, float* c,
                 int64_t ldc, bool accumulate) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Strided = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  const int64_t K = B.K(), N = B.N();
  Eigen::Map<const Mat, 0, Strided> A(a, M, K, Strided(rs, ks));
  Mat Bm(K, N);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) Bm(k, n) = B.Panel(n / kNR, k)[n % kNR];
  Eigen::Map<Mat, 0, Eigen::OuterStride<>> C(c, M, N, Eigen::OuterStride<>(ldc));
  if (accumulate)
    C.noalias() += A * Bm;
  else
    C.noalias() = A * Bm;
}
#endif

}  // namespace fused_lstm
