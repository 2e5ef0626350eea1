"""The shared data folder's screens (presets) and files, and where the folder is: fixtures for the demo, the
benchmarks and the tests, not library logic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gene_corpus.errors import InputError
from scouter_local.data.options import DataOptions


@dataclass(frozen=True)
class Preset:
    """A screen of the data folder and how to read it.

    Attributes
    ----------
    file
        Path relative to the data folder.
    options
        Its :class:`DataOptions`.
    strong_key
        Numeric ``obs`` column telling strong perturbations from noise (``None``: none).
    strong_above
        Its threshold: a condition whose value exceeds it has a detectable effect (the effect label).
    """

    file: str
    options: DataOptions
    strong_key: str | None = None
    strong_above: float | None = None

    def path(self, data_dir: str | os.PathLike | None = None) -> Path:
        """The file in ``data_dir`` (default :func:`find_data_dir`)."""
        return Path(data_dir if data_dir is not None else find_data_dir()) / self.file


#: The real screens of ``../shared/data`` (see its MANIFEST.md) and the options their layouts need.
PRESETS = {
    "norman": Preset(
        "perturbseq/norman2019_mcfaline2023_subset.h5ad",
        DataOptions(
            condition_key="condition", control="control", single_format="bare", subset=(("dataset", "norman19"),)
        ),
    ),
    "replogle": Preset(
        "perturbseq/replogle2022_k562_pseudobulk_delta.h5ad",
        DataOptions(condition_key="target_ensembl", single_format="bare"),
        strong_key="signal_to_noise",
        strong_above=1.1,
    ),
    "papalexi": Preset(
        "perturbseq/papalexi2021_thp1_subset.h5ad",
        DataOptions(condition_key="target", control="non-targeting", single_format="bare", normalize=True),
    ),
}


#: Files a data folder must hold for the corpus and the demo.
REQUIRED_FILES = (
    "gene_ids/gene_info_human.tsv.gz",
    "gene_ids/gene_aliases_human.tsv.gz",
    "gene_text/refseq_summaries_human.tsv.gz",
    PRESETS["norman"].file,
)


#: Folders of the data folder the demo imports into its corpus (``go`` is optional: GO texts and neighbour quality).
CORPUS_FOLDERS = ("gene_ids", "gene_text", "go")


#: Files of the data folder that give every gene of the shared screens an id, its old symbols (HGNC: KIAA1804 is
#: MAP3K21) and a document (what the tests and benchmarks import into their corpora).
CORPUS_FILES = (
    "gene_ids/gene_info_human.tsv.gz",
    "gene_ids/gene_aliases_human.tsv.gz",
    "gene_ids/hgnc_genes_human.parquet",
    "gene_text/refseq_summaries_human.tsv.gz",
    "gene_text/genept_ncbi_uniprot_perturbed_genes.json",
)


def find_data_dir(given: str | os.PathLike | None = None) -> Path:
    """The data folder: ``given``, else ``$SCOUTER_DATA_DIR``, else ``../shared/data`` from the current directory or
    the repository root.

    Raises
    ------
    InputError
        ``given`` lacks a required file, or no default folder exists.
    """
    given = given if given is not None else os.environ.get("SCOUTER_DATA_DIR")
    if given is not None:
        path = Path(given).expanduser()
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise InputError(
                f"data_dir={str(path)!r}: {missing[0]} is missing; pass the folder holding gene_ids/, "
                "gene_text/, go/ and perturbseq/ (the project's ../shared/data)"
            )
        return path.resolve()
    root = Path(__file__).resolve().parents[1]
    for candidate in (Path.cwd() / ".." / "shared" / "data", root.parent / "shared" / "data"):
        if all((candidate / f).is_file() for f in REQUIRED_FILES):
            return candidate.resolve()
    raise InputError(
        "no data folder at ../shared/data (from here or from the repository root); pass "
        "data_dir=DIR, the folder holding gene_ids/, gene_text/, go/ and perturbseq/"
    )


#: Genes whose neighbours the demo shows (KIAA1804 is the old symbol of MAP3K21, resolved through the corpus).
SHOWCASE_GENES = ("KIAA1804", "CEBPA", "TP53")


#: The Scouter authors' per-condition Norman results, the context table of the demo's report.
PUBLISHED_NORMAN = "reference/scouter_published/norman.csv"


#: Sources and licences of the data folder's files, closing every report made from them.
ATTRIBUTION = (
    "Data: Norman et al. 2019 (Science) via the PerturBench fixture (BSD-3-Clause); gene texts NCBI RefSeq + "
    "UniProt (CC BY 4.0) as packaged by GenePT/Scouter (MIT); GO (CC BY 4.0) via Bioconductor org.Hs.eg.db; "
    "published numbers: Zhu & Li, Nat Comput Sci 2025."
)
