r"""The ``backend="cpp"`` kernels: one fused C++ loop per neuron, built on first use.

:func:`leaky` runs the leaky neurons of :mod:`~snnrl_sb3.kernels.leaky` (binary LIF with either reset and
firing condition, asymmetric and symmetric ternary, every ``surrogate_branches`` and θ⁻ parametrisation) as
one C++ autograd Function: the forward runs each block of 512 elements through all ``T`` steps with its
state in registers and L1 and writes only the spikes; the backward recomputes the block's membranes from
the saved input and runs the reverse-time adjoint in the same pass, θ⁻'s gradient sums included. No
per-step op dispatch, one allocation per direction, no Python in the backward.

**Exactness.** Every float32 operation of the step is written out in the eager kernel's order and the
build turns contraction off (``-ffp-contract=off``, no ``-ffast-math``), so the membranes and spikes are
bit-identical to the eager kernel and the reference step function; the gradients equal them to float
rounding (the θ⁻ sums are accumulated in float64 over blocks, in a fixed order: the same for any number
of threads).

**Support.** CPU float32 tensors with the ATan or trapezoid-family surrogates (``atan``, ``trapezoid``,
``rectangular``, ``triangular``: exactly those classes, not subclasses); everything else (another
surrogate, a GPU tensor, float64, the other neuron kinds) runs the eager kernels, which compute the same
function. The extension is compiled once per machine by :func:`torch.utils.cpp_extension.load_inline`
(needs a C++ compiler and ``ninja``; about 30-60 s) and cached in ``TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions``); later processes load it in milliseconds. The instruction set is the one
PyTorch dispatches to on this CPU (:func:`torch.backends.cpu.get_cpu_capability`: AVX-512, AVX2 or the
baseline), part of the extension's name, so machines sharing a cache never load a build they cannot run.
When building fails, the first failure is reported as a ``RuntimeWarning`` and every ``backend="cpp"``
neuron of the process runs the eager kernels (the pattern of
:class:`~snnrl_sb3.kernels.base.CompiledKernel`).
"""

from __future__ import annotations

import math
import platform
import threading
import warnings
from typing import Any, ClassVar

import torch
from torch import Tensor

from snnrl_sb3.surrogate import ATan, Surrogate, Trapezoid

__all__ = ["CppKernels", "SOURCE", "build_flags", "extension_name", "leaky", "surrogate_code",
           "MODE_SUBTRACT", "MODE_ZERO", "MODE_TERNARY"]

#: The neuron forms of :func:`leaky`: binary with the subtractive reset, binary with the hard reset, ternary.
MODE_SUBTRACT, MODE_ZERO, MODE_TERNARY = 0, 1, 2

#: Bumped with every change of :data:`SOURCE` that must not load an older build (the name changes).
_VERSION = 1

