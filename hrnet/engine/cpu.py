"""Pin what results on the CPU depend on: torch's thread count and its kernels' instruction set.

ATen's vectorised kernels and oneDNN (convolutions) pick the widest instruction set the CPU offers,
and so does MKL (matrix products) on Intel CPUs. A sum split into 16 lanes (AVX-512) rounds differently from one
split into 8 (AVX2), and training amplifies the difference: the same commit, seed and thread
count gave segmentation mIoU 0.744 on an AVX-512 machine and 0.767 on an AVX2 one. Pinned to
AVX2, the AVX-512 machine gives 0.767 too. Nothing here imports torch before the pin is set: each
of the three libraries reads its setting from the environment when it first runs a kernel.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from hrnet.errors import HRNetError

# name -> ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, the CPU flags it needs
ISAS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "avx2": ("avx2", "AVX2", "AVX2", ("avx2", "fma")),
    "avx512": ("avx512", "AVX512_CORE", "AVX512", ("avx512f", "avx512bw", "avx512vl", "avx512dq")),
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


def pin_cpu(threads: int = 0, isa: str = "", *, where: str = "launch") -> None:
    """Set torch's CPU threads (``threads > 0``) and the instruction set its kernels use
    (``isa``: ``avx2`` or ``avx512``; ``""`` leaves the libraries' own choice).

    A CPU without the set (or not x86-64) keeps its own kernels, with a warning: its results may
    differ in the last digits from a pinned machine's. Must run before torch's first CPU kernel
    in this process; after that ATen's choice is fixed and this raises HRNetError.
    """
    if isa:
        if isa not in ISAS:
            raise HRNetError(
                f"{where}: cpu_isa {isa!r} is not one of {', '.join(ISAS)} ('' for the CPU's own)"
            )
        aten, onednn, mkl, needs = ISAS[isa]
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
            os.environ["ATEN_CPU_CAPABILITY"] = aten
            os.environ["ONEDNN_MAX_CPU_ISA"] = onednn
            os.environ["MKL_ENABLE_INSTRUCTIONS"] = mkl
            import torch

            got = torch.backends.cpu.get_cpu_capability()
            if got.lower() != aten:
                raise HRNetError(
                    f"{where}: cpu_isa {isa} set too late: torch already runs {got} kernels in this "
                    "process (set ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and MKL_ENABLE_INSTRUCTIONS "
                    "before it starts)"
                )
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def cpu_tags() -> dict[str, str]:
    """What this process's CPU results depend on, as MLflow tags."""
    import torch

    return {
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": str(torch.get_num_threads()),
    }
