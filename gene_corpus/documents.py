"""Document templates (one text per gene) and the GO-derived text, as SQL over the corpus tables.

A template is an ordered list of :class:`Rule`; each gene gets the first rule whose parts it has. The default
``genept`` template reproduces the GenePT v2 composition ``Gene Symbol X <NCBI summary> Protein summary:
<UniProt function>``:

1. ``custom`` — a user-supplied text (``custom-tsv`` import) replaces everything else;
2. ``summary`` — NCBI summary + UniProt function, both present: the GenePT composition built from parts;
3. ``genept`` — the GenePT text itself where one was imported (the same composition, built by the GenePT
   authors; it beats an NCBI-summary-only document because it carries the UniProt part too);
4. ``summary`` — NCBI summary only;
5. ``uniprot`` — UniProt function only;
6. ``go_fallback`` — gene name and the top GO term names (Biological Process, Molecular Function,
   Cellular Component) for genes with none of the above.

``kind`` and ``parts`` (the sources used, joined by ``+``) are returned with every document.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

#: GO roots, "binding" and "protein binding" carry no information about a gene (nor does evidence ND).
GO_UNINFORMATIVE = ("GO:0008150", "GO:0003674", "GO:0005575", "GO:0005488", "GO:0005515")
#: Evidence classes, best first: experimental, curated/phylogenetic, electronic.
EXPERIMENTAL_EVIDENCE = ("EXP", "IDA", "IPI", "IMP", "IGI", "IEP", "HTP", "HDA", "HMP", "HGI", "HEP")
GO_TERMS_PER_ONTOLOGY = 5
ONTOLOGY_LABELS = {"BP": "Biological process", "MF": "Molecular function", "CC": "Cellular component"}


@dataclass(frozen=True)
class Rule:
    """One way to build a gene's document.

    Attributes
    ----------
    kind
        Recorded as the document's ``kind``.
    pattern
        ``str.format`` pattern over ``symbol``, ``name`` and text sources; every source in it must exist.
    """

    kind: str
    pattern: str

    @property
    def fields(self) -> tuple[str, ...]:
        """Placeholders of :attr:`pattern`, in order."""
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.pattern) if f)

    @property
    def parts(self) -> tuple[str, ...]:
        """Text sources the rule needs (placeholders other than ``symbol`` and ``name``)."""
        return tuple(f for f in self.fields if f not in ("symbol", "name"))


_SUMMARY_UNIPROT = Rule("summary", "Gene Symbol {symbol} {ncbi_summary} Protein summary: {uniprot_function}")
_SUMMARY = Rule("summary", "Gene Symbol {symbol} {ncbi_summary}")
_GO = Rule("go_fallback", "Gene Symbol {symbol} {name}. {go_terms}")

TEMPLATES: dict[str, tuple[Rule, ...]] = {
    "genept": (
        Rule("custom", "{custom}"),
        _SUMMARY_UNIPROT,
        Rule("genept", "{genept}"),
        _SUMMARY,
        Rule("uniprot", "Gene Symbol {symbol} Protein summary: {uniprot_function}"),
        _GO,
    ),
    "ncbi": (_SUMMARY, _GO),
    "go": (_GO,),
}
DEFAULT_TEMPLATE = "genept"


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _pattern_sql(pattern: str) -> str:
    pieces = []
    for literal, field, _, _ in string.Formatter().parse(pattern):
        if literal:
            pieces.append(_sql_string(literal))
        if field:
            pieces.append(f"coalesce(p.{field}, '')")
    return " || ".join(pieces)


def documents_sql(template: str) -> str:
    """SELECT of ``entrez_id, symbol, name, template, kind, parts, text, text_sha256`` for a template.

    Parameters
    ----------
    template
        A key of :data:`TEMPLATES` (validated by the caller).
    """
    from gene_corpus.schema import TEXT_SOURCES

    rules = TEMPLATES[template]
    pivot = ",\n       ".join(f"max(text) FILTER (WHERE source = '{s}') AS {s}" for s in TEXT_SOURCES)
    conditions = [" AND ".join(f"p.{part} IS NOT NULL" for part in rule.parts) for rule in rules]
    kind = "\n".join(f"WHEN {c} THEN {_sql_string(r.kind)}" for c, r in zip(conditions, rules))
    parts = "\n".join(f"WHEN {c} THEN {_sql_string('+'.join(r.parts))}" for c, r in zip(conditions, rules))
    text = "\n".join(f"WHEN {c} THEN {_pattern_sql(r.pattern)}" for c, r in zip(conditions, rules))
    any_rule = " OR ".join(f"({c})" for c in conditions)
    return f"""
WITH p AS (
  SELECT g.entrez_id, g.symbol, g.name, {pivot}
  FROM texts t JOIN genes g USING (entrez_id)
  GROUP BY g.entrez_id, g.symbol, g.name
), d AS (
  SELECT p.entrez_id, p.symbol, p.name, {_sql_string(template)} AS template,
         CASE {kind} END AS kind, CASE {parts} END AS parts, CASE {text} END AS text
  FROM p WHERE {any_rule}
)
SELECT d.*, sha256(d.text) AS text_sha256 FROM d
"""


def go_text_sql() -> str:
    """SELECT of ``entrez_id, text``: top GO term names per ontology for every annotated gene.

    Terms are ranked per gene and ontology by evidence class (experimental, then curated, then IEA; ND and
    :data:`GO_UNINFORMATIVE` are skipped), then by the number of evidence codes supporting the annotation, then
    by GO id; the first :data:`GO_TERMS_PER_ONTOLOGY` are joined: ``Biological process: a; b. Molecular
    function: c. …``. The ranking uses the gene's own annotations only, so a gene's text does not change when
    other genes are imported.
    """
    skipped = ", ".join(_sql_string(r) for r in GO_UNINFORMATIVE)
    experimental = ", ".join(_sql_string(e) for e in EXPERIMENTAL_EVIDENCE)
    labels = ", ".join(
        f"max(CASE WHEN ontology = '{o}' THEN '{label}: ' || terms || '.' END)" for o, label in ONTOLOGY_LABELS.items()
    )
    return f"""
WITH ann AS (
  SELECT a.entrez_id, a.go_id, t.term, t.ontology,
         min(CASE WHEN a.evidence IN ({experimental}) THEN 0 WHEN a.evidence = 'IEA' THEN 2 ELSE 1 END) AS ev,
         count(DISTINCT a.evidence) AS n_evidence
  FROM go_annotations a JOIN go_terms t USING (go_id)
  WHERE a.evidence <> 'ND' AND a.go_id NOT IN ({skipped}) AND t.ontology IN ('BP', 'MF', 'CC')
  GROUP BY a.entrez_id, a.go_id, t.term, t.ontology
), ranked AS (
  SELECT ann.*, row_number() OVER (PARTITION BY entrez_id, ontology ORDER BY ev, n_evidence DESC, go_id) AS r
  FROM ann
), per_ontology AS (
  SELECT entrez_id, ontology, string_agg(term, '; ' ORDER BY r) AS terms
  FROM ranked WHERE r <= {GO_TERMS_PER_ONTOLOGY} GROUP BY entrez_id, ontology
)
SELECT entrez_id, concat_ws(' ', {labels}) AS text FROM per_ontology GROUP BY entrez_id
"""
