"""The fast tier's data: synthetic screens, a tiny corpus and embedding set, and a deterministic encoder stand-in.

Nothing here reads ``../shared/data`` or loads a model (loaded by ``tests/conftest.py`` for its fixtures):

- :func:`cell_screen`: single cells (control, singles, combinations; log-normalised) with a known shift planted per
  condition, and :func:`delta_file`, its pseudo-bulk deltas as the Replogle file lays them out;
- :func:`factor_screen`: pseudo-bulk deltas from latent factors, with an embedding that carries the factors and a
  shuffled one that does not;
- :func:`write_corpus_files` / :func:`tiny_corpus`: a gene table, aliases, Ensembl ids and texts of the screens'
  genes, imported with gene_corpus; :func:`embedding_set` and :func:`write_embedding_csv` for vectors;
- :class:`HashEncoder`: the ``Encoder`` interface (``encode``, ``dim``, ``stats``, ``spec``) with vectors from a
  hash of each text, swapped in by the :func:`stand_in` fixture, so ``embed`` runs its cache, reuse, shard and
  finalise logic with no model.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scouter_local.data.options import DataOptions

#: Perturbed genes of the synthetic screens: symbol, Entrez id, Ensembl id, an old symbol (alias), a text.
GENES = pd.DataFrame(
    [
        ("SYN1", 901, "ENSG00000900001", "OLD1", "A kinase of the synthetic stress pathway."),
        ("SYN2", 902, "ENSG00000900002", "", "A phosphatase that opposes SYN1 in the stress pathway."),
        ("SYN3", 903, "ENSG00000900003", "OLD3", "A transcription factor of erythroid cells."),
        ("SYN4", 904, "ENSG00000900004", "", "A ribosomal protein of the large subunit."),
        ("SYN5", 905, "ENSG00000900005", "", "A ribosomal protein of the small subunit."),
        ("SYN6", 906, "ENSG00000900006", "", "A membrane transporter of amino acids."),
        ("SYN7", 907, "ENSG00000900007", "", "A chromatin remodeller."),
        ("SYN8", 908, "ENSG00000900008", "", "A splicing factor."),
        ("SYN9", 909, "ENSG00000900009", "", ""),
    ],
    columns=["symbol", "entrez_id", "ensembl_id", "alias", "text"],
)
#: Singles and combinations of :func:`cell_screen` as its ``obs['condition']`` spells them; SYN3 by its old symbol.
#: SYN7+SYN8 has no single of its genes.
CELL_CONDITIONS = ("SYN1", "SYN2", "OLD3", "SYN4", "SYN5", "SYN6", "SYN1+SYN2", "SYN4+SYN5", "SYN2+OLD3", "SYN7+SYN8")
#: How :func:`cell_screen` is read: the Norman file's layout, its main screen only.
CELL_OPTIONS = DataOptions(
    condition_key="condition", control="control", single_format="bare", subset=(("dataset", "main"),)
)
#: Readout genes shifted in each single (a combination shifts the union of its genes').
PLANTED_PER_GENE = 3


def planted_genes(gene: str, n_readout: int) -> list[str]:
    """Readout genes whose expression the single of ``gene`` (``SYNi``) raises in :func:`cell_screen`."""
    i = int(gene.removeprefix("SYN")) - 1
    return [f"r{(PLANTED_PER_GENE * i + j) % n_readout:02d}" for j in range(PLANTED_PER_GENE)]


#: Old symbol → current symbol.
CURRENT = {old: symbol for old, symbol in zip(GENES["alias"], GENES["symbol"]) if old}


def cell_screen(
    *, n_readout: int = 40, n_cells: int = 25, n_control: int = 150, shift: float = 1.5, seed: int = 0
) -> tuple[ad.AnnData, dict[str, list[str]]]:
    """A single-cell screen with known effects.

    Counts are Poisson around a per-gene rate; each perturbed gene multiplies the rates of its
    :func:`planted_genes` by ``exp(shift)``; cells are then library-size normalised and log1p-transformed. Control
    cells of a second screen (``obs['dataset'] == 'other'``, with a SYN9 single) are appended to test ``subset``.

    Returns
    -------
    ``(adata, planted)``: ``adata`` ``(n_cells_total, n_readout)`` sparse float32 with ``obs['condition']``
    (``control``, ``A``, ``A+B``, bare as in the Norman file) and ``obs['dataset']``; ``planted`` maps each
    condition, spelled as the data will (``A+ctrl``, ``A+B`` sorted, current symbols), to its shifted readout genes.
    """
    rng = np.random.default_rng(seed)
    rate = rng.uniform(2.0, 8.0, n_readout)
    readout = [f"r{j:02d}" for j in range(n_readout)]
    blocks, labels, datasets, planted = [], [], [], {}
    groups = [("control", n_control, "main"), *((c, n_cells, "main") for c in CELL_CONDITIONS)]
    groups += [("control", 20, "other"), ("SYN9", n_cells, "other")]
    for label, n, dataset in groups:
        genes = [] if label == "control" else [CURRENT.get(g, g) for g in label.split("+")]
        hit = sorted({r for g in genes for r in planted_genes(g, n_readout)})
        factor = np.where(np.isin(readout, hit), np.exp(shift), 1.0)
        blocks.append(rng.poisson(rate * factor, (n, n_readout)))
        labels += [label] * n
        datasets += [dataset] * n
        if genes and dataset == "main":
            planted["+".join(sorted(genes)) if len(genes) == 2 else f"{genes[0]}+ctrl"] = hit
    counts = np.vstack(blocks).astype(np.float64)
    x = np.log1p(counts / counts.sum(1, keepdims=True) * 1e3)
    adata = ad.AnnData(
        sp.csr_matrix(x.astype(np.float32)),
        obs=pd.DataFrame({"condition": labels, "dataset": datasets}, index=[f"cell{i}" for i in range(len(labels))]),
        var=pd.DataFrame(index=readout),
    )
    return adata, planted


def delta_file(cells: ad.AnnData) -> ad.AnnData:
    """The pseudo-bulk deltas of the singles of a :func:`cell_screen` (``dataset == 'main'``), laid out as the
    Replogle file: one row per target, mean of its cells minus the control mean, ``uns['value']`` =
    ``delta_from_control``, ``obs`` ``target_symbol``, ``target_ensembl``, ``n_cells`` and ``signal_to_noise``
    (energy of the delta over the expected energy of its noise, ``sum(var / n)``)."""
    main = cells[cells.obs["dataset"] == "main"]
    x = main.X.toarray()
    labels = main.obs["condition"].to_numpy()
    control = x[labels == "control"]
    singles = [c for c in CELL_CONDITIONS if "+" not in c]
    rows, snr, n = [], [], []
    for c in singles:
        own = x[labels == c]
        delta = own.mean(0) - control.mean(0)
        noise = (own.var(0, ddof=1) / len(own) + control.var(0, ddof=1) / len(control)).sum()
        rows.append(delta)
        snr.append(float((delta**2).sum() / noise))
        n.append(len(own))
    ensembl = GENES.set_index("symbol")["ensembl_id"]
    obs = pd.DataFrame(
        {
            "target_symbol": singles,
            "target_ensembl": [ensembl[CURRENT.get(c, c)] for c in singles],
            "n_cells": n,
            "signal_to_noise": snr,
        },
        index=[f"row{i}" for i in range(len(singles))],
    )
    return ad.AnnData(
        np.asarray(rows, dtype=np.float32), obs=obs, var=main.var.copy(), uns={"value": "delta_from_control"}
    )


# ------------------------------------------------------------------------------------------------ factor screen
FACTOR_GENES, FACTOR_READOUT, N_FACTORS = 240, 120, 6


class FactorScreen(NamedTuple):
    """Pseudo-bulk deltas from latent factors: ``data`` (read), an ``informative`` embedding (each gene's factors
    plus noise), a ``shuffled`` one (another gene's), the ``split`` (200 training targets, 40 test) and ``truth``
    (condition → noise-free delta)."""

    data: object
    informative: object
    shuffled: object
    split: object
    truth: dict


def factor_screen(seed: int = 0) -> FactorScreen:
    """A pseudo-bulk screen whose embeddings carry known signal (or none): a target's delta is its factors times
    shared loadings plus a mean effect plus noise; ``adata.obs['signal_to_noise']`` is its truth's energy over the
    noise's."""
    from scouter_local.data.read import perturbation_data
    from scouter_local.data.splits import Split
    from scouter_local.embedding.sets import EmbeddingSet

    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(FACTOR_GENES, N_FACTORS))
    loadings = rng.normal(0, 0.4, (N_FACTORS, FACTOR_READOUT))
    truth = factors @ loadings + 0.3  # a shared mean effect, as real screens have
    observed = truth + rng.normal(0, 0.5, truth.shape)
    names = [f"G{i}" for i in range(FACTOR_GENES)]
    snr = (truth**2).sum(1) / (0.5**2 * FACTOR_READOUT)
    adata = ad.AnnData(
        observed.astype(np.float32),
        obs=pd.DataFrame({"target": names, "signal_to_noise": snr}, index=[f"row{i}" for i in range(FACTOR_GENES)]),
        uns={"value": "delta_from_control"},
    )
    adata.var_names = [f"r{j}" for j in range(FACTOR_READOUT)]
    data = perturbation_data(adata, DataOptions(condition_key="target", single_format="bare"))
    vectors = factors + rng.normal(0, 0.3, factors.shape)
    informative = EmbeddingSet("factors", "f", names, np.full(FACTOR_GENES, -1), vectors.astype(np.float32))
    shuffled = EmbeddingSet(
        "shuffled", "s", names, np.full(FACTOR_GENES, -1), vectors[rng.permutation(FACTOR_GENES)].astype(np.float32)
    )
    data.gene_rows = informative.rows()  # the shuffled set holds the same genes in the same rows
    conditions = [f"{n}+ctrl" for n in names]
    split = Split(train=conditions[:200], val=[], test=conditions[200:])
    return FactorScreen(data, informative, shuffled, split, dict(zip(conditions, truth)))