#: The C++ source of the extension (``torch.utils.cpp_extension.load_inline`` binds :func:`leaky`).
SOURCE = r"""
// Fused CPU kernels of the leaky neurons (snnrl_sb3.kernels.leaky), backend="cpp".
//
// Forward: each block of elements runs its whole time recursion with its state in L1, writing only the spikes.
// Backward: the block recomputes its membranes from the saved input (bit-identical: same operations, same order),
// then runs the reverse-time adjoint. Every float operation is written out one at a time and the build disables
// contraction (-ffp-contract=off) and fast-math, so the membranes round exactly as the eager torch kernel's.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kForwardBlock = 512;   // elements per forward block (two state rows: 4 KiB)
constexpr int64_t kBackwardFloats = 8192;  // a backward block's recomputed membranes: T * block <= 32 KiB

enum Mode : int { kSubtract = 0, kZero = 1, kTernary = 2 };

struct Constants {
  float beta, th, neg, add_back;  // neg: -θ⁻, the ternary's lower threshold; add_back: the θ⁻ a -1 spike adds
  float p0, p1, p2;               // surrogate parameters, see sg_times
};

template <bool Inclusive>
inline float fires(float u, float th) { return Inclusive ? static_cast<float>(u >= th) : static_cast<float>(u > th); }

// One step of n elements from the previous membranes. Subtract (and ternary): ((β U) + x) - θ⁺ up + add_back down
// (the eager addcmul, sub_ and add_); zero: x + (β U) keep (the eager addcmul with keep = 1 - S).
template <int M, bool Inclusive>
inline void step(const float* __restrict xt, const float* __restrict prev, float* __restrict cur, int64_t n,
                 const Constants c) {
  const float beta = c.beta, th = c.th, neg = c.neg, add_back = c.add_back;
  for (int64_t i = 0; i < n; ++i) {
    const float p = prev[i];
    float u = beta * p;
    if (M == kZero) {
      u = u * (1.0f - fires<Inclusive>(p, th));
      u = xt[i] + u;
    } else {
      u = xt[i] + u;
      u = u - th * fires<Inclusive>(p, th);
      if (M == kTernary) u = u + add_back * static_cast<float>(p < neg);
    }
    cur[i] = u;
  }
}

template <int M, bool Inclusive>
void forward_block(const float* x, float* spk, int64_t T, int64_t N, int64_t i0, int64_t n, const Constants c) {
  float state[2][kForwardBlock];
  const float th = c.th, neg = c.neg;
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * N + i0;
    float* cur = state[t & 1];
    if (t == 0) std::copy(xt, xt + n, cur);
    else step<M, Inclusive>(xt, state[(t - 1) & 1], cur, n, c);
    float* __restrict st = spk + t * N + i0;
    for (int64_t i = 0; i < n; ++i) {
      const float u = cur[i];
      st[i] = M == kTernary ? fires<Inclusive>(u, th) - static_cast<float>(u < neg) : fires<Inclusive>(u, th);
    }
  }
}

// g σ'(z) with the roundings of Surrogate.grad_times. 0: ATan (p0 = c, p1 = c k²: g / (c + (c k² z) z));
// 1: rectangle (p0 = w, p1 = h: 0 + (h [|z| < w]) g); 2: trapezoid (p0 = w2, p1 = -slope, p2 = h:
// clamp((|z| - w2)(-slope), 0, h) g)
template <int Kind>
inline float sg_times(float z, float g, const Constants c) {
  if (Kind == 0) {
    float d = c.p1 * z;
    d = d * z;
    d = c.p0 + d;
    return g / d;
  } else if (Kind == 1) {
    float r = c.p1 * static_cast<float>(std::fabs(z) < c.p0);
    r = r * g;
    return 0.0f + r;
  } else {
    float v = std::fabs(z) - c.p0;
    v = v * c.p1;
    v = v < 0.0f ? 0.0f : v;
    v = v > c.p2 ? c.p2 : v;
    return v * g;
  }
}

// One reverse step over the block: δ_t = a_t + β δ_{t+1} (zero reset: a_t + (β δ_{t+1}) keep_t), with
// a_t = g_t σ'(U_t - θ⁺) (+ g_t σ'(-θ⁻ - U_t), each on its side only with Sign). NeedNeg: θ⁻'s gradient terms,
// g σ'(-θ⁻ - U_t) and (Reset, t > 0) δ_t [U_{t-1} < -θ⁻], summed per element.
template <int Kind, int M, bool Inclusive, bool Sign, bool NeedNeg, bool First, bool Reset>
inline void reverse_step(const float* __restrict mt, const float* __restrict mp, const float* __restrict gt,
                         float* __restrict ot, float* __restrict delta, float* __restrict fire_acc,
                         float* __restrict reset_acc, int64_t n, const Constants c) {
  const float beta = c.beta, th = c.th, neg = c.neg;
  for (int64_t i = 0; i < n; ++i) {
    const float u = mt[i], g = gt[i];
    float a = sg_times<Kind>(u - th, g, c);
    if (M == kTernary) {
      float l = sg_times<Kind>(u - neg, g, c);
      if (Sign) {
        const bool positive = u >= 0.0f;  // NaN: the θ⁻ side, as the eager masks
        l = positive ? 0.0f : l;
        a = positive ? a : 0.0f;
      }
      a = a + l;
      if (NeedNeg) fire_acc[i] += l;
    }
    float d = a;
    if (!First) {
      float carry = beta * delta[i];
      if (M == kZero) carry = carry * (1.0f - fires<Inclusive>(u, th));
      d = a + carry;
    }
    delta[i] = d;
    ot[i] = d;
    if (M == kTernary && NeedNeg && Reset) reset_acc[i] += mp[i] < neg ? d : 0.0f;
  }
}

template <int Kind, int M, bool Inclusive, bool Sign, bool NeedNeg>
void backward_block(const float* x, const float* grad, float* out, float* mem, int64_t T, int64_t N, int64_t i0,
                    int64_t n, const Constants c, double* fire_sum, double* reset_sum) {
  // the block's membranes, recomputed from the input exactly as the forward computed them
  std::copy(x + i0, x + i0 + n, mem);
  for (int64_t t = 1; t < T; ++t) step<M, Inclusive>(x + t * N + i0, mem + (t - 1) * n, mem + t * n, n, c);
  float delta[kForwardBlock], fire_acc[kForwardBlock], reset_acc[kForwardBlock];
  std::fill(fire_acc, fire_acc + n, 0.0f);
  std::fill(reset_acc, reset_acc + n, 0.0f);
  const bool no_carry = c.beta == 0.0f;  // the eager reverse discount skips beta = 0 altogether
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* mt = mem + t * n;
    const float* mp = mem + (t > 0 ? t - 1 : 0) * n;
    const float* gt = grad + t * N + i0;
    float* ot = out + t * N + i0;
    const bool first = t == T - 1 || no_carry;
    // First: no carry; Reset (t > 0): the θ⁻ reset term. Four loops, each without a branch inside
    if (first && t > 0) {
      reverse_step<Kind, M, Inclusive, Sign, NeedNeg, true, true>(mt, mp, gt, ot, delta, fire_acc, reset_acc, n, c);
    } else if (first) {
      reverse_step<Kind, M, Inclusive, Sign, NeedNeg, true, false>(mt, mp, gt, ot, delta, fire_acc, reset_acc, n, c);
    } else if (t > 0) {
      reverse_step<Kind, M, Inclusive, Sign, NeedNeg, false, true>(mt, mp, gt, ot, delta, fire_acc, reset_acc, n, c);
    } else {
      reverse_step<Kind, M, Inclusive, Sign, NeedNeg, false, false>(mt, mp, gt, ot, delta, fire_acc, reset_acc, n, c);
    }
  }
  if (M == kTernary && NeedNeg) {
    double fs = 0.0, rs = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      fs += fire_acc[i];
      rs += reset_acc[i];
    }
    *fire_sum = fs;
    *reset_sum = rs;
  }
}

using ForwardFn = void (*)(const float*, float*, int64_t, int64_t, int64_t, int64_t, const Constants);
using BackwardFn = void (*)(const float*, const float*, float*, float*, int64_t, int64_t, int64_t, int64_t,
                            const Constants, double*, double*);

ForwardFn pick_forward(int mode, bool inclusive) {
  if (mode == kTernary) return forward_block<kTernary, false>;
  if (mode == kZero) return inclusive ? forward_block<kZero, true> : forward_block<kZero, false>;
  return inclusive ? forward_block<kSubtract, true> : forward_block<kSubtract, false>;
}

template <int Kind>
BackwardFn pick_backward(int mode, bool inclusive, bool sign, bool need_neg) {
  if (mode == kTernary) {
    if (sign) return need_neg ? backward_block<Kind, kTernary, false, true, true>
                              : backward_block<Kind, kTernary, false, true, false>;
    return need_neg ? backward_block<Kind, kTernary, false, false, true>
                    : backward_block<Kind, kTernary, false, false, false>;
  }
  if (mode == kZero) return inclusive ? backward_block<Kind, kZero, true, false, false>
                                      : backward_block<Kind, kZero, false, false, false>;
  return inclusive ? backward_block<Kind, kSubtract, true, false, false>
                   : backward_block<Kind, kSubtract, false, false, false>;
}

struct LeakyFunction : public torch::autograd::Function<LeakyFunction> {
  static Tensor forward(AutogradContext* ctx, Tensor x, std::optional<Tensor> neg_param,
                        std::optional<Tensor> reset_param, double beta, double threshold, int64_t mode,
                        double neg_threshold, double add_back, bool inclusive, int64_t kind, double p0, double p1,
                        double p2, bool sign) {
    x = x.contiguous();
    const Constants c{static_cast<float>(beta), static_cast<float>(threshold), -static_cast<float>(neg_threshold),
                      static_cast<float>(add_back), static_cast<float>(p0), static_cast<float>(p1),
                      static_cast<float>(p2)};
    const int64_t T = x.size(0), N = T > 0 ? x.numel() / T : 0;
    Tensor spk = torch::empty_like(x);
    const float* xp = x.const_data_ptr<float>();
    float* sp = spk.mutable_data_ptr<float>();
    const ForwardFn fn = pick_forward(static_cast<int>(mode), inclusive);
    const int64_t blocks = (N + kForwardBlock - 1) / kForwardBlock;
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t i0 = b * kForwardBlock;
        fn(xp, sp, T, N, i0, std::min(N, i0 + kForwardBlock) - i0, c);
      }
    });
    ctx->save_for_backward({x});
    ctx->saved_data["constants"] = std::vector<double>{c.beta, c.th, c.neg, c.add_back, c.p0, c.p1, c.p2};
    ctx->saved_data["flags"] = std::vector<int64_t>{
        mode, inclusive, kind, sign, neg_param.has_value() && neg_param->defined(),
        reset_param.has_value() && reset_param->defined()};
    return spk;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor x = ctx->get_saved_variables()[0];
    const auto cv = ctx->saved_data["constants"].toDoubleVector();
    const auto flags = ctx->saved_data["flags"].toIntVector();
    const Constants c{static_cast<float>(cv[0]), static_cast<float>(cv[1]), static_cast<float>(cv[2]),
                      static_cast<float>(cv[3]), static_cast<float>(cv[4]), static_cast<float>(cv[5]),
                      static_cast<float>(cv[6])};
    const int mode = static_cast<int>(flags[0]);
    const bool inclusive = flags[1], sign = flags[3], has_neg = flags[4], has_reset = flags[5];
    const int64_t kind = flags[2];
    variable_list result(14);  // one per forward argument
    if (!grads[0].defined()) return result;
    const bool need_neg = mode == kTernary && ((has_neg && ctx->needs_input_grad(1)) ||
                                               (has_reset && ctx->needs_input_grad(2)));
    const Tensor grad = grads[0].contiguous();
    const int64_t T = x.size(0), N = T > 0 ? x.numel() / T : 0;
    const int64_t block = std::max<int64_t>(16, std::min<int64_t>(kForwardBlock, kBackwardFloats / T / 16 * 16));
    Tensor out = torch::empty_like(x);
    const float* xp = x.const_data_ptr<float>();
    const float* gp = grad.const_data_ptr<float>();
    float* op = out.mutable_data_ptr<float>();
    const BackwardFn fn = kind == 0 ? pick_backward<0>(mode, inclusive, sign, need_neg)
                        : kind == 1 ? pick_backward<1>(mode, inclusive, sign, need_neg)
                                    : pick_backward<2>(mode, inclusive, sign, need_neg);
    const int64_t blocks = (N + block - 1) / block;
    std::vector<double> fire_part(blocks, 0.0), reset_part(blocks, 0.0);
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> mem(T * block);
      for (int64_t b = begin; b < end; ++b) {
        const int64_t i0 = b * block;
        fn(xp, gp, op, mem.data(), T, N, i0, std::min(N, i0 + block) - i0, c, &fire_part[b], &reset_part[b]);
      }
    });
    result[0] = out;
    if (need_neg) {  // block partial sums in block order: the same result for any number of threads
      double fire = 0.0, reset = 0.0;
      for (int64_t b = 0; b < blocks; ++b) {
        fire += fire_part[b];
        reset += reset_part[b];
      }
      const auto options = x.options();
      if (has_reset) {  // a clamped θ⁻: the firing condition's and the reset's parameters apart
        if (has_neg) result[1] = torch::full({}, fire, options);
        if (T > 1) result[2] = torch::full({}, reset, options);
      } else if (has_neg) {
        result[1] = torch::full({}, fire + reset, options);
      }
    }
    return result;
  }
};

}  // namespace

Tensor leaky(Tensor x, std::optional<Tensor> neg_param, std::optional<Tensor> reset_param, double beta,
             double threshold, int64_t mode, double neg_threshold, double add_back, bool inclusive, int64_t kind,
             double p0, double p1, double p2, bool sign) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.dim() >= 1 && x.size(0) >= 1,
              "leaky: x must be a CPU float32 tensor [T, ...] with T >= 1");
  TORCH_CHECK(mode >= kSubtract && mode <= kTernary && kind >= 0 && kind <= 2, "leaky: bad mode or kind");
  return LeakyFunction::apply(x, neg_param, reset_param, beta, threshold, mode, neg_threshold, add_back, inclusive,
                              kind, p0, p1, p2, sign);
}
"""


