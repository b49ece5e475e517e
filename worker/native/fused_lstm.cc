// One keras.layers.LSTM layer's forward pass over a whole window, and its gradient, as two
// TensorFlow CPU ops (FusedLstm, FusedLstmGrad) in Keras' weight layout: kernel [in, 4u],
// recurrent_kernel [u, 4u], bias [4u], gates in the order i, f, c, o, sigmoid for the gates
// and tanh for the cell, as keras.layers.LSTMCell computes them.
//
// Why an op: Keras' loop runs 2 small products a step and layer as separate TF ops, and
// hoisting x @ W out of it in TF serialises the recurrence on one core (bench/README.md,
// issue 10 goal 1). Here the batch is cut into slices that run on both cores, each slice's
// whole recurrence with no synchronisation between time steps; the input projection, dx
// and the weight gradients are one large product each (the latter split by columns).
//
// Attribute `precision`: "float32" (the default: Keras' arithmetic), or "bfloat16" for
// bfloat16 products summed in float32 (bf16_gemm.h) where the build and the CPU have them;
// the weights, states, gates and gradients stay float32 either way.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

#include <Eigen/Dense>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

#include "bf16_gemm.h"
#include "gemm.h"

namespace {

using fused_lstm::Bf16Supported;
using fused_lstm::Gemm;
using fused_lstm::Gemm16;
using fused_lstm::PackedB;
using fused_lstm::PackedB16;
using fused_lstm::Pair;
using fused_lstm::PairsOf;
using fused_lstm::ToPairs;
using fused_lstm::TransposeToPairs;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
namespace errors = tensorflow::errors;

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapM = Eigen::Map<Mat, Eigen::Unaligned, Eigen::OuterStride<>>;
using CMapM = Eigen::Map<const Mat, Eigen::Unaligned, Eigen::OuterStride<>>;
using Arr = Eigen::Map<Eigen::ArrayXf>;
using CArr = Eigen::Map<const Eigen::ArrayXf>;

// Runs fn(0) .. fn(tasks - 1) on the calling thread and a second one kept for the life of
// the process, each taking the next task as it finishes one: on a machine shared with other
// work, a thread that loses its core leaves its share to the other instead of holding up
// the op. TF's own intra-op pool has one thread in the product (worker/tf_runtime.py), and
// starting a thread per call costs tens of microseconds. A process forked after first use
// (Celery's prefork pool) gets a helper of its own.
class Parallel {
 public:
  static void For(int tasks, const std::function<void(int)>& fn) {
    static std::mutex create;
    static Parallel* helper = nullptr;
    Parallel* p;
    {
      std::lock_guard<std::mutex> lock(create);
      if (helper == nullptr || helper->pid_ != getpid()) helper = new Parallel();  // leaked
      p = helper;
    }
    p->Run(tasks, fn);
  }

 private:
  struct Job {
    const std::function<void(int)>* fn;
    int tasks;
    std::atomic<int> next{0};
    void Work() {
      for (int t; (t = next.fetch_add(1)) < tasks;) (*fn)(t);
    }
  };

  Parallel() : pid_(getpid()) { std::thread([this] { Loop(); }).detach(); }

  void Run(int tasks, const std::function<void(int)>& fn) {
    // Another op already has the helper (ops side by side): all tasks here.
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {
      for (int t = 0; t < tasks; ++t) fn(t);
      return;
    }
    Job job{&fn, tasks};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      ++generation_;
    }
    wake_.notify_one();
    job.Work();
    // Withdraw the job (a helper not yet awake finds none), then wait for a task the
    // helper took to finish.
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = nullptr;
    done_.wait(lock, [&] { return !helper_working_; });
  }

  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        job = job_;
        if (job == nullptr) continue;
        helper_working_ = true;
      }
      job->Work();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        helper_working_ = false;
      }
      done_.notify_one();
    }
  }

  const pid_t pid_;
  std::mutex busy_, mutex_;
  std::condition_variable wake_, done_;
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
  bool helper_working_ = false;
};