# ------------------------------------------------------------------------------------------------ corpus, vectors
def write_corpus_files(folder: Path) -> list[Path]:
    """The gene table (with aliases and Ensembl ids) and the texts of :data:`GENES`, in gene_corpus's formats: a
    gene-info TSV, RefSeq-style summaries for SYN1-SYN6 and custom texts for SYN7-SYN8 (SYN9 has none)."""
    folder.mkdir(parents=True, exist_ok=True)
    info = GENES.assign(
        gene_name=[f"synthetic gene {s}" for s in GENES["symbol"]],
        gene_type="protein-coding",
        aliases=GENES["alias"],
        ensembl_ids=GENES["ensembl_id"],
        uniprot_ids="",
    )[["entrez_id", "symbol", "gene_name", "gene_type", "aliases", "ensembl_ids", "uniprot_ids"]]
    summaries = info.iloc[:6].assign(refseq_summary=GENES["text"].iloc[:6])
    paths = [folder / "gene_info.tsv", folder / "summaries.tsv", folder / "texts.tsv"]
    info.to_csv(paths[0], sep="\t", index=False)
    summaries[["entrez_id", "symbol", "gene_name", "gene_type", "refseq_summary"]].to_csv(
        paths[1], sep="\t", index=False
    )
    GENES.iloc[6:8][["symbol", "text"]].rename(columns={"symbol": "gene"}).to_csv(paths[2], sep="\t", index=False)
    return paths


