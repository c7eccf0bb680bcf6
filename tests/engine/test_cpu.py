"""Pinning the CPU kernels' instruction set: numpy, ATen and oneDNN run the pinned set, a late pin
is an error, a CPU without the set keeps its own kernels with a warning. On a CPU whose widest set
is AVX2 the pin changes nothing, so these tests can only catch a missing pin on a wider (AVX-512)
CPU; the same holds for the DVC test that runs the digits chain with the project's params.yaml
(`cpu_isa: avx2`), where a pin after numpy's import fails `hrnet train` and `hrnet evaluate`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hrnet.engine import cpu

FLAGS = cpu.cpu_flags()
HAS_AVX2 = FLAGS is not None and {"avx2", "fma"} <= FLAGS

CONV = (
    "import numpy, hashlib; x = numpy.linspace(-20, 3, 10001); "
    "print('exp', hashlib.md5(numpy.exp(x).tobytes() + numpy.log1p(x + 21).tobytes()).hexdigest()); "
    "import torch; torch.manual_seed(0); "
    "conv = torch.nn.Conv2d(16, 16, 3); x = torch.randn(16, 16, 24, 24, requires_grad=True); "
    "conv(x).square().sum().backward(); "
    "print('grad', hashlib.md5(x.grad.numpy().tobytes()).hexdigest()); "
    "print('aten', torch.backends.cpu.get_cpu_capability())"
)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in cpu.ISAS["avx2"][0]}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(not HAS_AVX2, reason="this CPU has no AVX2")
def test_pinned_avx2_reaches_numpy_aten_and_onednn_and_equals_a_run_started_under_the_variables() -> None:
    pinned = _python(f"from hrnet.engine.cpu import pin_cpu; pin_cpu(1, 'avx2'); {CONV}", ONEDNN_VERBOSE="1")
    assert pinned.returncode == 0, pinned.stderr
    assert "aten AVX2" in pinned.stdout
    # oneDNN names the ISA it dispatches to and the kernel of each convolution it runs
    tail = pinned.stdout[-2000:]
    assert "isa:Intel AVX2" in pinned.stdout and "convolution,jit:avx2" in pinned.stdout, tail
    # the same computation in a process started with the libraries' own variables set by hand
    by_hand = _python(f"import torch; torch.set_num_threads(1); {CONV}", **cpu.ISAS["avx2"][0])
    results = [line for line in pinned.stdout.splitlines() if line.startswith(("exp", "grad"))]
    assert len(results) == 2
    assert results == [line for line in by_hand.stdout.splitlines() if line.startswith(("exp", "grad"))]
    numpy_side = _python(
        "from hrnet.engine.cpu import pin_cpu; pin_cpu(0, 'avx2'); import numpy, threadpoolctl; "
        "print(sorted(k for k, v in numpy._core._multiarray_umath.__cpu_features__.items() if v)); "
        "print([i.get('architecture') for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'])"
    )
    assert numpy_side.returncode == 0, numpy_side.stderr
    features, openblas = numpy_side.stdout.splitlines()[-2:]
    assert "'AVX2'" in features and "AVX512F'" not in features
    assert openblas.strip("[]'") == "Haswell"  # OpenBLAS's AVX2 kernels


@pytest.mark.skipif(not HAS_AVX2, reason="this CPU has no AVX2")
def test_a_pin_after_torch_ran_kernels_is_an_error_naming_the_variables() -> None:
    late = _python(
        f"{CONV}\nfrom hrnet.engine.cpu import pin_cpu\npin_cpu(0, 'avx2', where='params.yaml launch')",
        ATEN_CPU_CAPABILITY="default",
    )
    assert late.returncode != 0
    assert "params.yaml launch: cpu_isa avx2 set too late" in late.stderr
    assert "ATEN_CPU_CAPABILITY" in late.stderr and "NPY_ENABLE_CPU_FEATURES" in late.stderr


def test_a_cpu_without_the_set_keeps_its_kernels_and_says_so(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"sse2", "avx"}))
    monkeypatch.setattr(cpu.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    cpu.pin_cpu(0, "avx2", where="p.yaml launch")
    assert (
        "p.yaml launch: cpu_isa avx2 not applied on this CPU (x86_64: it lacks avx2, fma, f16c)"
        in capsys.readouterr().err
    )
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ
    with pytest.raises(cpu.HRNetError, match="cpu_isa 'sse9' is not one of avx2"):
        cpu.pin_cpu(0, "sse9")


def test_cpu_flags_reads_the_flags_line(tmp_path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 fma\n\n")
    assert cpu.cpu_flags(info) == {"fpu", "sse2", "avx2", "fma"}
    assert cpu.cpu_flags(tmp_path / "missing") is None


FAULTS = (
    "import hashlib, resource, sys, torch\n"
    "from hrnet.engine.cpu import keep_freed_memory\n"
    "applied = keep_freed_memory() if sys.argv[1] == '1' else False\n"
    "torch.set_num_threads(1); torch.manual_seed(0)\n"
    "conv = torch.nn.Sequential(torch.nn.Conv2d(8, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 8, 3))\n"
    "x = torch.randn(16, 8, 48, 48)\n"
    "def step():\n"
    "    conv.zero_grad(); conv(x).square().mean().backward()\n"
    "    blocks = [torch.empty((s << 20) // 4).fill_(1.0) for s in (1, 3, 6, 12, 24, 2, 8)]\n"
    "    del blocks\n"
    "step(); before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "for _ in range(10): step()\n"
    "faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
    "grads = b''.join(p.grad.numpy().tobytes() for p in conv.parameters())\n"
    "print(applied, faults, hashlib.md5(grads).hexdigest())\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_freed_memory_saves_page_faults_and_changes_no_result():
    def run(flag: str) -> tuple[str, int, str]:
        out = subprocess.run(
            [sys.executable, "-c", FAULTS, flag], capture_output=True, text=True, check=True
        ).stdout.split()
        return out[0], int(out[1]), out[2]

    default, kept = run("0"), run("1")
    if kept[0] != "True":
        pytest.skip("not glibc: keep_freed_memory changes nothing")
    assert kept[2] == default[2], "the gradients differ with the allocator settings"
    # glibc's defaults map and fault in the large blocks again on every step
    assert kept[1] * 3 < default[1], (kept[1], default[1])
