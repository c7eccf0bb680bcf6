"""Pin what results on the CPU depend on: torch's thread count and its kernels' instruction set.

numpy's and ATen's vectorised kernels, OpenBLAS (numpy's matrix products) and oneDNN
(convolutions) pick the widest instruction set the CPU offers, and so does MKL (torch's matrix
products) on Intel CPUs. A sum split into 16 lanes
(AVX-512) rounds differently from one split into 8 (AVX2), and training amplifies the difference:
the same commit, seed and thread count gave segmentation mIoU 0.744 on an AVX-512 machine and
0.767 on an AVX2 one; pinned to AVX2, the AVX-512 machine gives 0.767 too. The pin is a set of
environment variables, read by each library when it starts: ``hrnet train`` and ``hrnet
evaluate`` set them before they import numpy or torch.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from hrnet.errors import HRNetError

# name -> (the environment that pins each library, the CPU flags it needs). Each library reads its
# variable once: numpy and its OpenBLAS when numpy is imported, ATen at its first kernel, oneDNN
# and MKL at their first call. Each counts: numpy's float64 exp and log1p differ in the last bit
# between its AVX-512 and AVX2 paths, and OpenBLAS's SkylakeX kernels (picked on an AVX-512 CPU)
# round the pose row's small affine products differently from its Haswell ones: pinned but for
# OpenBLAS, the pose row gave keypoint AP 0.379 on an AVX-512 machine against 0.375 on AVX2.
ISAS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "avx2": (
        {
            "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            # numpy 2.0-2.3's names (the lock's numpy; 2.4 groups them as X86_V2..V4)
            "NPY_ENABLE_CPU_FEATURES": "SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2",
            "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS's AVX2 kernels (numpy's and scipy's matmul)
        },
        ("avx2", "fma", "f16c"),
    ),
}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The instruction-set flags of this CPU (Linux), or ``None`` where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


def check_isa(isa: str, where: str) -> None:
    """Raise HRNetError naming ``where`` when ``isa`` is not a known instruction set (or "")."""
    if isa and isa not in ISAS:
        raise HRNetError(f"{where}: cpu_isa {isa!r} is not one of {', '.join(ISAS)} ('' for the CPU's own)")


def pin_cpu(threads: int = 0, isa: str = "", *, where: str = "launch") -> None:
    """Set torch's CPU threads (``threads > 0``) and the instruction set the CPU kernels of numpy,
    OpenBLAS, ATen, oneDNN and MKL use (``isa``: ``avx2``; ``""`` leaves the libraries' own choice).

    A CPU without the set (or not x86-64) keeps its own kernels, with a warning: its results may
    differ in the last digits from a pinned machine's. Must run before this process imports numpy
    (torch imports it). A pin that comes too late raises HRNetError where it would change
    something (on a CPU with instruction sets wider than the pinned one).
    """
    check_isa(isa, where)
    if isa:
        env, needs = ISAS[isa]
        flags = cpu_flags() if platform.machine().lower() in ("x86_64", "amd64") else frozenset()
        missing = None if flags is None else [flag for flag in needs if flag not in flags]
        if missing is None or missing:
            why = "its flags cannot be read" if missing is None else f"it lacks {', '.join(missing)}"
            print(
                f"warning: {where}: cpu_isa {isa} not applied on this CPU ({platform.machine()}: {why}); "
                "its own kernels run, so its numbers can differ slightly from those of a pinned machine",
                file=sys.stderr,
            )
        else:
            os.environ.pop("NPY_DISABLE_CPU_FEATURES", None)  # numpy refuses both at once
            os.environ.update(env)
            import numpy
            import torch

            numpy_wider = numpy._core._multiarray_umath.__cpu_features__["AVX512F"]
            got = torch.backends.cpu.get_cpu_capability()
            if numpy_wider or got.lower() != env["ATEN_CPU_CAPABILITY"]:
                raise HRNetError(
                    f"{where}: cpu_isa {isa} set too late: this process already runs "
                    f"{'AVX512F' if numpy_wider else got} kernels (numpy was imported before the pin; "
                    f"set {', '.join(env)} in the environment before Python starts)"
                )
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory a training step frees for the next step.

    By default glibc serves each large block (128 KiB at first, up to 32 MiB as it adapts) with its
    own ``mmap`` and hands the freed top of the heap back to the kernel, so every step's
    activations and gradients fault in fresh zeroed pages: ~50 s of system time in a CPU
    ``make demo``. Fixing the mmap threshold at its maximum (32 MiB) and trimming only above 1 GiB
    keeps those pages mapped (up to 1 GiB freed at the top of the heap stays with the process). Where each block
    comes from changes no result (torch aligns every CPU tensor to 64 bytes either way).
    Returns whether the settings were applied (glibc only; elsewhere nothing changes).
    """
    import ctypes
    import ctypes.util

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    settings = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
    return all(mallopt(param, value) == 1 for param, value in settings)


def cpu_tags() -> dict[str, str]:
    """What this process's CPU results depend on, as MLflow tags."""
    import torch

    return {
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": str(torch.get_num_threads()),
    }
