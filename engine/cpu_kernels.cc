// CPU kernels Paddle 3.3.1's CPU build lacks, compiled on first use by engine/cpu_kernels.py.
//
// counter_dropout: inverted dropout whose mask is a hash of (seed, op index, element index).
// Paddle's dropout draws one Mersenne-twister number per element on one thread; a counter-based
// mask costs a few multiplies per pair of elements, runs on every OpenMP thread with the same
// result whatever their number, and is recomputed in the backward pass instead of stored.
//
// fused_layer_norm: layer norm over the last axis; Paddle's CPU gradient runs on one thread at
// about 10 ns an element.
//
// attention_probs: dropout(softmax(scores · scale + mask)) in one pass over the scores, its dropout
// counter_dropout's masks for the same (seed, index).
//
// bias_add, bias_gelu: a dense layer's bias (and GELU) in one pass, the bias gradient a column sum on
// every thread; training programs otherwise add the bias as a rank-1 product (engine.ops.affine).
//
// adamw_: Paddle's AdamW update in place, one vectorised pass on every thread (Paddle's CPU kernel
// moves about a third of the bytes a second that this machine's memory allows).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <omp.h>

#include "paddle/extension.h"

namespace {

// SplitMix64's output function. Applied to key + j·kGolden it is SplitMix64's stream from state
// `key`, a generator that passes BigCrush (Steele, Lea, Flood 2014); every op has its own key.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// e^x in float by Cody-Waite reduction and Cephes' expf polynomial (within 2 ulp), in plain
// arithmetic so loops over it vectorise (glibc's vector expf needs -ffast-math); 0 below -87.
inline float exp_poly(float x) {
  const float c = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
  const float k = std::floor(c * 1.44269504088896341f + 0.5f);
  const float r = c - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const float scale = __builtin_bit_cast(float, (static_cast<int32_t>(k) + 127) << 23);  // 2^k
  return x < -87.f ? 0.f : p * scale;
}

struct Mask {
  uint64_t key;        // the op's stream: mix64 of (seed, op index)
  uint64_t threshold;  // an element is dropped when its 32-bit draw is below p · 2^32
  float scale;         // 1 / (1 - p) for the kept ones
};

Mask make_mask(const paddle::Tensor& seed, float p, int64_t index) {
  PD_CHECK(seed.dtype() == paddle::DataType::INT32 && seed.numel() == 1, "Seed must be one int32 value");
  PD_CHECK(p >= 0.f && p < 1.f, "p must be in [0, 1), got ", p);
  const uint64_t s = static_cast<uint32_t>(seed.data<int32_t>()[0]);
  Mask m;
  m.key = mix64((s << 32) ^ static_cast<uint64_t>(index) ^ kGolden);
  m.threshold = static_cast<uint64_t>(std::llround(std::ldexp(static_cast<double>(p), 32)));
  m.scale = 1.f / (1.f - p);
  return m;
}

// out[i] = x[i] · scale where element i is kept, else 0. One 64-bit hash gives the draws of
// elements 2j and 2j+1, so the mask depends on the element index alone, not on the threads.
void apply_mask(const Mask& m, const float* x, float* out, int64_t n) {
  const int64_t pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < pairs; ++j) {
    const uint64_t r = mix64(m.key + static_cast<uint64_t>(j) * kGolden);
    const int64_t i = 2 * j;
    out[i] = (r & 0xffffffffULL) >= m.threshold ? x[i] * m.scale : 0.f;
    if (i + 1 < n) out[i + 1] = (r >> 32) >= m.threshold ? x[i + 1] * m.scale : 0.f;
  }
}

// Whether element i is kept: the same draw apply_mask makes for it.
inline bool kept(const Mask& m, int64_t i) {
  const uint64_t r = mix64(m.key + static_cast<uint64_t>(i >> 1) * kGolden);
  return ((i & 1) ? (r >> 32) : (r & 0xffffffffULL)) >= m.threshold;
}

