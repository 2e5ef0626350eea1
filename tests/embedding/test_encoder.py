"""Encoders on real models: lookup, fingerprints, pooling, chunking, left padding, quantisation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.embedding.encoder import Encoder
from scouter_local.embedding.models import model_fingerprint, resolve_model
from scouter_local.embedding.spec import resolve_spec
from tests._realdata import MINILM, SMOLLM2


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.fixture(scope="module")
def texts(data_dir) -> list[str]:
    data = json.loads((data_dir / "gene_text" / "genept_ncbi_uniprot_perturbed_genes.json").read_text())
    return list(data.values())[:40]


@pytest.mark.slow  # loads the real model
def test_package_models_are_found():
    minilm = resolve_model(MINILM)
    assert minilm.kind == "package" and (minilm.path / "config.json").is_file() and minilm.gguf_file is None
    smol = resolve_model(SMOLLM2)
    assert smol.gguf_file and smol.gguf_file.endswith(".gguf")


def test_unknown_model_needs_allow_download():
    with pytest.raises(InputError, match="allow_download=True"):
        resolve_model("no-such-org/no-such-model")


@pytest.mark.slow  # loads the real model
def test_minilm_spec_defaults_from_sentence_transformers_files():
    spec = resolve_spec(MINILM)
    assert (spec.pooling, spec.max_tokens, spec.decoder, spec.prefix) == ("mean", 256, False, "")
    assert len(spec.model_fingerprint) == 32


@pytest.mark.slow  # loads the real model
def test_remote_code_folder_refused(tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(resolve_model(MINILM).path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"auto_map": {"AutoModel": "modeling_x.XModel"}}))
    with pytest.raises(InputError, match="trust_remote_code=True"):
        resolve_spec(folder)
    assert resolve_spec(folder, trust_remote_code=True).model_fingerprint != resolve_spec(MINILM).model_fingerprint


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="mean, cls, last"):
        resolve_spec(MINILM, pooling="max")
    with pytest.raises(InputError, match="8bit, 4bit"):
        resolve_spec(MINILM, quantize="2bit")


def test_minilm_matches_sentence_transformers_on_short_texts(minilm_encoder, texts):
    from sentence_transformers import SentenceTransformer

    short = [t for t in texts if len(t) < 700][:10]
    ours = minilm_encoder.encode(short, batch_size=4)
    assert minilm_encoder.stats.chunked == 0
    reference = SentenceTransformer(minilm_encoder.spec.load_path, device="cpu").encode(short)
    assert _cos(ours, reference).min() > 0.9999


def test_long_texts_are_chunked_and_averaged(minilm_encoder, texts):
    long = max(texts, key=len)
    chunked = Encoder(resolve_spec(MINILM, max_tokens=64), device="cpu")
    vector = chunked.encode([long])
    assert chunked.stats.chunked == 1 and chunked.stats.chunks > 3
    # the chunk average still describes the same gene: closer to its own full-window vector than to other genes
    full = minilm_encoder.encode([long] + texts[:5])
    sims = _cos(vector, full)
    assert sims[0] > 0.8 and sims[0] == sims.max()


def test_batch_order_and_padding_do_not_change_vectors(minilm_encoder, texts):
    alone = np.stack([minilm_encoder.encode([t])[0] for t in texts[:6]])
    batched = minilm_encoder.encode(texts[:6], batch_size=3)
    np.testing.assert_allclose(batched, alone, atol=2e-5)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A tiny random Llama causal LM saved as a local folder (with MiniLM's tokenizer)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny_llama")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MINILM).path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_decoder_left_padding_is_invisible(tiny_llama, texts, pooling):
    spec = resolve_spec(tiny_llama, pooling=pooling)
    assert spec.decoder and resolve_spec(tiny_llama).pooling == "last"
    encoder = Encoder(spec, device="cpu")
    short, long = "Gene Symbol TP53 tumor protein p53", texts[0][:400]
    alone = encoder.encode([short])
    padded = encoder.encode([short, long], batch_size=2)  # short is left padded next to the long text
    np.testing.assert_allclose(padded[0], alone[0], atol=1e-4)


def test_poolings_differ(minilm_encoder, texts):
    spec = minilm_encoder.spec
    cls = Encoder(resolve_spec(MINILM, pooling="cls"), device="cpu").encode(texts[:3])
    mean = minilm_encoder.encode(texts[:3])
    assert cls.shape == mean.shape == (3, 384) and spec.pooling == "mean"
    assert _cos(cls, mean).max() < 0.99


def _bnb_cpu_unsupported(quantize: str) -> str | None:
    """Why this bitsandbytes cannot run ``quantize`` layers on CPU (``None`` when it can): a tiny layer is
    quantised and run, as the model's layers will be."""
    import torch

    try:
        import bitsandbytes as bnb

        layer = (
            bnb.nn.Linear8bitLt(8, 8, has_fp16_weights=False)
            if quantize == "8bit"
            else bnb.nn.Linear4bit(8, 8, quant_type="nf4")
        )
        layer.to("cpu")(torch.randn(2, 8))
    except Exception as exc:  # any failure here is the library's, not ours: say which and skip
        return f"bitsandbytes cannot run {quantize} layers on CPU here: {type(exc).__name__}: {exc}"
    return None


@pytest.mark.parametrize(
    "quantize, layer, stored, floor", [("8bit", "Linear8bitLt", "int8", 0.98), ("4bit", "Linear4bit", "uint8", 0.85)]
)
def test_bitsandbytes_quantisation_loads_quantised_layers_on_cpu(minilm_encoder, texts, quantize, layer, stored, floor):
    import torch

    reason = _bnb_cpu_unsupported(quantize)
    if reason:
        pytest.skip(reason)
    import bitsandbytes as bnb

    spec = resolve_spec(MINILM, quantize=quantize)
    assert (
        spec.model_fingerprint == minilm_encoder.spec.model_fingerprint
        and spec.identity() != minilm_encoder.spec.identity()
    )
    encoder = Encoder(spec, device="cpu")
    plain = {n: m for n, m in minilm_encoder.model.named_modules() if isinstance(m, torch.nn.Linear)}
    linear = {n: m for n, m in encoder.model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert len(plain) == 37 and linear.keys() == plain.keys()  # every linear layer of the 6 BERT blocks + pooler
    assert {type(m) for m in linear.values()} == {getattr(bnb.nn, layer)}
    for name, m in linear.items():
        weight = m.weight
        assert weight.dtype == getattr(torch, stored) and weight.device.type == "cpu"
        if quantize == "8bit":  # one int8 per weight
            assert weight.shape == plain[name].weight.shape
        else:  # NF4: two weights per byte, with their quantisation state
            assert weight.numel() * 2 == plain[name].weight.numel() and weight.quant_state is not None
    quantised = encoder.encode(texts[:4])
    exact = minilm_encoder.encode(texts[:4])
    assert _cos(quantised, exact).min() > floor
    assert np.abs(quantised - exact).max() > 1e-4  # the quantised weights are what computed the vectors


@pytest.mark.slow  # loads the real model
def test_fingerprint_depends_on_bytes(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(resolve_model(MINILM).path, folder)
    before = model_fingerprint(resolve_model(folder))
    assert before == model_fingerprint(resolve_model(MINILM))
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")
    assert model_fingerprint(resolve_model(folder)) != before
