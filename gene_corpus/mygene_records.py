"""mygene.info gene records ⇄ corpus tables: parsing ``/v3/gene`` records and rebuilding them for export.

No HTTP and no database writes here (:mod:`gene_corpus.mygene` pulls, :class:`~gene_corpus.corpus.Corpus` stores).
mygene.info returns a field with one value as that value and a field with several as a list (``alias``,
``ensembl``, ``uniprot.Swiss-Prot``, ``go.BP`` …), so every field is read through :func:`_as_list`.
"""

from __future__ import annotations

from typing import Iterable

import duckdb
import pandas as pd

from gene_corpus.errors import InputError

#: Fields of a ``/v3/gene`` record that :func:`records_to_tables` reads (the ``fields`` a pull asks for).
FIELDS = "symbol,name,summary,type_of_gene,alias,ensembl.gene,uniprot,entrezgene,go,map_location,genomic_pos.chr"


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


#: Fields that hold one text (or nothing).
_TEXT_FIELDS = ("symbol", "name", "summary", "type_of_gene", "map_location")


def _texts(value) -> bool:
    """Whether ``value`` is nothing, a text, or a list of texts (mygene.info's shapes of a text field)."""
    return all(isinstance(v, str) for v in _as_list(value))


def _wrong(record: dict, field: str, value, expected: str) -> InputError:
    return InputError(
        f"mygene record {record.get('_id')}: {field} holds {str(value)[:60]!r}, not {expected}; expected "
        "mygene.info's gene record shape"
    )


def check_record(record: dict) -> None:
    """Refuse a record whose fields have types mygene.info never sends (a number for a symbol, an object for an
    alias …), naming the record and the field, before anything of it is stored."""
    if not isinstance(record, dict):
        raise InputError(f"mygene record {str(record)[:60]!r} is not a JSON object; expected mygene.info's records")
    for field in _TEXT_FIELDS:
        if record.get(field) is not None and not isinstance(record[field], str):
            raise _wrong(record, field, record[field], "a text")
    entrez = record.get("entrezgene")
    if entrez is not None and (
        isinstance(entrez, bool) or not (isinstance(entrez, int) or (isinstance(entrez, str) and entrez.isdigit()))
    ):
        raise _wrong(record, "entrezgene", entrez, "an Entrez id")
    if not _texts(record.get("alias")):
        raise _wrong(record, "alias", record["alias"], "a text or a list of texts")
    for item in _as_list(record.get("ensembl")):
        if not _texts(item.get("gene") if isinstance(item, dict) else item):
            raise _wrong(record, "ensembl", item, "an object with gene ids")
    uniprot = record.get("uniprot")
    ids = [uniprot.get(key) for key in ("Swiss-Prot", "TrEMBL")] if isinstance(uniprot, dict) else [uniprot]
    if not all(_texts(value) for value in ids):
        raise _wrong(record, "uniprot", uniprot, "UniProt ids")
    for position in _as_list(record.get("genomic_pos")):
        if not isinstance(position, dict) or not isinstance(position.get("chr", ""), str):
            raise _wrong(record, "genomic_pos", position, "a position with a chromosome name")
    if record.get("go") is not None and not isinstance(record["go"], dict):
        raise _wrong(record, "go", record["go"], "an object of BP, MF and CC terms")


def entrez_id_of(record: dict) -> int | None:
    """The Entrez id of a mygene hit or record (``entrezgene``, else a numeric ``_id``); ``None`` if Ensembl-only."""
    for value in (record.get("entrezgene"), record.get("_id")):
        if value is not None and str(value).isdigit():
            return int(value)
    return None