void check_input(const paddle::Tensor& x) {
  PD_CHECK(x.is_cpu(), "engine/cpu_kernels.cc's kernels run on the CPU only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, "engine/cpu_kernels.cc's kernels take float32");
}

// Per-thread sums of `width` floats, added up at the end: sums over rows without atomics.
class ThreadSums {
 public:
  explicit ThreadSums(int64_t width)
      : threads_(omp_get_max_threads()), width_(width), partial_(static_cast<size_t>(threads_) * width, 0.f) {}

  int threads() const { return threads_; }

  // The calling thread's sums (inside a parallel region of threads() threads).
  float* mine() { return partial_.data() + static_cast<size_t>(omp_get_thread_num()) * width_; }

  // out[j] = Σ over threads of sums[offset + j], j < n.
  void total(int64_t offset, int64_t n, float* out) const {
    for (int64_t j = 0; j < n; ++j) {
      float sum = 0.f;
      for (int k = 0; k < threads_; ++k) sum += partial_[static_cast<size_t>(k) * width_ + offset + j];
      out[j] = sum;
    }
  }

 private:
  int threads_;
  int64_t width_;
  std::vector<float> partial_;
};

// out[j] = Σ_r g[r·n + j].
void column_sums(const float* g, int64_t rows, int64_t n, float* out) {
  ThreadSums sums(n);
#pragma omp parallel num_threads(sums.threads())
  {
    float* mine = sums.mine();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = g + r * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) mine[j] += row[j];
    }
  }
  sums.total(0, n, out);
}

}  // namespace

std::vector<paddle::Tensor> CounterDropout(const paddle::Tensor& x, const paddle::Tensor& seed, float p,
                                           int64_t index) {
  check_input(x);
  auto out = paddle::empty_like(x);
  apply_mask(make_mask(seed, p, index), x.data<float>(), out.data<float>(), x.numel());
  return {out};
}

std::vector<paddle::Tensor> CounterDropoutGrad(const paddle::Tensor& seed, const paddle::Tensor& grad, float p,
                                               int64_t index) {
  check_input(grad);
  auto dx = paddle::empty_like(grad);
  apply_mask(make_mask(seed, p, index), grad.data<float>(), dx.data<float>(), grad.numel());
  return {dx};
}

std::vector<std::vector<int64_t>> FirstShape(const std::vector<int64_t>& first, const std::vector<int64_t>&) {
  return {first};
}

std::vector<paddle::DataType> FirstDtype(const paddle::DataType& first, const paddle::DataType&) { return {first}; }

std::vector<std::vector<int64_t>> SecondShape(const std::vector<int64_t>&, const std::vector<int64_t>& second) {
  return {second};
}

std::vector<paddle::DataType> SecondDtype(const paddle::DataType&, const paddle::DataType& second) {
  return {second};
}