// Tasks an op splits into: 4 batch slices (16 rows at the `default` preset's batch of 64)
// and 8 column slices of the weight gradients (a 64-column panel each at 128 units), so
// that either thread can take over the other's share.
constexpr int64_t kBatchTasks = 4, kColumnTasks = 8;

// [Begin(n, t, parts), Begin(n, t + 1, parts)) is slice t of n.
inline int64_t Begin(int64_t n, int64_t t, int64_t parts) { return n * t / parts; }

tensorflow::Status CheckShapes(OpKernelContext* ctx, int64_t* B, int64_t* T, int64_t* I,
                               int64_t* U) {
  const Tensor &x = ctx->input(0), &h0 = ctx->input(1), &c0 = ctx->input(2),
               &kernel = ctx->input(3), &rk = ctx->input(4);
  if (x.dims() != 3 || kernel.dims() != 2 || rk.dims() != 2 || h0.dims() != 2 ||
      c0.dims() != 2)
    return errors::InvalidArgument("FusedLstm: x must be [batch, time, in], states [batch, "
                                   "units], kernels 2-D");
  *B = x.dim_size(0), *T = x.dim_size(1), *I = x.dim_size(2), *U = rk.dim_size(0);
  if (kernel.dim_size(0) != *I || kernel.dim_size(1) != 4 * *U || rk.dim_size(1) != 4 * *U ||
      h0.dim_size(0) != *B || h0.dim_size(1) != *U || c0.shape() != h0.shape())
    return errors::InvalidArgument("FusedLstm: shapes do not agree: x ",
                                   x.shape().DebugString(), ", kernel ",
                                   kernel.shape().DebugString(), ", recurrent_kernel ",
                                   rk.shape().DebugString());
  return tensorflow::OkStatus();
}

// A temp tensor of n elements of T (TF's allocator: 64-byte aligned, and reused): floats,
// or bfloat16 pairs (bf16_gemm.h).
template <class T = float>
T* Temp(OpKernelContext* ctx, int64_t n, Tensor* tensor) {
  auto status =
      ctx->allocate_temp(tensorflow::DataTypeToEnum<T>::value, TensorShape({n}), tensor);
  if (!status.ok()) {
    ctx->SetStatus(status);
    return nullptr;
  }
  return tensor->flat<T>().data();
}

// Whether an op runs bfloat16 products: asked for by its attribute, and possible here.
tensorflow::Status UsesBf16(OpKernelConstruction* ctx, bool* bf16) {
  std::string precision;
  TF_RETURN_IF_ERROR(ctx->GetAttr("precision", &precision));
  *bf16 = precision == "bfloat16" && Bf16Supported();
  return tensorflow::OkStatus();
}

// A weight matrix as the right-hand side B (K x N) of the op's products, packed once for
// the precision the op runs at, in temp tensors that live as long as this.
class Weights {
 public:
  Weights(OpKernelContext* ctx, bool bf16, int64_t K, int64_t N)
      : f32_(nullptr, K, N), b16_(nullptr, K, N), bf16_(bf16) {
    if (bf16)
      b16_ = PackedB16(Temp<Pair>(ctx, PackedB16::Pairs(K, N), &store_), K, N);
    else
      f32_ = PackedB(Temp(ctx, PackedB::Floats(K, N), &store_), K, N);
  }
  // Element (k, n) at b[k * k_stride + n * n_stride].
  void Pack(const float* b, int64_t k_stride, int64_t n_stride) {
    if (bf16_)
      b16_.Pack(b, k_stride, n_stride);
    else
      f32_.Pack(b, k_stride, n_stride);
  }
  // C (M x N, row m at c + m * ldc) = or += A @ B: A's row m at a + m * rs (float32), or
  // as bfloat16 pairs at pairs + m * pairs_rs (ToPairs) when the op runs bfloat16.
  void Multiply(int64_t M, const float* a, int64_t rs, const Pair* pairs, int64_t pairs_rs,
                float* c, int64_t ldc, bool accumulate) const {
    if (bf16_)
      Gemm16(M, pairs, pairs_rs, b16_, c, ldc, accumulate);
    else
      Gemm(M, a, rs, 1, f32_, c, ldc, accumulate);
  }

