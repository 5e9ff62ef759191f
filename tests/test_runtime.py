"""Process set-up: the allocator setting every job and CLI applies (`runtime.keep_memory`)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Page faults of the last of four 64 MB allocations, after `engine.runtime.setup`
# with the given `keep_memory`. 64 MB is above glibc's largest mmap threshold,
# so by default each one is a fresh mapping that faults in page by page.
_PROBE = """
import resource, sys
import numpy as np
from engine.runtime import DistEnv, RuntimeConfig, setup
setup(RuntimeConfig(keep_memory=sys.argv[1] == "keep"), DistEnv())
counts = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(64 * 2**20 // 8)
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del block
print(counts[-1])
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_kept_memory_is_reused_without_page_faults():
    released, kept = _faults("release"), _faults("keep")
    assert released > 0, "the probe should fault with glibc's defaults"
    assert kept * 10 <= released, (kept, released)