def _isa_flags() -> tuple[str, list[str]]:
    """The instruction set PyTorch uses on this CPU, as a name tag and compiler flags (x86-64 with GCC/Clang only;
    the vector width changes no result: every operation is elementwise IEEE arithmetic, without contraction)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or platform.system() == "Windows":
        return "base", []
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512"):
        return "avx512", ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mprefer-vector-width=512"]
    if capability == "AVX2":
        return "avx2", ["-mavx2"]
    return "base", []


def extension_name() -> str:
    """The extension's name: version and instruction set (one cached build of each)."""
    return f"snnrl_sb3_leaky_v{_VERSION}_{_isa_flags()[0]}"


def build_flags() -> tuple[list[str], list[str]]:
    """``(extra_cflags, extra_ldflags)``: optimised, no contraction, no fast-math; OpenMP threads on Linux
    (elsewhere the loops run on one thread). ``-fno-trapping-math`` lets the compiler vectorise the
    comparisons (it may evaluate them on every lane); like the other flags it changes no value."""
    if platform.system() == "Windows":
        return ["/O2", "/fp:precise"], []
    cflags = ["-O3", "-ffp-contract=off", "-fno-trapping-math", *_isa_flags()[1]]
    if platform.system() == "Linux":
        return [*cflags, "-fopenmp"], ["-fopenmp"]
    return cflags, []