def records_to_tables(records: Iterable[dict]) -> tuple[dict[str, pd.DataFrame], list[list[str]]]:
    """Turn mygene gene records into corpus table rows.

    Parameters
    ----------
    records
        ``/v3/gene`` records (fields of :data:`FIELDS`).

    Returns
    -------
    tables
        ``genes`` (entrez_id, symbol, name, gene_type, chromosome, map_location, ensembl_ids, uniprot_ids),
        ``aliases`` and ``ensembl`` (entrez_id, alias), ``summaries`` (entrez_id, text), ``go_terms``
        (go_id, term, ontology, definition), ``go_annotations`` (entrez_id, go_id, evidence, ontology).
    unresolved
        ``[_id, reason]`` for records without an Entrez id.
    """
    genes, aliases, ensembl, summaries, terms, annotations, unresolved = [], [], [], [], [], [], []
    for record in records:
        check_record(record)
        entrez = entrez_id_of(record)
        if entrez is None:
            unresolved.append([str(record.get("_id")), "mygene record without an Entrez id"])
            continue
        ens = [
            g for e in _as_list(record.get("ensembl")) for g in _as_list(e.get("gene") if isinstance(e, dict) else e)
        ]
        uniprot = record.get("uniprot") or {}
        uniprot_ids = (
            [u for key in ("Swiss-Prot", "TrEMBL") for u in _as_list(uniprot.get(key))]
            if isinstance(uniprot, dict)
            else _as_list(uniprot)
        )
        chrom = [p.get("chr") for p in _as_list(record.get("genomic_pos")) if isinstance(p, dict) and p.get("chr")]
        genes.append(
            {
                "entrez_id": entrez,
                "symbol": record.get("symbol"),
                "name": record.get("name"),
                "gene_type": record.get("type_of_gene"),
                "chromosome": chrom[0] if chrom else None,
                "map_location": record.get("map_location"),
                "ensembl_ids": ens,
                "uniprot_ids": uniprot_ids,
            }
        )
        aliases += [
            {"entrez_id": entrez, "alias": a} for a in _as_list(record.get("alias")) if a != record.get("symbol")
        ]
        ensembl += [{"entrez_id": entrez, "alias": e} for e in ens]
        if record.get("summary"):
            summaries.append({"entrez_id": entrez, "text": record["summary"]})
        go = record.get("go") or {}
        for ontology in ("BP", "MF", "CC"):
            for item in _as_list(go.get(ontology)):
                if (
                    not isinstance(item, dict)
                    or not item.get("id")
                    or not all(isinstance(item.get(k, ""), (str, type(None))) for k in ("id", "term", "evidence"))
                ):
                    raise InputError(
                        f"mygene record {record.get('_id')}: go.{ontology} holds {str(item)[:80]!r}, not a term "
                        "with an 'id'; expected mygene.info's gene record shape"
                    )
                terms.append({"go_id": item["id"], "term": item.get("term"), "ontology": ontology, "definition": None})
                annotations.append(
                    {"entrez_id": entrez, "go_id": item["id"], "evidence": item.get("evidence"), "ontology": ontology}
                )
    frames = {
        "genes": pd.DataFrame(
            genes,
            columns=[
                "entrez_id",
                "symbol",
                "name",
                "gene_type",
                "chromosome",
                "map_location",
                "ensembl_ids",
                "uniprot_ids",
            ],
        ),
        "aliases": pd.DataFrame(aliases, columns=["entrez_id", "alias"]),
        "ensembl": pd.DataFrame(ensembl, columns=["entrez_id", "alias"]),
        "summaries": pd.DataFrame(summaries, columns=["entrez_id", "text"]),
        "go_terms": pd.DataFrame(terms, columns=["go_id", "term", "ontology", "definition"]).drop_duplicates("go_id"),
        "go_annotations": pd.DataFrame(annotations, columns=["entrez_id", "go_id", "evidence", "ontology"]),
    }
    for name in ("genes", "aliases", "ensembl", "summaries", "go_annotations"):
        frames[name] = frames[name].astype({"entrez_id": "int64"})
    return frames, unresolved


def gene_records(con: duckdb.DuckDBPyConnection, entrez_ids: list[int] | None = None) -> list[dict]:
    """Rebuild mygene-shaped records (fields of :data:`FIELDS`) from a corpus database, for export.

    ``uniprot`` is written as a plain list: the corpus does not keep the Swiss-Prot/TrEMBL split.

    Parameters
    ----------
    con
        Corpus connection.
    entrez_ids
        Genes to export (``None``: every gene).
    """
    if entrez_ids is None:
        entrez_ids = [e for (e,) in con.execute("SELECT entrez_id FROM genes").fetchall()]
    con.register("_export_ids", pd.DataFrame({"entrez_id": pd.Series(list(entrez_ids), dtype="int64")}))
    try:
        genes = con.execute("SELECT * FROM genes SEMI JOIN _export_ids USING (entrez_id) ORDER BY entrez_id").df()
        aliases = con.execute(
            "SELECT entrez_id, alias FROM aliases SEMI JOIN _export_ids USING (entrez_id) "
            "WHERE kind = 'alias' ORDER BY alias"
        ).df()
        summaries = con.execute(
            "SELECT entrez_id, text FROM texts SEMI JOIN _export_ids USING (entrez_id) WHERE source = 'ncbi_summary'"
        ).df()
        go = con.execute(
            "SELECT a.entrez_id, a.go_id, t.term, a.evidence, a.ontology FROM go_annotations a "
            "SEMI JOIN _export_ids USING (entrez_id) LEFT JOIN go_terms t USING (go_id) "
            "ORDER BY a.entrez_id, a.ontology, a.go_id, a.evidence"
        ).df()
    finally:
        con.unregister("_export_ids")
    alias_by = aliases.groupby("entrez_id")["alias"].agg(list).to_dict()
    summary_by = dict(zip(summaries["entrez_id"], summaries["text"]))
    go_by: dict[int, dict[str, list[dict]]] = {}
    for entrez_id, go_id, term, evidence, ontology in go.itertuples(index=False):
        go_by.setdefault(int(entrez_id), {}).setdefault(ontology, []).append(
            {"id": go_id, "term": term, "evidence": evidence}
        )
    records = []
    for gene in genes.itertuples(index=False):
        entrez_id = int(gene.entrez_id)
        record = {
            "_id": str(entrez_id),
            "entrezgene": entrez_id,
            "symbol": gene.symbol,
            "name": gene.name,
            "type_of_gene": gene.gene_type,
            "map_location": gene.map_location,
        }
        if gene.chromosome is not None:
            record["genomic_pos"] = {"chr": gene.chromosome}
        if alias_by.get(entrez_id):
            record["alias"] = alias_by[entrez_id]
        if gene.ensembl_ids is not None and len(gene.ensembl_ids):
            record["ensembl"] = [{"gene": e} for e in gene.ensembl_ids]
        if gene.uniprot_ids is not None and len(gene.uniprot_ids):
            record["uniprot"] = list(gene.uniprot_ids)
        if entrez_id in summary_by:
            record["summary"] = summary_by[entrez_id]
        if entrez_id in go_by:
            record["go"] = go_by[entrez_id]
        records.append({k: v for k, v in record.items() if v is not None})
    return records