PD_BUILD_OP(counter_dropout)
    .Inputs({"X", "Seed"})
    .Outputs({"Out"})
    .Attrs({"p: float", "index: int64_t"})
    .SetKernelFn(PD_KERNEL(CounterDropout))
    .SetInferShapeFn(PD_INFER_SHAPE(FirstShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(FirstDtype));

PD_BUILD_GRAD_OP(counter_dropout)
    .Inputs({"Seed", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"p: float", "index: int64_t"})
    .SetKernelFn(PD_KERNEL(CounterDropoutGrad))
    .SetInferShapeFn(PD_INFER_SHAPE(SecondShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(SecondDtype));

// -- layer norm -----------------------------------------------------------------------------------

std::vector<paddle::Tensor> LayerNorm(const paddle::Tensor& x, const paddle::Tensor& scale, const paddle::Tensor& bias,
                                      float epsilon) {
  check_input(x);
  const int64_t h = x.shape().back();
  const int64_t rows = x.numel() / h;
  PD_CHECK(scale.numel() == h && bias.numel() == h, "scale and bias must have the last axis' size");
  auto out = paddle::empty_like(x);
  auto mean = paddle::empty({rows}, paddle::DataType::FLOAT32, x.place());
  auto rstd = paddle::empty({rows}, paddle::DataType::FLOAT32, x.place());
  const float* in = x.data<float>();
  const float* g = scale.data<float>();
  const float* b = bias.data<float>();
  float* o = out.data<float>();
  float* mu = mean.data<float>();
  float* rs = rstd.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = in + r * h;
    float sum = 0.f;
    for (int64_t j = 0; j < h; ++j) sum += v[j];
    const float m = sum / h;
    float sq = 0.f;
    for (int64_t j = 0; j < h; ++j) sq += (v[j] - m) * (v[j] - m);
    const float inv = 1.f / std::sqrt(sq / h + epsilon);
    float* w = o + r * h;
    for (int64_t j = 0; j < h; ++j) w[j] = (v[j] - m) * inv * g[j] + b[j];
    mu[r] = m;
    rs[r] = inv;
  }
  return {out, mean, rstd};
}

// dx = rstd · (dy·γ - mean(dy·γ) - x̂ · mean(dy·γ·x̂)); dγ = Σ dy·x̂ and dβ = Σ dy over the rows, each
// thread summing its own rows first.
std::vector<paddle::Tensor> LayerNormGrad(const paddle::Tensor& x, const paddle::Tensor& scale,
                                          const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                          const paddle::Tensor& grad) {
  const int64_t h = x.shape().back();
  const int64_t rows = x.numel() / h;
  auto dx = paddle::empty_like(x);
  auto dscale = paddle::empty_like(scale);
  auto dbias = paddle::empty_like(scale);
  const float* in = x.data<float>();
  const float* g = scale.data<float>();
  const float* mu = mean.data<float>();
  const float* rs = rstd.data<float>();
  const float* dy = grad.data<float>();
  float* d = dx.data<float>();
  ThreadSums sums(2 * h);  // dγ, then dβ
#pragma omp parallel num_threads(sums.threads())
  {
    float* pg = sums.mine();
    float* pb = pg + h;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* v = in + r * h;
      const float* e = dy + r * h;
      const float m = mu[r], inv = rs[r];
      float a = 0.f, c = 0.f;  // Σ dy·γ and Σ dy·γ·x̂ over the row
      for (int64_t j = 0; j < h; ++j) {
        const float xhat = (v[j] - m) * inv;
        const float t = e[j] * g[j];
        a += t;
        c += t * xhat;
        pg[j] += e[j] * xhat;
        pb[j] += e[j];
      }
      a /= h;
      c /= h;
      float* o = d + r * h;
      for (int64_t j = 0; j < h; ++j) o[j] = inv * (e[j] * g[j] - a - (v[j] - m) * inv * c);
    }
  }
  sums.total(0, h, dscale.data<float>());
  sums.total(h, h, dbias.data<float>());
  return {dx, dscale, dbias};
}

std::vector<std::vector<int64_t>> LayerNormShape(const std::vector<int64_t>& x, const std::vector<int64_t>&,
                                                 const std::vector<int64_t>&) {
  std::vector<int64_t> rows(x.begin(), x.end() - 1);
  int64_t n = 1;
  for (int64_t d : rows) n = (d < 0 || n < 0) ? -1 : n * d;
  return {x, {n}, {n}};
}

std::vector<paddle::DataType> LayerNormDtype(const paddle::DataType& x, const paddle::DataType&,
                                             const paddle::DataType&) {
  return {x, x, x};
}

std::vector<std::vector<int64_t>> LayerNormGradShape(const std::vector<int64_t>& x, const std::vector<int64_t>& scale,
                                                     const std::vector<int64_t>&, const std::vector<int64_t>&,
                                                     const std::vector<int64_t>&) {
  return {x, scale, scale};
}

std::vector<paddle::DataType> LayerNormGradDtype(const paddle::DataType& x, const paddle::DataType& scale,
                                                 const paddle::DataType&, const paddle::DataType&,
                                                 const paddle::DataType&) {
  return {x, scale, scale};
}

