"""The offline install folder: building it on a connected machine, and the installer it carries."""

from scouter_local._exports import lazy_exports

_NAMES = {
    "DEFAULT_MODELS": "scouter_local.bundle.build",
    "MODEL_ALIASES": "scouter_local.bundle.build",
    "PYTHON_VERSIONS": "scouter_local.bundle.build",
    "THIS_PYTHON": "scouter_local.bundle.build",
    "SELF_CHECK_TEXT": "scouter_local.bundle.build",
    "INSTALL_SH": "scouter_local.bundle.build",
    "Target": "scouter_local.bundle.build",
    "BundleReport": "scouter_local.bundle.build",
    "platform_tags": "scouter_local.bundle.build",
    "expand_models": "scouter_local.bundle.build",
    "self_check": "scouter_local.bundle.build",
    "build_bundle": "scouter_local.bundle.build",
    "MANIFEST_NAME": "scouter_local.bundle.install",
    "INFO_NAME": "scouter_local.bundle.install",
    "SOFTWARE_LOCK": "scouter_local.bundle.install",
    "MODELS_LOCK": "scouter_local.bundle.install",
    "WHEELS_DIR": "scouter_local.bundle.install",
    "Refused": "scouter_local.bundle.install",
    "sha256_file": "scouter_local.bundle.install",
    "check_manifest": "scouter_local.bundle.install",
    "main": "scouter_local.bundle.install",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
