"""Token-budget batching and the explicit long-text choice (chunk vs truncate) on the real MiniLM model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from scouter_local.cli import main
from scouter_local.embedding.batching import Batching, token_batches
from scouter_local.embedding.encoder import Encoder, LoadOptions
from scouter_local.embedding.pipeline import embed_corpus
from scouter_local.embedding.spec import resolve_spec, spec_from_stored
from scouter_local.embedding.store import load_embedding_set
from tests._realdata import MINILM, embed_args
from tests.conftest import copy_db


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.fixture(scope="module")
def texts(data_dir) -> list[str]:
    """24 GenePT texts: the 8 longest (longest first; several exceed MiniLM's 256 tokens), then 16 short ones."""
    data = list(json.loads((data_dir / "gene_text" / "genept_ncbi_uniprot_perturbed_genes.json").read_text()).values())
    by_length = sorted(data[:200], key=len)
    return by_length[-8:][::-1] + by_length[:16]


@pytest.mark.parametrize("budget, rows", [(1000, None), (1000, 3), (64, None), (10_000, 7)])
def test_token_batches_respect_the_budget(budget, rows):
    lengths = np.sort(np.random.default_rng(0).integers(5, 300, size=97))[::-1]
    batches = token_batches(lengths, budget, rows)
    assert [i for b in batches for i in range(b.start, b.stop)] == list(range(97))
    for b in batches:
        size = b.stop - b.start
        assert size == 1 or size * lengths[b.start] <= budget  # only an over-long row may exceed, alone
        assert rows is None or size <= rows
    assert len(batches) < 97 or budget < lengths.min()


def test_token_batches_bad_values():
    with pytest.raises(InputError, match="at least 1"):
        token_batches(np.array([3, 2]), 0)
    with pytest.raises(InputError, match="at least 1"):
        token_batches(np.array([3, 2]), 100, 0)
    with pytest.raises(InputError, match="batch size 0 and batch tokens 8192"):
        Batching(batch_size=0)  # an embed run's options are checked before any model is loaded


def test_load_options_pick_the_rank_gpu_only_under_a_launcher(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert LoadOptions().on_rank(1) == LoadOptions()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert LoadOptions(device="cpu").on_rank(1).device == "cpu"  # a device the user chose stays
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert LoadOptions(dtype="float16").on_rank(1) == LoadOptions("cuda:3", "float16")
    monkeypatch.delenv("LOCAL_RANK")
    assert LoadOptions().on_rank(1).device == "cuda:1"


def test_batch_budget_does_not_change_vectors(minilm_encoder, texts):
    wide = minilm_encoder.encode(texts)
    assert minilm_encoder.stats.padded_tokens >= minilm_encoder.stats.tokens
    narrow = minilm_encoder.encode(texts, batch_tokens=300, batch_size=2)
    np.testing.assert_allclose(narrow, wide, atol=2e-5)


def test_truncate_embeds_the_first_window_like_sentence_transformers(minilm_encoder, texts):
    from sentence_transformers import SentenceTransformer

    spec = resolve_spec(MINILM, long_texts="truncate")
    chunk_spec = minilm_encoder.spec
    assert "long_texts" not in chunk_spec.identity()  # keys of sets made before the option existed are kept
    assert spec.identity() != chunk_spec.identity() and spec.identity()["long_texts"] == "truncate"
    truncating = Encoder(spec, device="cpu")
    truncated = truncating.encode(texts)
    long = truncating.stats.truncated
    assert long >= 4 and truncating.stats.chunked == 0 and truncating.stats.chunks == len(texts)
    reference = SentenceTransformer(spec.load_path, device="cpu").encode(texts)  # truncates at max_seq_length
    assert _cos(truncated, reference).min() > 0.9999
    chunked = minilm_encoder.encode(texts)
    assert minilm_encoder.stats.chunked == long
    same = _cos(truncated, chunked)
    assert same[long:].min() > 0.9999 and same[:long].max() < 0.9999  # short texts agree, long ones differ
    assert spec_from_stored({"encoder": spec.to_dict()}) == spec


def test_truncate_set_is_its_own_cache_entry(minilm_db, subset, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    with Corpus.open(db, read_only=True) as corpus:
        docs = corpus.documents(entrez_ids=subset)
    genes = docs.loc[docs["text"].str.len().sort_values().index[-6:], "entrez_id"].tolist()  # the longest texts
    with pytest.raises(InputError, match="long_texts 'chunk' -> 'truncate'"):
        embed_corpus(db, "minilm", MINILM, genes=genes, long_texts="truncate", progress=False)
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(map(str, genes)))
    result = CliRunner().invoke(
        main,
        embed_args(db, "trunc", genes_file, "--long-texts", "truncate", "--batch-tokens", "1024", "--json"),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["computed"], report["reused"], report["chunked"]) == (6, 0, 0) and report["truncated"] >= 4
    trunc, chunked = load_embedding_set(db, "trunc"), load_embedding_set(db, "minilm")
    assert trunc.spec["encoder"]["long_texts"] == "truncate"
    rows = [chunked.entrez_ids.tolist().index(e) for e in trunc.entrez_ids]
    assert (_cos(trunc.vectors, chunked.vectors[rows]) < 0.9999).sum() == report["truncated"]
    again = embed_corpus(db, "trunc", MINILM, genes=genes, long_texts="truncate", progress=False)
    assert (again.computed, again.cached) == (0, 6)
