"""Model folders: ``manifest.json`` (config, gene order, embedding fingerprint, data source and options, split,
version; the effect part's label, choices and scores), ``model.pt`` (tensors only, loaded with ``weights_only=True``;
the effect models' arrays under ``effect.*``) and ``split.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from gene_corpus.checks import check_type
from gene_corpus.errors import InputError, first_line
from gene_corpus.files import atomic_dir
from scouter_local import __version__
from scouter_local.data.link import load_embeddings
from scouter_local.data.splits import Split
from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.predictors import make_predictor
from scouter_local.predictors.base import Predictor
from scouter_local.predictors.effect import EffectPart

MANIFEST = "manifest.json"
WEIGHTS = "model.pt"
#: Prefix of the effect models' arrays in ``model.pt``.
EFFECT_PREFIX = "effect."
SPLIT_FILE = "split.json"
FORMAT_VERSION = 1
#: Keys every manifest holds, with their JSON types.
_MANIFEST_KEYS = {
    "method": str,
    "config": dict,
    "genes": list,
    "is_delta": bool,
    "embedding": dict,
    "gene_rows": dict,
    "train_conditions": list,
    "data": dict,
    "split": dict,
}
#: Tensors every ``model.pt`` holds beside the method's own.
_SHARED_STATE = ("control_cells", "control_mean")


def check_model_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``path`` as a folder a model may be written to: absent, empty, or ``overwrite``; else :class:`InputError`."""
    path = Path(path)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{path} exists and is not empty; choose another out=DIR or pass overwrite=True")
    return path


