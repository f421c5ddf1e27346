"""Let glibc's malloc keep freed memory for the next forward pass instead of handing it back to the kernel.

A CPU forward pass allocates and frees the same activation buffers every time. By default glibc serves a block
above its mmap threshold (128 KiB at first, raised as blocks are freed, at most 32 MiB) with a fresh `mmap`, and
gives the top of the heap back once more than twice that is free, so every pass faults its buffers in again a
page at a time, and the kernel zeroes each page. On the development machine that was 14,000 page faults and 40 %
of EfficientNet-Lite0's time per 448-px image (104 → 66 ms with both thresholds fixed; docs/PERFORMANCE.md). Fixed
thresholds keep blocks up to 32 MiB on the heap and up to 1 GiB of free heap in the process, which is what
jemalloc or tcmalloc under `LD_PRELOAD` (PyTorch's CPU tuning guide) achieve, with nothing to install.

`captioner` commands call `keep_freed_memory()` once at start; Python users may call it themselves. Set
CAPTIONER_MALLOC=default to leave malloc as it is. Elsewhere than glibc (macOS, musl) it does nothing.
"""

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024  # the largest glibc accepts on 64-bit systems: bigger blocks still get an mmap
TRIM_THRESHOLD = 1024 * 1024 * 1024  # free memory kept at the heap's top before any is returned
OPT_OUT = "CAPTIONER_MALLOC"


def keep_freed_memory() -> bool:
    """Fix malloc's mmap and trim thresholds (process-wide, for later allocations). True when they were set."""
    if os.environ.get(OPT_OUT, "").lower() == "default":
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    # both, or neither: setting one alone turns off the dynamic threshold and leaves the other at its small default
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def _mallopt():
    """glibc's mallopt(int, int) -> int, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(None)  # the symbols this process has loaded: its C library's among them
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc's mallopt takes these parameter numbers
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
