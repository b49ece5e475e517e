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

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include <unistd.h>

#include <Eigen/Dense>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

#include "gemm.h"

namespace {

using fused_lstm::Gemm;
using fused_lstm::PackedB;
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

// A temp tensor of `floats` floats (TF's allocator: 64-byte aligned, and reused).
float* Temp(OpKernelContext* ctx, int64_t floats, Tensor* tensor) {
  auto status = ctx->allocate_temp(tensorflow::DT_FLOAT, TensorShape({floats}), tensor);
  if (!status.ok()) {
    ctx->SetStatus(status);
    return nullptr;
  }
  return tensor->flat<float>().data();
}

class FusedLstmOp : public OpKernel {
 public:
  explicit FusedLstmOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

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
    Tensor w_tensor, r_tensor;
    float* w_store = Temp(ctx, PackedB::Floats(I, G), &w_tensor);
    float* r_store = Temp(ctx, PackedB::Floats(U, G), &r_tensor);
    if (!ctx->status().ok()) return;
    PackedB W(w_store, I, G), R(r_store, U, G);
    W.Pack(ctx->input(3).flat<float>().data(), G, 1);
    R.Pack(ctx->input(4).flat<float>().data(), G, 1);

    const int64_t batch_tasks = std::min(B, kBatchTasks);
    Parallel::For(batch_tasks, [&](int task) {
      const int64_t b0 = Begin(B, task, batch_tasks), nb = Begin(B, task + 1, batch_tasks) - b0;
      // The input projection of this slice's whole window: one (nb*T, I) @ (I, 4u) product.
      Gemm(nb * T, x + b0 * T * I, I, 1, W, z + b0 * T * G, G, false);
      for (int64_t t = 0; t < T; ++t) {
        // Row r of this slice at step t sits at [(b0 + r) * T + t]: a stride of T rows.
        if (t == 0)
          Gemm(nb, h0 + b0 * U, U, 1, R, z + b0 * T * G, T * G, true);
        else
          Gemm(nb, h + (b0 * T + t - 1) * U, T * U, 1, R, z + (b0 * T + t) * G, T * G, true);
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
};

class FusedLstmGradOp : public OpKernel {
 public:
  explicit FusedLstmGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

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
    // d(pre-activations), the weights transposed and packed, x and the previous h packed
    // as the right-hand sides of the weight gradients, which come out transposed.
    Tensor dz_t, wt_t, rt_t, xp_t, hp_t, dwt_t, drt_t;
    float* dz = Temp(ctx, N * G, &dz_t);
    float* wt_store = Temp(ctx, PackedB::Floats(G, I), &wt_t);
    float* rt_store = Temp(ctx, PackedB::Floats(G, U), &rt_t);
    float* xp_store = Temp(ctx, PackedB::Floats(N, I), &xp_t);
    float* hp_store = Temp(ctx, PackedB::Floats(N, U), &hp_t);
    float* dWt = Temp(ctx, G * I, &dwt_t);
    float* dRt = Temp(ctx, G * U, &drt_t);
    if (!ctx->status().ok()) return;
    PackedB Wt(wt_store, G, I), Rt(rt_store, G, U), Xp(xp_store, N, I), Hp(hp_store, N, U);
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
        Gemm(nb, dz + (b0 * T + t) * G, T * G, 1, Rt, dh_next, U, false);
      }
      Gemm(nb * T, dz + b0 * T * G, G, 1, Wt, dx + b0 * T * I, I, false);
      Xp.PackRows(b0 * T, (b0 + nb) * T, [&](int64_t n) { return x + n * I; });
      Hp.PackRows(b0 * T, (b0 + nb) * T,
                  [&](int64_t n) { return n % T == 0 ? h0 + n / T * U : h + (n - 1) * U; });
    });

    // Phase 2, by column slices of dz: the weight gradients, each one product over all
    // positions, as dW^T = dz^T @ x (A = dz^T read in place, B = x packed).
    const int64_t column_tasks = std::min(G, kColumnTasks);
    Parallel::For(column_tasks, [&](int task) {
      const int64_t k0 = Begin(G, task, column_tasks), nk = Begin(G, task + 1, column_tasks) - k0;
      Gemm(nk, dz + k0, 1, G, Xp, dWt + k0 * I, I, false);
      Gemm(nk, dz + k0, 1, G, Hp, dRt + k0 * U, U, false);
      MapM(dW_out->flat<float>().data() + k0, I, nk, Eigen::OuterStride<>(G)) =
          CMapM(dWt + k0 * I, nk, I, Eigen::OuterStride<>(I)).transpose();
      MapM(dR_out->flat<float>().data() + k0, U, nk, Eigen::OuterStride<>(G)) =
          CMapM(dRt + k0 * U, nk, U, Eigen::OuterStride<>(U)).transpose();
      Eigen::Map<Eigen::RowVectorXf>(db_out->flat<float>().data() + k0, nk) =
          CMapM(dz + k0, N, nk, Eigen::OuterStride<>(G)).colwise().sum();
    });
  }
};

}  // namespace

REGISTER_OP("FusedLstm")
    .Input("x: float")                 // [batch, time, in]
    .Input("h0: float")                // [batch, units]
    .Input("c0: float")                // [batch, units]
    .Input("kernel: float")            // [in, 4 units]
    .Input("recurrent_kernel: float")  // [units, 4 units]
    .Input("bias: float")              // [4 units]
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

REGISTER_KERNEL_BUILDER(Name("FusedLstm").Device(tensorflow::DEVICE_CPU), FusedLstmOp);
REGISTER_KERNEL_BUILDER(Name("FusedLstmGrad").Device(tensorflow::DEVICE_CPU), FusedLstmGradOp);