def tiny_corpus(db: Path) -> Path:
    """A corpus database of :func:`write_corpus_files` (written beside ``db``)."""
    from gene_corpus import Corpus

    with Corpus.open(db) as corpus:
        corpus.import_files(write_corpus_files(db.parent / "corpus_files"))
    return db


def embedding_set(symbols, *, dim: int = 8, seed: int = 0, name: str = "synthetic", entrez_ids=None):
    """An :class:`~scouter_local.embedding.sets.EmbeddingSet` of Gaussian vectors (``(len(symbols), dim)``)."""
    from scouter_local.embedding.sets import EmbeddingSet

    vectors = np.random.default_rng(seed).normal(size=(len(symbols), dim)).astype(np.float32)
    ids = np.full(len(symbols), -1, dtype=np.int64) if entrez_ids is None else np.asarray(entrez_ids, dtype=np.int64)
    return EmbeddingSet(name, f"{name}-{seed}", list(symbols), ids, vectors)


def write_embedding_csv(path: Path, emb) -> Path:
    """``emb`` as a Scouter/GenePT CSV (index = symbol, one column per dimension, an all-zero ``ctrl`` row first)."""
    frame = pd.DataFrame(emb.vectors, index=emb.symbols)
    frame = pd.concat([pd.DataFrame(np.zeros((1, emb.dim)), index=["ctrl"]), frame])
    frame.to_csv(path)
    return path


# ------------------------------------------------------------------------------------------------ encoder stand-in
def _unit_vector(key: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim)
    return v / np.linalg.norm(v)