PD_BUILD_OP(fused_layer_norm)
    .Inputs({"X", "Scale", "Bias"})
    .Outputs({"Out", "Mean", "Rstd"})
    .Attrs({"epsilon: float"})
    .SetKernelFn(PD_KERNEL(LayerNorm))
    .SetInferShapeFn(PD_INFER_SHAPE(LayerNormShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(LayerNormDtype));

PD_BUILD_GRAD_OP(fused_layer_norm)
    .Inputs({"X", "Scale", "Mean", "Rstd", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Scale"), paddle::Grad("Bias")})
    .SetKernelFn(PD_KERNEL(LayerNormGrad))
    .SetInferShapeFn(PD_INFER_SHAPE(LayerNormGradShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(LayerNormGradDtype));

// -- attention probabilities ----------------------------------------------------------------------

// scores [B, ..., T] and an additive mask [B, 1, 1, T]: probs = softmax over T, out = dropout(probs).
std::vector<paddle::Tensor> AttentionProbs(const paddle::Tensor& scores, const paddle::Tensor& mask,
                                           const paddle::Tensor& seed, float scale, float p, int64_t index) {
  check_input(scores);
  const int64_t t = scores.shape().back();
  const int64_t rows = scores.numel() / t;
  const int64_t batch = scores.shape().front();
  PD_CHECK(mask.numel() == batch * t, "the mask must be [batch, 1, 1, keys]");
  const int64_t rows_per_item = batch > 0 ? rows / batch : 0;  // an empty batch has no rows
  const Mask drop = make_mask(seed, p, index);
  auto probs = paddle::empty_like(scores);
  auto out = paddle::empty_like(scores);
  const float* s = scores.data<float>();
  const float* add = mask.data<float>();
  float* pr = probs.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = s + r * t;
    const float* m = add + (r / rows_per_item) * t;
    float* q = pr + r * t;
    float top = -INFINITY;
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < t; ++j) {
      q[j] = in[j] * scale + m[j];
      top = std::max(top, q[j]);
    }
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < t; ++j) {
      q[j] = exp_poly(q[j] - top);
      sum += q[j];
    }
    const float inv = 1.f / sum;
    float* w = o + r * t;
    for (int64_t j = 0; j < t; ++j) {
      q[j] *= inv;
      w[j] = kept(drop, r * t + j) ? q[j] * drop.scale : 0.f;
    }
  }
  return {out, probs};
}

// d scores = scale · probs ⊙ (dp - Σ dp ⊙ probs), with dp the gradient through the dropout.
std::vector<paddle::Tensor> AttentionProbsGrad(const paddle::Tensor& probs, const paddle::Tensor& seed,
                                               const paddle::Tensor& grad, float scale, float p, int64_t index) {
  const int64_t t = probs.shape().back();
  const int64_t rows = probs.numel() / t;
  const Mask drop = make_mask(seed, p, index);
  auto dscores = paddle::empty_like(probs);
  const float* pr = probs.data<float>();
  const float* g = grad.data<float>();
  float* d = dscores.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* q = pr + r * t;
    const float* e = g + r * t;
    float* o = d + r * t;
    float dot = 0.f;
    for (int64_t j = 0; j < t; ++j) {
      o[j] = kept(drop, r * t + j) ? e[j] * drop.scale : 0.f;
      dot += o[j] * q[j];
    }
    for (int64_t j = 0; j < t; ++j) o[j] = scale * q[j] * (o[j] - dot);
  }
  return {dscores};
}

std::vector<std::vector<int64_t>> AttentionProbsShape(const std::vector<int64_t>& scores, const std::vector<int64_t>&,
                                                      const std::vector<int64_t>&) {
  return {scores, scores};
}

std::vector<paddle::DataType> AttentionProbsDtype(const paddle::DataType& scores, const paddle::DataType&,
                                                  const paddle::DataType&) {
  return {scores, scores};
}

std::vector<std::vector<int64_t>> AttentionProbsGradShape(const std::vector<int64_t>& probs,
                                                          const std::vector<int64_t>&, const std::vector<int64_t>&) {
  return {probs};
}

