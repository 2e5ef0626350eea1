"""Genes of a screen resolved through a tiny corpus onto embedding rows; splits and subgroups of the linked screen."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.data.link import condition_vectors, prepare_data
from scouter_local.data.options import DataOptions
from scouter_local.data.splits import Split, make_split, subgroup
from tests._synthetic import CELL_OPTIONS, delta_file


def test_old_symbols_are_respelled_and_linked_to_their_rows(linked, tiny_embeddings, tiny_db):
    assert "SYN3+ctrl" in linked.perturbations and "SYN2+SYN3" in linked.perturbations  # OLD3 is SYN3
    assert not any("OLD3" in c for c in linked.perturbations)
    rows = tiny_embeddings.rows()
    assert linked.gene_rows == {g: rows[g] for g in ("SYN1", "SYN2", "SYN3", "SYN4", "SYN5", "SYN6", "SYN7", "SYN8")}
    assert linked.source["db"] == str(tiny_db.resolve())
    vectors = condition_vectors(["SYN2+SYN3", "SYN1+ctrl"], linked.gene_rows, tiny_embeddings)
    np.testing.assert_allclose(
        vectors[0], tiny_embeddings.vectors[rows["SYN2"]] + tiny_embeddings.vectors[rows["SYN3"]]
    )
    np.testing.assert_array_equal(vectors[1], tiny_embeddings.vectors[rows["SYN1"]])  # ctrl adds nothing


def test_de_genes_follow_the_new_spelling(linked, cells):
    planted = cells[1]
    top = {linked.genes[i] for i in linked.de_genes["SYN2+SYN3"][:6]}
    assert top == set(planted["SYN2+SYN3"])


def test_gene_without_vector_is_left_out_with_a_warning(cells, tiny_db, tiny_embeddings):
    keep = np.array([s != "SYN4" for s in tiny_embeddings.symbols])
    smaller = replace(
        tiny_embeddings,
        name="no-syn4",
        symbols=[s for s, k in zip(tiny_embeddings.symbols, keep) if k],
        entrez_ids=tiny_embeddings.entrez_ids[keep],
        vectors=tiny_embeddings.vectors[keep],
    )
    with pytest.warns(UserWarning, match="2 condition\\(s\\) left out: .*SYN4") as record:
        data = prepare_data(cells[0], CELL_OPTIONS, tiny_db, smaller)
    assert len(record) == 1 and "SYN4+ctrl" not in data.perturbations and "SYN4+SYN5" not in data.perturbations
    assert data.excluded["SYN4+ctrl"] == "gene SYN4 has no embedding in set 'no-syn4'"
    assert len(data.perturbations) == 8


def test_delta_file_is_resolved_from_ensembl_ids(cells, tiny_db, tiny_embeddings):
    options = DataOptions(condition_key="target_ensembl", single_format="bare")
    data = prepare_data(delta_file(cells[0]), options, tiny_db, tiny_embeddings)
    assert data.is_delta and sorted(data.perturbations) == [f"SYN{i}+ctrl" for i in range(1, 7)]


def test_no_condition_with_vectors_is_an_error(cells, tiny_db, tiny_embeddings):
    none = replace(
        tiny_embeddings, name="empty", symbols=["SYN9"], entrez_ids=np.array([909]), vectors=tiny_embeddings.vectors[:1]
    )
    with warnings.catch_warnings(), pytest.raises(InputError, match="has all its genes in set 'empty'"):
        warnings.simplefilter("ignore")
        prepare_data(cells[0], CELL_OPTIONS, tiny_db, none)


def test_splits_partition_the_conditions(linked, tmp_path):
    conditions = sorted(linked.perturbations)
    for kind in ("scouter", "simulation"):
        split = make_split(linked, kind, seed=3)
        assert sorted(split.train + split.val + split.test) == conditions, kind
        assert split.test and split == make_split(linked, kind, seed=3)
    everything = make_split(linked, "none")
    assert sorted(everything.train) == conditions and not everything.test
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["SYN1+ctrl", "SYN2+ctrl"], "val": [], "test": ["SYN1+SYN2"]}))
    assert make_split(linked, str(path)) == Split(["SYN1+ctrl", "SYN2+ctrl"], [], ["SYN1+SYN2"], kind="file")
    path.write_text(json.dumps({"train": ["SYN9+ctrl"], "val": [], "test": []}))
    with pytest.raises(InputError, match="'SYN9\\+ctrl' is not in the data"):
        make_split(linked, str(path))


@pytest.mark.parametrize(
    "condition, expected",
    [
        ("SYN6+ctrl", "single"),
        ("SYN7+ctrl", "single_seen"),
        ("SYN7+SYN8", "combo_seen1"),
        ("SYN2+SYN3", "combo_seen0"),
        ("SYN1+SYN7", "combo_seen2"),
    ],
)
def test_subgroups(condition, expected):
    assert subgroup(condition, ["SYN1+ctrl", "SYN4+SYN7", "SYN5+ctrl"]) == expected