 private:
  Tensor store_;
  PackedB f32_;
  PackedB16 b16_;
  bool bf16_;
};

class FusedLstmOp : public OpKernel {
 public:
  explicit FusedLstmOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, UsesBf16(ctx, &bf16_));
  }

  void Compute(OpKernelContext* ctx) override {
    int64_t B, T, I, U;
    OP_REQUIRES_OK(ctx, CheckShapes(ctx, &B, &T, &I, &U));
    const int64_t G = 4 * U;
    OP_REQUIRES(ctx, ctx->input(5).NumElements() == G,
                errors::InvalidArgument("FusedLstm: bias must have 4 x units"));
    Tensor *h_out, *c_out, *gates_out;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({B, T, U}), &h_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({B, T, U}), &c_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({B, T, G}), &gates_out));
    if (B == 0 || T == 0) return;
    const float* x = ctx->input(0).flat<float>().data();
    const float* h0 = ctx->input(1).flat<float>().data();
    const float* c0 = ctx->input(2).flat<float>().data();
    const float* bias = ctx->input(5).flat<float>().data();
    float* h = h_out->flat<float>().data();
    float* c = c_out->flat<float>().data();
    float* z = gates_out->flat<float>().data();  // pre-activations, then the gates
    Weights W(ctx, bf16_, I, G), R(ctx, bf16_, U, G);
    // bfloat16 products only: x's rows, and each step's previous h rows, as pairs.
    const int64_t IP = PairsOf(I), UP = PairsOf(U);
    Tensor xp_tensor, hp_tensor;
    Pair* xp = bf16_ ? Temp<Pair>(ctx, B * T * IP, &xp_tensor) : nullptr;
    Pair* hp = bf16_ ? Temp<Pair>(ctx, B * UP, &hp_tensor) : nullptr;
    if (!ctx->status().ok()) return;
    W.Pack(ctx->input(3).flat<float>().data(), G, 1);
    R.Pack(ctx->input(4).flat<float>().data(), G, 1);

    const int64_t batch_tasks = std::min(B, kBatchTasks);
    Parallel::For(batch_tasks, [&](int task) {
      const int64_t b0 = Begin(B, task, batch_tasks), nb = Begin(B, task + 1, batch_tasks) - b0;
      // The input projection of this slice's whole window: one (nb*T, I) @ (I, 4u) product.
      Pair* x_pairs = bf16_ ? xp + b0 * T * IP : nullptr;
      if (bf16_) ToPairs(nb * T, x + b0 * T * I, I, I, x_pairs, IP);
      W.Multiply(nb * T, x + b0 * T * I, I, x_pairs, IP, z + b0 * T * G, G, false);
      Pair* h_pairs = bf16_ ? hp + b0 * UP : nullptr;
      for (int64_t t = 0; t < T; ++t) {
        // Row r of this slice at step t sits at [(b0 + r) * T + t]: a stride of T rows.
        const float* h_prev = t == 0 ? h0 + b0 * U : h + (b0 * T + t - 1) * U;
        const int64_t h_rs = t == 0 ? U : T * U;
        if (bf16_) ToPairs(nb, h_prev, h_rs, U, h_pairs, UP);
        R.Multiply(nb, h_prev, h_rs, h_pairs, UP, z + (b0 * T + t) * G, T * G, true);
        for (int64_t r = 0; r < nb; ++r) {
          const int64_t at = (b0 + r) * T + t;
          float* g = z + at * G;
          Arr gi(g, U), gf(g + U, U), gc(g + 2 * U, U), go(g + 3 * U, U);
          gi = (gi + CArr(bias, U)).logistic();
          gf = (gf + CArr(bias + U, U)).logistic();
          gc = (gc + CArr(bias + 2 * U, U)).tanh();
          go = (go + CArr(bias + 3 * U, U)).logistic();
          CArr c_prev(t == 0 ? c0 + (b0 + r) * U : c + (at - 1) * U, U);
          Arr ct(c + at * U, U);
          ct = gf * c_prev + gi * gc;
          Arr(h + at * U, U) = go * ct.tanh();
        }
      }
    });
  }

 private:
  bool bf16_ = false;
};