std::vector<paddle::DataType> AttentionProbsGradDtype(const paddle::DataType& probs, const paddle::DataType&,
                                                      const paddle::DataType&) {
  return {probs};
}

PD_BUILD_OP(attention_probs)
    .Inputs({"Scores", "Mask", "Seed"})
    .Outputs({"Out", "Probs"})
    .Attrs({"scale: float", "p: float", "index: int64_t"})
    .SetKernelFn(PD_KERNEL(AttentionProbs))
    .SetInferShapeFn(PD_INFER_SHAPE(AttentionProbsShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(AttentionProbsDtype));

PD_BUILD_GRAD_OP(attention_probs)
    .Inputs({"Probs", "Seed", paddle::Grad("Out")})
    .Outputs({paddle::Grad("Scores")})
    .Attrs({"scale: float", "p: float", "index: int64_t"})
    .SetKernelFn(PD_KERNEL(AttentionProbsGrad))
    .SetInferShapeFn(PD_INFER_SHAPE(AttentionProbsGradShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(AttentionProbsGradDtype));

// -- AdamW ------------------------------------------------------------------------------------------

// Paddle's adamw formula: w ← w·(1 - lr·coeff) - lr·√(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε·√(1-β₂ᵗ)), with the
// moments m, v updated first and the powers βᵗ after.
void AdamW(paddle::Tensor& param, const paddle::Tensor& grad, const paddle::Tensor& lr, paddle::Tensor& moment1,
           paddle::Tensor& moment2, paddle::Tensor& beta1_pow, paddle::Tensor& beta2_pow, float beta1, float beta2,
           float epsilon, float coeff) {
  check_input(param);
  PD_CHECK(grad.numel() == param.numel(), "the gradient must have the parameter's size");
  float* b1p = beta1_pow.data<float>();
  float* b2p = beta2_pow.data<float>();
  const float rate = lr.data<float>()[0];
  const float decay = 1.f - rate * coeff;
  const float step = rate * std::sqrt(1.f - b2p[0]) / (1.f - b1p[0]);
  const float eps = epsilon * std::sqrt(1.f - b2p[0]);
  float* w = param.data<float>();
  float* m1 = moment1.data<float>();
  float* m2 = moment2.data<float>();
  const float* g = grad.data<float>();
  const int64_t n = param.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float a = beta1 * m1[i] + (1.f - beta1) * g[i];
    const float b = beta2 * m2[i] + (1.f - beta2) * g[i] * g[i];
    m1[i] = a;
    m2[i] = b;
    w[i] = w[i] * decay - step * (a / (std::sqrt(b) + eps));
  }
  b1p[0] *= beta1;
  b2p[0] *= beta2;
}

PD_BUILD_OP(adamw_)
    .Inputs({"Param", "Grad", "LearningRate", "Moment1", "Moment2", "Beta1Pow", "Beta2Pow"})
    .Outputs({"ParamOut", "Moment1Out", "Moment2Out", "Beta1PowOut", "Beta2PowOut"})
    .Attrs({"beta1: float", "beta2: float", "epsilon: float", "coeff: float"})
    .SetInplaceMap({{"Param", "ParamOut"}, {"Moment1", "Moment1Out"}, {"Moment2", "Moment2Out"},
                    {"Beta1Pow", "Beta1PowOut"}, {"Beta2Pow", "Beta2PowOut"}})
    .SetKernelFn(PD_KERNEL(AdamW));

// -- bias, GELU ---------------------------------------------------------------------------------------

namespace {

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, about float's rounding), with exp_poly.
inline float erf_as(float z) {
  const float a = std::fabs(z);
  const float t = 1.f / (1.f + 0.3275911f * a);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f +
                     t * 1.061405429f))));
  const float e = 1.f - poly * exp_poly(-a * a);
  return z < 0.f ? -e : e;
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// GELU with erf, as HF's "gelu": v · Φ(v); its derivative Φ(v) + v · φ(v).
inline float gelu(float v) { return 0.5f * v * (1.f + erf_as(v * kInvSqrt2)); }
inline float gelu_grad(float v) {
  return 0.5f * (1.f + erf_as(v * kInvSqrt2)) + v * kInvSqrt2Pi * exp_poly(-0.5f * v * v);
}

