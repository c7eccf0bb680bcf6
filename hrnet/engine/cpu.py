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
            "NPY_ENABLE_CPU_FEATURES": "SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2",
            "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS's AVX2 kernels (numpy's and scipy's matmul)
        },
        ("avx2", "fma", "f16c"),
    ),
}
# numpy's dispatch targets above AVX2: enabled in a numpy imported before the pin
_NUMPY_ABOVE_AVX2 = ("AVX512F", "AVX512CD", "AVX512_SKX", "AVX512_CLX", "AVX512_ICL", "AVX512_SPR")


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


def pin_cpu(threads: int = 0, isa: str = "", *, where: str = "launch") -> None:
    """Set torch's CPU threads (``threads > 0``) and the instruction set the CPU kernels of numpy,
    ATen, oneDNN and MKL use (``isa``: ``avx2``; ``""`` leaves the libraries' own choice).

    A CPU without the set (or not x86-64) keeps its own kernels, with a warning: its results may
    differ in the last digits from a pinned machine's. Must run before this process imports numpy
    (torch imports it); a pin that comes too late raises HRNetError.
    """
    if isa:
        if isa not in ISAS:
            raise HRNetError(
                f"{where}: cpu_isa {isa!r} is not one of {', '.join(ISAS)} ('' for the CPU's own)"
            )
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
            os.environ.update(env)
            import numpy
            import torch

            wider = [name for name in _NUMPY_ABOVE_AVX2 if _numpy_features(numpy).get(name)]
            got = torch.backends.cpu.get_cpu_capability()
            if wider or got.lower() != env["ATEN_CPU_CAPABILITY"]:
                raise HRNetError(
                    f"{where}: cpu_isa {isa} set too late: this process already runs "
                    f"{', '.join(wider) or got} kernels (numpy and torch were imported or used before "
                    f"the pin; set {', '.join(env)} in the environment before Python starts)"
                )
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _numpy_features(numpy) -> dict[str, bool]:
    """numpy's CPU features as it dispatches them (after NPY_ENABLE_CPU_FEATURES)."""
    core = getattr(numpy, "_core", None) or numpy.core
    return dict(getattr(core._multiarray_umath, "__cpu_features__", {}))


def cpu_tags() -> dict[str, str]:
    """What this process's CPU results depend on, as MLflow tags."""
    import torch

    return {
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": str(torch.get_num_threads()),
    }