class FusedLstmGradOp : public OpKernel {
 public:
  explicit FusedLstmGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, UsesBf16(ctx, &bf16_));
  }

  void Compute(OpKernelContext* ctx) override {
    int64_t B, T, I, U;
    OP_REQUIRES_OK(ctx, CheckShapes(ctx, &B, &T, &I, &U));
    const int64_t G = 4 * U, N = B * T;
    for (int k = 5; k <= 9; ++k) {
      const int64_t width = k == 7 ? G : U;
      OP_REQUIRES(ctx, ctx->input(k).shape() == TensorShape({B, T, width}),
                  errors::InvalidArgument("FusedLstmGrad: input ", k, " has shape ",
                                          ctx->input(k).shape().DebugString()));
    }
    const float* x = ctx->input(0).flat<float>().data();
    const float* h0 = ctx->input(1).flat<float>().data();
    const float* c0 = ctx->input(2).flat<float>().data();
    const float* h = ctx->input(5).flat<float>().data();
    const float* c = ctx->input(6).flat<float>().data();
    const float* gates = ctx->input(7).flat<float>().data();
    const float* dh_seq = ctx->input(8).flat<float>().data();
    const float* dc_seq = ctx->input(9).flat<float>().data();
    Tensor *dx_out, *dh0_out, *dc0_out, *dW_out, *dR_out, *db_out;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({B, T, I}), &dx_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({B, U}), &dh0_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({B, U}), &dc0_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({I, G}), &dW_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, TensorShape({U, G}), &dR_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(5, TensorShape({G}), &db_out));
    if (N == 0) {
      for (Tensor* out : {dh0_out, dc0_out, dW_out, dR_out, db_out})
        out->flat<float>().setZero();
      return;
    }
    // d(pre-activations) and the weights transposed and packed. The weight gradients,
    // float32: dW^T = dz^T @ x (A = dz^T read in place, B = x packed, the result
    // transposed); bfloat16: dW = x^T @ dz (B = dz packed as pairs along positions, A = x^T
    // as pairs, the result in place), since vdpbf16ps needs both operands in pairs along
    // the positions it sums over, and x^T is the smaller one to convert. The same for dR
    // with the previous h in place of x.
    Tensor dz_t, xp_t, hp_t, dwt_t, drt_t, dzp_t, dzb_t, xtp_t, htp_t;
    float* dz = Temp(ctx, N * G, &dz_t);
    Weights Wt(ctx, bf16_, G, I), Rt(ctx, bf16_, G, U);
    const int64_t GP = PairsOf(G), NP = PairsOf(N);
    PackedB Xp(nullptr, N, I), Hp(nullptr, N, U);
    PackedB16 DZ(nullptr, N, G);
    float *dWt = nullptr, *dRt = nullptr;
    Pair *dzp = nullptr, *xtp = nullptr, *htp = nullptr;  // dz's rows, x^T, h^T as pairs
    if (bf16_) {
      dzp = Temp<Pair>(ctx, N * GP, &dzp_t);
      DZ = PackedB16(Temp<Pair>(ctx, PackedB16::Pairs(N, G), &dzb_t), N, G);
      xtp = Temp<Pair>(ctx, I * NP, &xtp_t);
      htp = Temp<Pair>(ctx, U * NP, &htp_t);
    } else {
      Xp = PackedB(Temp(ctx, PackedB::Floats(N, I), &xp_t), N, I);
      Hp = PackedB(Temp(ctx, PackedB::Floats(N, U), &hp_t), N, U);
      dWt = Temp(ctx, G * I, &dwt_t);
      dRt = Temp(ctx, G * U, &drt_t);
    }
    if (!ctx->status().ok()) return;
    Wt.Pack(ctx->input(3).flat<float>().data(), 1, G);
    Rt.Pack(ctx->input(4).flat<float>().data(), 1, G);
    float* dx = dx_out->flat<float>().data();
    float* dh0 = dh0_out->flat<float>().data();
    float* dc0 = dc0_out->flat<float>().data();

    // Phase 1, by batch slices: the backward recurrence, which carries only dz_t @ R^T.
    const int64_t batch_tasks = std::min(B, kBatchTasks);
    Parallel::For(batch_tasks, [&](int task) {
      const int64_t b0 = Begin(B, task, batch_tasks), nb = Begin(B, task + 1, batch_tasks) - b0;
      float* dh_next = dh0 + b0 * U;  // [nb, U], row r for batch row b0 + r
      float* dc_next = dc0 + b0 * U;
      std::fill(dh_next, dh_next + nb * U, 0.f);
      std::fill(dc_next, dc_next + nb * U, 0.f);
      Eigen::ArrayXf dh(U), dc(U), tc(U);
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t r = 0; r < nb; ++r) {
          const int64_t at = (b0 + r) * T + t;
          const float* g = gates + at * G;
          CArr gi(g, U), gf(g + U, U), gc(g + 2 * U, U), go(g + 3 * U, U);
          CArr c_prev(t == 0 ? c0 + (b0 + r) * U : c + (at - 1) * U, U);
          Arr dc_row(dc_next + r * U, U);
          tc = CArr(c + at * U, U).tanh();
          dh = CArr(dh_seq + at * U, U) + CArr(dh_next + r * U, U);
          dc = CArr(dc_seq + at * U, U) + dc_row + dh * go * (1.f - tc * tc);
          float* d = dz + at * G;
          Arr(d, U) = dc * gc * gi * (1.f - gi);
          Arr(d + U, U) = dc * c_prev * gf * (1.f - gf);
          Arr(d + 2 * U, U) = dc * gi * (1.f - gc * gc);
          Arr(d + 3 * U, U) = dh * tc * go * (1.f - go);
          dc_row = dc * gf;
        }
        const float* dz_step = dz + (b0 * T + t) * G;
        Pair* dz_pairs = bf16_ ? dzp + (b0 * T + t) * GP : nullptr;  // kept for dx
        if (bf16_) ToPairs(nb, dz_step, T * G, G, dz_pairs, T * GP);
        Rt.Multiply(nb, dz_step, T * G, dz_pairs, T * GP, dh_next, U, false);
      }
      Wt.Multiply(nb * T, dz + b0 * T * G, G, bf16_ ? dzp + b0 * T * GP : nullptr, GP,
                  dx + b0 * T * I, I, false);
      const int64_t n0 = b0 * T, n1 = (b0 + nb) * T;
      auto x_row = [&](int64_t n) { return x + n * I; };
      auto h_prev_row = [&](int64_t n) { return n % T == 0 ? h0 + n / T * U : h + (n - 1) * U; };
      if (bf16_) {
        DZ.PackRows(n0, n1, [&](int64_t n) { return dz + n * G; });
        TransposeToPairs(n0, n1, N, I, x_row, xtp, NP);
        TransposeToPairs(n0, n1, N, U, h_prev_row, htp, NP);
      } else {
        Xp.PackRows(n0, n1, x_row);
        Hp.PackRows(n0, n1, h_prev_row);
      }
    });

    // Phase 2, by column slices of dz: the weight gradients, each one product over all
    // positions, and the bias gradient, dz's column sums.
    float* dW = dW_out->flat<float>().data();
    float* dR = dR_out->flat<float>().data();
    auto bias_gradient = [&](int64_t k0, int64_t nk) {
      Eigen::Map<Eigen::RowVectorXf>(db_out->flat<float>().data() + k0, nk) =
          CMapM(dz + k0, N, nk, Eigen::OuterStride<>(G)).colwise().sum();
    };
    if (bf16_) {  // a panel of dz's columns a task
      Parallel::For(DZ.Panels(), [&](int p) {
        Gemm16(I, xtp, NP, DZ, dW, G, false, p, p + 1);
        Gemm16(U, htp, NP, DZ, dR, G, false, p, p + 1);
        bias_gradient(p * fused_lstm::kNR, std::min(fused_lstm::kNR, G - p * fused_lstm::kNR));
      });
      return;
    }
    const int64_t column_tasks = std::min(G, kColumnTasks);
    Parallel::For(column_tasks, [&](int task) {
      const int64_t k0 = Begin(G, task, column_tasks), nk = Begin(G, task + 1, column_tasks) - k0;
      Gemm(nk, dz + k0, 1, G, Xp, dWt + k0 * I, I, false);
      Gemm(nk, dz + k0, 1, G, Hp, dRt + k0 * U, U, false);
      MapM(dW + k0, I, nk, Eigen::OuterStride<>(G)) =
          CMapM(dWt + k0 * I, nk, I, Eigen::OuterStride<>(I)).transpose();
      MapM(dR + k0, U, nk, Eigen::OuterStride<>(G)) =
          CMapM(dRt + k0 * U, nk, U, Eigen::OuterStride<>(U)).transpose();
      bias_gradient(k0, nk);
    });
  }

 private:
  bool bf16_ = false;
};

}  // namespace

