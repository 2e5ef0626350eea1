"""One settings object for the whole package: CPU threads, compute device, offline mode; and the launcher's rank.

>>> from scouter_local.runtime import settings
>>> settings.offline, settings.device
(True, 'auto')

``settings.threads`` starts from ``$SCOUTER_LOCAL_THREADS`` (else the usable cores, at most 8) and is applied to
torch by :meth:`Settings.apply_threads` wherever torch computes (embedding, training, benchmark runs).
"""

from __future__ import annotations

import os
import re
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: Environment variables that keep transformers and huggingface_hub from reaching a model hub.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
DEVICES = ("auto", "cpu", "cuda")
#: Seed of splits and methods where none is given (scouter-learn's default).
DEFAULT_SEED = 24


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _default_threads() -> int:
    env = os.environ.get("SCOUTER_LOCAL_THREADS")
    return max(1, int(env)) if env else max(1, min(_usable_cores(), 8))


@dataclass
class Settings:
    """Package-wide settings.

    Attributes
    ----------
    threads
        Torch intra-op threads on CPU.
    device
        ``auto`` (CUDA when torch sees a GPU, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; the default of every
        ``device`` parameter.
    offline
        Keep transformers / huggingface_hub from reaching a hub (their offline variables are set on import);
        a model is fetched only with an explicit ``allow_download=True``.
    """

    threads: int = field(default_factory=_default_threads)
    device: str = "auto"
    offline: bool = True

    def apply_environment(self) -> None:
        """Set, before torch or a hub library is imported (a value the user already exported is kept): the hub
        libraries' offline variables, and OpenMP threads that sleep rather than spin while they wait (on a busy
        machine spinning threads made a CPU training epoch 11× slower, with identical results)."""
        if self.offline:
            for name in OFFLINE_VARIABLES:
                os.environ.setdefault(name, "1")
            os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    def apply_threads(self, threads: int | None = None) -> int:
        """Set torch's intra-op threads to ``threads`` (default :attr:`threads`); returns the number set."""
        import torch

        n = max(1, threads or self.threads)
        torch.set_num_threads(n)
        return n

    def torch_device(self, device: str | None = None) -> str:
        """The torch device for ``device`` (default :attr:`device`): ``auto`` → ``cuda`` when torch sees a GPU,
        else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are checked and kept."""
        import torch

        from gene_corpus.errors import InputError

        device = device or self.device
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
            raise InputError(f"device={device!r}: expected one of {', '.join(DEVICES)}, cuda:N or mps")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"device {device} requested but torch sees no CUDA GPU; use device='cpu'")
        return device


settings = Settings()


def launcher_rank() -> tuple[int, int] | None:
    """``(rank, world size)`` inside ``accelerate launch`` / ``torchrun`` with more than one process, else ``None``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else None


def own_peak_rss_mib() -> float:
    """Peak resident memory of this process alone (``VmHWM``; ``ru_maxrss`` where there is no ``/proc``, which on
    Linux also counts a parent's peak carried over a fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