def save_model(predictor: Predictor, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a model folder (``manifest.json``, ``model.pt``, ``split.json``), through a temporary folder.

    Everything the folder needs is carried by the fitted ``predictor`` (see :func:`~scouter_local.training.train`):
    the split, the data source and options, the DE genes and the conditions left out.

    Parameters
    ----------
    predictor
        A fitted predictor.
    path
        Folder to create; an existing non-empty one is an error unless ``overwrite``.
    """
    check_type(predictor, Predictor, "predictor", "a fitted predictor (sl.train)")
    predictor._check_fitted()
    path = check_model_dir(path, overwrite=overwrite)
    emb = predictor.embeddings_
    manifest = {
        "format_version": FORMAT_VERSION,
        "scouter_local_version": __version__,
        "method": predictor.name,
        "config": predictor.get_config(),
        "genes": predictor.genes_,
        "is_delta": predictor.is_delta_,
        "embedding": {"name": emb.name, "fingerprint": emb.fingerprint, "dim": emb.dim, "spec": emb.spec},
        "gene_rows": predictor.gene_rows_,
        "train_conditions": predictor.train_conditions_,
        "data": predictor.data_source_,
        "db": predictor.data_source_.get("db"),
        "split": predictor.split_.to_json(),
        "excluded": predictor.excluded_,
        "de_genes": predictor.de_genes_,
        "fitted": predictor._meta(),
        "history": getattr(predictor, "history_", []),
    }
    state = {
        "control_cells": torch.from_numpy(predictor.control_cells_),
        "control_mean": torch.from_numpy(predictor.control_mean_),
        **predictor._state(),
    }
    if predictor.train_mean_profile_ is not None:  # None: loaded from a folder saved before it was kept
        state["train_mean_profile"] = torch.from_numpy(predictor.train_mean_profile_)
    effect = getattr(predictor, "effect_", None)
    if effect is not None:
        arrays, manifest["effect"] = effect.state()
        state.update({EFFECT_PREFIX + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
    need = sum(t.numel() * t.element_size() for t in state.values()) + len(json.dumps(manifest)) + (1 << 16)
    with atomic_dir(path, need_bytes=need) as tmp:
        torch.save(state, tmp / WEIGHTS)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        (tmp / SPLIT_FILE).write_text(json.dumps(predictor.split_.to_json(), indent=2))
    return path


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of a model folder; a missing or foreign folder is an :class:`InputError`."""
    check_type(path, (str, os.PathLike), "model", "a model folder's path (written by sl.save_model or train)")
    path = Path(path)
    file = path / MANIFEST
    if not file.exists():
        raise InputError(f"{path}: not a model folder (no {MANIFEST}); train one with scouter-local train")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{file}: not valid JSON ({exc.__class__.__name__}); the model folder is damaged, retrain"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise InputError(f"{file}: format_version {version} is not {FORMAT_VERSION}; retrain")
    wrong = [key for key, kind in _MANIFEST_KEYS.items() if not isinstance(manifest.get(key), kind)]
    if not wrong and not all(isinstance(manifest["embedding"].get(k), str) for k in ("name", "fingerprint")):
        wrong = ["embedding"]
    if wrong:
        raise InputError(f"{file}: {wrong[0]!r} is missing or of the wrong type; the model folder is damaged, retrain")
    return manifest


def model_embeddings(manifest: dict, db: str | os.PathLike | None = None) -> EmbeddingSet:
    """The embedding set a model was trained with, from ``db`` (default: the database recorded at training)."""
    db = db or manifest.get("db")
    if db is None:
        raise InputError(
            f"model trained with embedding set {manifest['embedding']['name']!r} from no recorded "
            "database; pass db=DB (the corpus database holding that set)"
        )
    return load_embeddings(db, manifest["embedding"]["name"])


def load_model(
    path: str | os.PathLike,
    embeddings: EmbeddingSet | None = None,
    *,
    db: str | os.PathLike | None = None,
    genes: list[str] | None = None,
) -> Predictor:
    """Load a model folder.

    Parameters
    ----------
    path
        Model folder written by :func:`save_model`.
    embeddings
        The embedding set it was trained with (another fingerprint is an :class:`InputError`); default: read
        from ``db``.
    db
        Corpus database holding the set; default: the one recorded at training.
    genes
        Readout gene order of the data to predict; another order is an :class:`InputError`.
    """
    manifest = read_manifest(path)
    path = Path(path)
    embeddings = embeddings if embeddings is not None else model_embeddings(manifest, db)
    _check_compatible(path, manifest, embeddings, genes)
    predictor = make_predictor(manifest["method"], **manifest["config"])
    state = _read_weights(path)
    predictor.genes_ = list(manifest["genes"])
    predictor.control_cells_ = state.pop("control_cells").numpy()
    predictor.control_mean_ = state.pop("control_mean").numpy()
    saved_mean = state.pop("train_mean_profile", None)  # absent from folders saved before it was kept
    predictor.train_mean_profile_ = saved_mean.numpy() if saved_mean is not None else None
    predictor.gene_rows_ = {k: int(v) for k, v in manifest["gene_rows"].items()}
    predictor.train_conditions_ = list(manifest["train_conditions"])
    predictor.embeddings_ = embeddings
    predictor.is_delta_ = bool(manifest["is_delta"])
    predictor.split_ = Split.from_json(manifest["split"])
    predictor.data_source_ = {**manifest["data"], "db": str(Path(db).resolve()) if db else manifest.get("db")}
    predictor.de_genes_ = manifest.get("de_genes", {})
    predictor.excluded_ = manifest.get("excluded", {})
    predictor.history_ = manifest.get("history", [])
    effect = {k.removeprefix(EFFECT_PREFIX): state.pop(k).numpy() for k in list(state) if k.startswith(EFFECT_PREFIX)}
    predictor.effect_ = EffectPart.from_state(effect, manifest["effect"]) if manifest.get("effect") else None
    predictor._load_state(state, manifest.get("fitted", {}))
    return predictor


def _check_compatible(path: Path, manifest: dict, embeddings: EmbeddingSet, genes: list[str] | None) -> None:
    """An :class:`InputError` unless ``embeddings`` is the set the model was trained with and ``genes`` (if given)
    are its readout genes in its order."""
    want = manifest["embedding"]
    if embeddings.fingerprint != want["fingerprint"]:
        raise InputError(
            f"{path}: trained with embedding set {want['name']!r} (fingerprint {want['fingerprint'][:12]}), "
            f"got {embeddings.name!r} ({embeddings.fingerprint[:12]}); use the same set"
        )
    if genes is not None and list(genes) != manifest["genes"]:
        raise InputError(
            f"{path}: expected {len(manifest['genes'])} readout genes in the model's order, got {len(genes)} "
            f"{'in another order' if sorted(genes) == sorted(manifest['genes']) else 'different genes'}"
        )


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``path``'s ``model.pt`` (``weights_only``); an unreadable file, or one without the shared
    state of every model, is an :class:`InputError`."""
    try:
        state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
    except Exception as exc:  # an empty, cut or foreign file fails in many ways inside torch and pickle
        raise InputError(
            f"{path / WEIGHTS}: not a readable tensor file ({type(exc).__name__}: {first_line(exc, 120)}); "
            "the model folder is damaged or not ours, retrain"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(state.get(k), torch.Tensor) for k in _SHARED_STATE):
        raise InputError(
            f"{path / WEIGHTS}: holds no model state (no {' or '.join(_SHARED_STATE)} tensors); "
            "the model folder is damaged or not ours, retrain"
        )
    return state
