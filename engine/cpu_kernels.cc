// CPU kernels Paddle 3.3.1's CPU build lacks, compiled on first use by engine/cpu_kernels.py.
//
// counter_dropout: inverted dropout whose mask is a hash of (seed, op index, element index).
// Paddle's dropout draws one Mersenne-twister number per element on one thread; a counter-based
// mask costs a few multiplies per pair of elements, runs on every OpenMP thread with the same
// result whatever their number, and is recomputed in the backward pass instead of stored.

#include <cmath>
#include <cstdint>
#include <vector>

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

void check_input(const paddle::Tensor& x) {
  PD_CHECK(x.is_cpu(), "counter_dropout runs on the CPU only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, "counter_dropout takes float32");
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