def _build() -> Any:
    from torch.utils.cpp_extension import load_inline

    cflags, ldflags = build_flags()
    return load_inline(extension_name(), cpp_sources=[SOURCE], functions=["leaky"], extra_cflags=cflags,
                       extra_ldflags=ldflags)


class CppKernels:
    """The extension, built lazily on first use; ``None`` once building has failed (for the process)."""

    failed: ClassVar[str | None] = None  # shared: one failure turns the backend off for the process
    module: ClassVar[Any] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def load(cls) -> Any:
        """The compiled module, building it on the first call; ``None`` when building failed."""
        if cls.module is None and cls.failed is None:
            with cls._lock:
                if cls.module is None and cls.failed is None:
                    try:
                        cls.module = _build()
                    except Exception as err:  # no compiler, no ninja, unsupported platform ...: eager kernels
                        cls.failed = f"{type(err).__name__}: {err}"
                        first_line = (cls.failed.strip().splitlines() or [cls.failed])[0]
                        warnings.warn(f"backend='cpp' is unavailable ({first_line}); using the eager kernels",
                                      RuntimeWarning, stacklevel=4)
        return cls.module


def surrogate_code(surrogate: Surrogate) -> tuple[int, float, float, float] | None:
    """The C++ kernels' surrogate: ``(kind, p0, p1, p2)`` with the constants of its ``grad_times`` (computed
    here exactly as there), or ``None`` for a surrogate they do not implement."""
    if type(surrogate) is ATan:
        c = 2.0 / surrogate.alpha
        return 0, c, c * (math.pi / 2 * surrogate.alpha) ** 2, 0.0
    if type(surrogate) is Trapezoid:
        if surrogate.w1 == surrogate.w2:
            return 1, surrogate.w2, surrogate.height, 0.0
        return 2, surrogate.w2, -(surrogate.height / (surrogate.w2 - surrogate.w1)), surrogate.height
    return None