class HashEncoder:
    """A stand-in for :class:`scouter_local.embedding.encoder.Encoder`: no weights, the vector of a chunk is a unit
    Gaussian seeded by a hash of the model fingerprint, pooling, quantisation and the chunk's words.

    Words stand for tokens: a text (with its document or query prefix) longer than ``spec.max_tokens`` words is
    split into chunks whose word-weighted mean is its vector (``long_texts == "chunk"``), or cut to its first chunk
    (``"truncate"``). Batching does not change vectors. Every text it encodes is appended to :attr:`encoded`.
    """

    #: Every text encoded since the :func:`stand_in` fixture started (shared by all instances).
    encoded: list[str] = []

    def __init__(self, spec, *, device=None, dtype="auto", threads=None, trust_remote_code=False) -> None:
        from scouter_local.embedding.encoder import EncodeStats
        from scouter_local.embedding.models import read_json

        self.spec = spec
        self.device = device or "cpu"
        self.dim = int(read_json(Path(spec.load_path) / "config.json")["hidden_size"])
        self.stats = EncodeStats()

    def _vector(self, text: str) -> tuple[np.ndarray, int, int]:
        words = text.split() or [""]
        size = self.spec.max_tokens
        chunks = [words[i : i + size] for i in range(0, len(words), size)]
        if self.spec.long_texts == "truncate":
            chunks = chunks[:1]
        key = f"{self.spec.model_fingerprint}|{self.spec.pooling}|{self.spec.quantize}|"
        vectors = np.stack([_unit_vector(key + " ".join(c), self.dim) for c in chunks])
        weights = np.array([len(c) for c in chunks], dtype=np.float64)
        return weights @ vectors / weights.sum(), len(chunks), len(words)

    def encode(self, texts, *, batch_size=None, batch_tokens=None, query=False, progress=False, bar=None):
        from scouter_local.embedding.encoder import EncodeStats

        prefix = self.spec.query_prefix if query else self.spec.prefix
        self.stats = EncodeStats(texts=len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i], chunks, words = self._vector(prefix + text)
            long = words > self.spec.max_tokens
            self.stats.chunked += long and self.spec.long_texts == "chunk"
            self.stats.truncated += long and self.spec.long_texts == "truncate"
            self.stats.chunks += chunks
            self.stats.tokens += min(words, self.spec.max_tokens) if self.spec.long_texts == "truncate" else words
        self.stats.padded_tokens = self.stats.tokens
        type(self).encoded.extend(texts)
        if bar is not None:
            bar.update(len(texts))
        return out


def stand_in_model(folder: Path, *, dim: int = 16, max_tokens: int = 24, seed: int = 0) -> Path:
    """A model folder for :class:`HashEncoder`: ``config.json`` (``hidden_size`` = ``dim``, ``max_tokens`` positions)
    and a weights file whose bytes (``seed``) make its fingerprint."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_type": "hash-stand-in",
        "architectures": ["HashStandInModel"],
        "hidden_size": dim,
        "max_position_embeddings": max_tokens,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(hashlib.sha256(str(seed).encode()).digest())
    return folder


@dataclass
class StandIn:
    """What the :func:`stand_in` fixture gives: ``model`` (a MODEL to pass to ``embed``) and ``encoded`` (every text
    the stand-in encoded during the test, in order)."""

    model: str
    encoded: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def stand_in(tmp_path_factory, monkeypatch) -> StandIn:
    """:class:`HashEncoder` in place of ``Encoder`` wherever the package holds it, and a model folder for it."""
    import scouter_local.embedding.encoder as encoder_module
    import scouter_local.embedding.pipeline  # noqa: F401 - imported so that its binding is patched too

    real = encoder_module.Encoder
    for name, module in list(sys.modules.items()):
        if name.startswith("scouter_local") and getattr(module, "Encoder", None) is real:
            monkeypatch.setattr(module, "Encoder", HashEncoder)
    result = StandIn(str(stand_in_model(tmp_path_factory.mktemp("stand_in") / "hash-model")))
    monkeypatch.setattr(HashEncoder, "encoded", result.encoded)
    return result


@pytest.fixture(scope="session")
def cells() -> tuple[ad.AnnData, dict[str, list[str]]]:
    """:func:`cell_screen` with its defaults (read-only)."""
    return cell_screen()


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory) -> Path:
    """:func:`tiny_corpus` with set ``synthetic`` (8-d Gaussian vectors of SYN1-SYN9) imported from a Scouter CSV
    (read-only master: copy it)."""
    from scouter_local.embedding.exchange import import_embeddings

    db = tiny_corpus(tmp_path_factory.mktemp("tiny") / "tiny.duckdb")
    csv = write_embedding_csv(db.parent / "synthetic.csv", embedding_set(GENES["symbol"].tolist()))
    import_embeddings(db, "synthetic", csv)
    return db


@pytest.fixture(scope="session")
def tiny_embeddings(tiny_db):
    """Set ``synthetic`` of :func:`tiny_db`."""
    from scouter_local.embedding.store import load_embedding_set

    return load_embedding_set(tiny_db, "synthetic")


@pytest.fixture(scope="session")
def linked(cells, tiny_db, tiny_embeddings):
    """The main screen of :func:`cells` read with :data:`CELL_OPTIONS`, genes resolved through :func:`tiny_db` onto
    ``synthetic`` (OLD3 respelled SYN3; read-only)."""
    from scouter_local.data.link import prepare_data

    return prepare_data(cells[0], CELL_OPTIONS, tiny_db, tiny_embeddings)


@pytest.fixture(scope="module")
def screen() -> FactorScreen:
    """:func:`factor_screen` (seed 0)."""
    return factor_screen()
