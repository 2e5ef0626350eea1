"""scouter-local: offline prediction of transcriptional responses to unseen genetic perturbations."""

import os

# Offline by default: nothing reaches a model hub unless a command is given --allow-download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from gene_corpus.errors import InputError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