REGISTER_OP("FusedLstm")
    .Input("x: float")                 // [batch, time, in]
    .Input("h0: float")                // [batch, units]
    .Input("c0: float")                // [batch, units]
    .Input("kernel: float")            // [in, 4 units]
    .Input("recurrent_kernel: float")  // [units, 4 units]
    .Input("bias: float")              // [4 units]
    .Attr("precision: {'float32', 'bfloat16'} = 'float32'")  // of the products (above)
    .Output("h: float")                // [batch, time, units]
    .Output("c: float")                // [batch, time, units]
    .Output("gates: float")            // [batch, time, 4 units], for the gradient
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      auto b = c->Dim(c->input(0), 0), t = c->Dim(c->input(0), 1);
      auto u = c->Dim(c->input(4), 0), g = c->Dim(c->input(4), 1);
      c->set_output(0, c->MakeShape({b, t, u}));
      c->set_output(1, c->MakeShape({b, t, u}));
      c->set_output(2, c->MakeShape({b, t, g}));
      return tensorflow::OkStatus();
    });

REGISTER_OP("FusedLstmGrad")
    .Input("x: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("kernel: float")
    .Input("recurrent_kernel: float")
    .Input("h: float")
    .Input("c: float")
    .Input("gates: float")
    .Input("dh: float")  // [batch, time, units]: the loss's gradient for every h
    .Input("dc: float")  // [batch, time, units]: and for every c (the last step's, mostly)
    .Attr("precision: {'float32', 'bfloat16'} = 'float32'")  // the forward op's
    .Output("dx: float")
    .Output("dh0: float")
    .Output("dc0: float")
    .Output("dkernel: float")
    .Output("drecurrent_kernel: float")
    .Output("dbias: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(1));
      c->set_output(2, c->input(2));
      c->set_output(3, c->input(3));
      c->set_output(4, c->input(4));
      c->set_output(5, c->Vector(c->Dim(c->input(4), 1)));
      return tensorflow::OkStatus();
    });

// Whether precision "bfloat16" runs bfloat16 products here (else float32 ones): this
// build has them and this CPU has AVX512_BF16. For the log and the tests.
REGISTER_OP("FusedLstmBf16Supported")
    .Output("supported: bool")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->Scalar());
      return tensorflow::OkStatus();
    });

class FusedLstmBf16SupportedOp : public OpKernel {
 public:
  explicit FusedLstmBf16SupportedOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    Tensor* out;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({}), &out));
    out->scalar<bool>()() = Bf16Supported();
  }
};

REGISTER_KERNEL_BUILDER(Name("FusedLstm").Device(tensorflow::DEVICE_CPU), FusedLstmOp);
REGISTER_KERNEL_BUILDER(Name("FusedLstmGrad").Device(tensorflow::DEVICE_CPU), FusedLstmGradOp);
REGISTER_KERNEL_BUILDER(Name("FusedLstmBf16Supported").Device(tensorflow::DEVICE_CPU),
                        FusedLstmBf16SupportedOp);
