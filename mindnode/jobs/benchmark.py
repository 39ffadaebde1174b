"""The provider benchmark: what a node can lend, measured, so its provider record (hardware class
and score) is not self-declared.

Measured: float32 matrix-multiply throughput (GFLOP/s) with torch on the CPU (all threads torch
uses) and, when CUDA is present, on each GPU; total memory; GPU model and memory. Figures are
noisy on a shared machine (other processes compete for the cores): the score is the best of a few
timed runs, and it is a ranking hint for the scheduler, not a promise.

Derived for the chain (`ledger.jobs` provider record; classes of `ledger.genesis.Params`):

* ``score`` = floor(best GFLOP/s) (at least 1): CPU-only nodes use the CPU figure, GPU nodes the
  best GPU's;
* ``hardware_class``: no CUDA -> ``cpu``; a GPU with >= 40 GiB memory -> ``gpu-datacenter``;
  >= 16 GiB or >= 40,000 GFLOP/s -> ``gpu-high``; any other CUDA GPU -> ``gpu-consumer``.

`torch` is imported inside `run`, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field

from mindnode.jobs.errors import BenchmarkError

GIB = 1 << 30


@dataclass
class DeviceResult:
    device: str                 # "cpu" or "cuda:N"
    name: str
    gflops: float
    matmul_n: int
    runs: int
    memory_bytes: int
    threads: int = 0


@dataclass
class BenchResult:
    hardware_class: str
    score: int
    cpu: DeviceResult
    gpus: list[DeviceResult] = field(default_factory=list)
    memory_bytes: int = 0
    cpu_count: int = 0
    torch_version: str = ""
    platform: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def classify(gpus: list[DeviceResult]) -> str:
    if not gpus:
        return "cpu"
    best = max(gpus, key=lambda g: (g.memory_bytes, g.gflops))
    if best.memory_bytes >= 40 * GIB:
        return "gpu-datacenter"
    if best.memory_bytes >= 16 * GIB or max(g.gflops for g in gpus) >= 40_000:
        return "gpu-high"
    return "gpu-consumer"


def _time_matmul(torch, device: str, n: int, seconds: float, sync) -> tuple[float, int]:
    """Best GFLOP/s of repeated n x n float32 matmuls within about `seconds`."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    torch.matmul(a, b)          # warm-up (allocations, kernels, thread pool)
    sync()
    best, runs, deadline = 0.0, 0, time.perf_counter() + seconds
    while runs < 3 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync()
        dt = time.perf_counter() - t0
        runs += 1
        if dt > 0:
            best = max(best, 2 * n**3 / dt / 1e9)
        if runs >= 10_000:
            break
    return best, runs


def run(seconds: float = 1.0, n: int = 512) -> BenchResult:
    if not 0 < seconds <= 600:
        raise BenchmarkError("benchmark time must be in (0, 600] seconds")
    if not 16 <= n <= 16_384:
        raise BenchmarkError("matrix size must be 16..16384")
    try:
        import torch
    except ImportError:
        raise BenchmarkError("the benchmark needs torch (pip install torch)") from None
    gflops, runs = _time_matmul(torch, "cpu", n, seconds, lambda: None)
    cpu = DeviceResult(device="cpu", name=platform.processor() or platform.machine(), gflops=round(gflops, 2),
                       matmul_n=n, runs=runs, memory_bytes=total_memory(), threads=torch.get_num_threads())
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            dev = f"cuda:{i}"
            props = torch.cuda.get_device_properties(i)
            gn = max(n, 2048)
            gf, gr = _time_matmul(torch, dev, gn, seconds, lambda d=dev: torch.cuda.synchronize(d))
            gpus.append(DeviceResult(device=dev, name=props.name, gflops=round(gf, 2), matmul_n=gn, runs=gr,
                                     memory_bytes=int(props.total_memory)))
    best = max([g.gflops for g in gpus], default=cpu.gflops)
    return BenchResult(hardware_class=classify(gpus), score=max(1, int(best)), cpu=cpu, gpus=gpus,
                       memory_bytes=total_memory(), cpu_count=os.cpu_count() or 0,
                       torch_version=torch.__version__, platform=platform.platform())
