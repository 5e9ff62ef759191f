"""CPU kernels of our own (`cpu_kernels.cc`), compiled with Paddle's C++ extension API on first use.

`runtime.dropout: counter` switches a training program's dropout to
`counter_dropout`: the same inverted dropout (keep probability exact to
2⁻³², kept values scaled by 1/(1-p)) with its mask a hash of (step seed, op
index, element index) instead of Paddle's Mersenne-twister draws: multi-threaded,
the same whatever the thread count, and recomputed in the backward pass rather than
stored (docs/benchmarks.md measures it). The masks differ from Paddle's
dropout's, so a run keeps the kernel it started with for its resumes.

The library is built once per source version into Paddle's extension
directory (`$PADDLE_EXTENSION_DIR`, else `~/.cache/paddle_extensions`), under a
file lock so the ranks of a job on one machine build it once; it needs a C++
compiler (`$CXX`, else `c++`) and takes about 10 s.
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
        raise ConfigError(f"runtime.dropout: counter compiles a C++ kernel on first use and needs a C++ compiler "
                          f"('{compiler}' is not on PATH; set $CXX or install g++), or use runtime.dropout: paddle")
    import paddle
    from paddle.utils.cpp_extension import get_build_directory, load

    # Paddle's own OpenMP runtime where the wheel ships it: a second runtime's threads would spin
    # beside its MKL threads on the same cores (measured: the LUKE step 15 % slower with libgomp).
    iomp = Path(paddle.__file__).parent / "libs" / "libiomp5.so"
    link = ["-l:libiomp5.so"] if iomp.exists() else ["-fopenmp"]
    source = SOURCE.read_bytes() + " ".join(link).encode()
    name = "elmo_luke_cpu_kernels_" + hashlib.sha256(source).hexdigest()[:12]
    build_dir = Path(get_build_directory()) / name
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / "build.lock", "w") as lock, _stdout_to_stderr():
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return load(name=name, sources=[str(SOURCE)], extra_cxx_cflags=["-O3", "-fopenmp"],
                        extra_ldflags=link, build_directory=str(build_dir), verbose=False)
        except Exception as exc:  # the compiler's own output is above, on stderr
            raise ConfigError(f"runtime.dropout: counter: building {SOURCE.name} failed ({exc}); "
                              "use runtime.dropout: paddle") from exc


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