// out[i] = f(x[i] + bias[i mod n], i) for x [..., n], on every thread; f is inlined, so the loop vectorises.
template <typename F>
paddle::Tensor biased(const paddle::Tensor& x, const paddle::Tensor& bias, F f) {
  check_input(x);
  const int64_t n = bias.numel();
  PD_CHECK(n == x.shape().back(), "the bias must have the last axis' size");
  const int64_t rows = x.numel() / n;
  auto out = paddle::empty_like(x);
  const float* in = x.data<float>();
  const float* b = bias.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) o[r * n + j] = f(in[r * n + j] + b[j], r * n + j);
  }
  return out;
}

}  // namespace

std::vector<paddle::Tensor> BiasAdd(const paddle::Tensor& x, const paddle::Tensor& bias) {
  return {biased(x, bias, [](float v, int64_t) { return v; })};
}

// The input's gradient is the output's own tensor, shared rather than copied.
std::vector<paddle::Tensor> BiasAddGrad(const paddle::Tensor& bias, const paddle::Tensor& grad) {
  auto dbias = paddle::empty_like(bias);
  const int64_t n = bias.numel();
  column_sums(grad.data<float>(), grad.numel() / n, n, dbias.data<float>());
  return {grad, dbias};
}

std::vector<paddle::Tensor> BiasGelu(const paddle::Tensor& x, const paddle::Tensor& bias) {
  return {biased(x, bias, [](float v, int64_t) { return gelu(v); })};
}

std::vector<paddle::Tensor> BiasGeluGrad(const paddle::Tensor& x, const paddle::Tensor& bias,
                                         const paddle::Tensor& grad) {
  const float* g = grad.data<float>();
  auto dx = biased(x, bias, [g](float v, int64_t i) { return g[i] * gelu_grad(v); });
  auto dbias = paddle::empty_like(bias);
  column_sums(dx.data<float>(), x.numel() / bias.numel(), bias.numel(), dbias.data<float>());
  return {dx, dbias};
}

std::vector<std::vector<int64_t>> BiasShape(const std::vector<int64_t>& x, const std::vector<int64_t>&) {
  return {x};
}

std::vector<paddle::DataType> BiasDtype(const paddle::DataType& x, const paddle::DataType&) { return {x}; }

std::vector<std::vector<int64_t>> BiasAddGradShape(const std::vector<int64_t>& bias, const std::vector<int64_t>& g) {
  return {g, bias};
}

std::vector<paddle::DataType> BiasAddGradDtype(const paddle::DataType& bias, const paddle::DataType& g) {
  return {g, bias};
}

std::vector<std::vector<int64_t>> BiasGeluGradShape(const std::vector<int64_t>& x, const std::vector<int64_t>& bias,
                                                    const std::vector<int64_t>&) {
  return {x, bias};
}

std::vector<paddle::DataType> BiasGeluGradDtype(const paddle::DataType& x, const paddle::DataType& bias,
                                                const paddle::DataType&) {
  return {x, bias};
}

PD_BUILD_OP(bias_add)
    .Inputs({"X", "Bias"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(BiasAdd))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BiasDtype));

PD_BUILD_GRAD_OP(bias_add)
    .Inputs({"Bias", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Bias")})
    .SetKernelFn(PD_KERNEL(BiasAddGrad))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasAddGradShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BiasAddGradDtype));

PD_BUILD_OP(bias_gelu)
    .Inputs({"X", "Bias"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(BiasGelu))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BiasDtype));

PD_BUILD_GRAD_OP(bias_gelu)
    .Inputs({"X", "Bias", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Bias")})
    .SetKernelFn(PD_KERNEL(BiasGeluGrad))
    .SetInferShapeFn(PD_INFER_SHAPE(BiasGeluGradShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BiasGeluGradDtype));