def _cpu_float32(tensor: Tensor | None) -> bool:
    return tensor is None or (tensor.device.type == "cpu" and tensor.dtype == torch.float32 and tensor.dim() == 0)


def leaky(x: Tensor, neg_param: Tensor | None, reset_param: Tensor | None, beta: float, threshold: float,
          mode: int, neg_threshold: float | None, neg_reset: float | None, inclusive: bool, surrogate: Surrogate,
          sign_branches: bool) -> Tensor | None:
    """Spikes of a leaky neuron over ``x[T, B, ...]`` by the C++ kernels, or ``None`` where they do not apply
    (then the caller runs the eager kernels).

    The arguments are those of :class:`~snnrl_sb3.kernels.leaky.LeakyKernel`: ``neg_param`` the 0-dim
    θ⁻ tensor of the firing condition (``None``: fixed or binary), ``neg_threshold`` its value (``None``
    for the binary neuron), ``reset_param`` / ``neg_reset`` the θ⁻ the reset adds when it is another
    tensor (a clamped θ⁻'s raw value); ``mode`` one of :data:`MODE_SUBTRACT`, :data:`MODE_ZERO`,
    :data:`MODE_TERNARY`.
    """
    code = surrogate_code(surrogate)
    if code is None or x.device.type != "cpu" or x.dtype != torch.float32:
        return None
    if not (_cpu_float32(neg_param) and _cpu_float32(reset_param)):
        return None
    module = CppKernels.load()
    if module is None:
        return None
    neg = 0.0 if neg_threshold is None else neg_threshold
    add_back = neg if neg_reset is None else neg_reset
    kind, p0, p1, p2 = code
    return module.leaky(x, neg_param, reset_param, beta, threshold, mode, neg, add_back, inclusive, kind, p0, p1, p2,
                        sign_branches)
