"""CPU kernels of our own (`cpu_kernels.cc`), compiled with Paddle's C++ extension API on first use.

`runtime.kernels: compiled` builds a training program's dropout, LUKE's
attention softmax, layer norms, bias adds and GELU (`engine.ops`) and the
AdamW update (`engine.optim.CompiledAdamW`) from these: multi-threaded and
vectorised where Paddle 3.3.1's CPU kernels run on one thread
(docs/benchmarks.md measures each):
- `counter_dropout`: the same inverted dropout (keep probability exact to
  2⁻³², kept values scaled by 1/(1-p)) with its mask a hash of (step seed, op
  index, element index) instead of Paddle's Mersenne-twister draws: the same
  whatever the thread count, recomputed in the backward pass rather than
  stored. The masks differ from Paddle's, so a run keeps the kernels it
  started with for its resumes.
- `attention_probs`: dropout(softmax(scores · scale + mask)) in one op.
- `fused_layer_norm`: layer norm over the last axis, its gradient included.
- `bias_add`, `bias_gelu`: a dense layer's bias (and GELU), the bias gradient a column sum.
- `adamw_`: Paddle's AdamW update in place.

The library is built once per source, flags and CPU into Paddle's extension
directory (`$PADDLE_EXTENSION_DIR`, else `~/.cache/paddle_extensions`), under a
file lock so the ranks of a job on one machine build it once; it needs a C++
compiler (`$CXX`, else `c++`) and takes about 15 s.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
from pathlib import Path

from engine.errors import ConfigError

SOURCE = Path(__file__).with_name("cpu_kernels.cc")
# -fno-math-errno lets loops over sqrt vectorise (the AdamW update twice as fast); exp is our own (cpu_kernels.cc).
CXX_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]


def counter_dropout(x, seed, p: float, index: int):
    """Inverted dropout of float32 `x` at rate `p`, its mask a function of `seed` (int32 [1]) and `index`.

    Ops of one program need distinct indices (`engine.ops.StepDropout` numbers them).
    """
    return kernels().counter_dropout(x, seed, float(p), int(index))


_loaded = None  # the module, once built or found: Paddle registers a library's ops once per process


def kernels():
    """The compiled module (built on the first call of any process that lacks it)."""
    global _loaded
    if _loaded is None:
        _loaded = _build()
    return _loaded


def _build():
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise ConfigError(f"runtime.kernels: compiled builds C++ kernels on first use and needs a C++ compiler "
                          f"('{compiler}' is not on PATH; set $CXX or install g++), or use runtime.kernels: paddle")
    import paddle
    from paddle.utils.cpp_extension import get_build_directory, load

    # Paddle's own OpenMP runtime where the wheel ships it: a second runtime's threads would spin
    # beside its MKL threads on the same cores (measured: the LUKE step 15 % slower with libgomp).
    iomp = Path(paddle.__file__).parent / "libs" / "libiomp5.so"
    link = ["-l:libiomp5.so"] if iomp.exists() else ["-fopenmp"]
    build = [*CXX_FLAGS, *link, _cpu_flags()]  # a build per source, flags and CPU: -march=native
    name = "elmo_luke_cpu_kernels_" + hashlib.sha256(SOURCE.read_bytes() + " ".join(build).encode()).hexdigest()[:12]
    build_dir = Path(get_build_directory()) / name
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / "build.lock", "w") as lock, _stdout_to_stderr():
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return load(name=name, sources=[str(SOURCE)], extra_cxx_cflags=CXX_FLAGS,
                        extra_ldflags=link, build_directory=str(build_dir), verbose=False)
        except Exception as exc:  # the compiler's own output is above, on stderr
            raise ConfigError(f"runtime.kernels: compiled: building {SOURCE.name} failed ({exc}); "
                              "use runtime.kernels: paddle") from exc


@contextlib.contextmanager
def _stdout_to_stderr():
    """The build's chatter (Paddle prints it, and its compiler subprocess) goes to stderr: stdout is for results."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _cpu_flags() -> str:
    """The CPU's feature flags (/proc/cpuinfo), so a shared cache never serves one CPU another's build."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""
