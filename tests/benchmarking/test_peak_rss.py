"""Peak memory in benchmark tables is each run's own: ``VmHWM`` of the child, not ``ru_maxrss``.

On Linux a child's ``ru_maxrss`` starts from the memory of the parent it was forked (or vforked) from, so a small
run spawned by a big process reports the big one's figure. These tests spawn children from a parent that holds
:data:`HELD_MIB` and check that the figures the benchmarks print stay the child's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

HELD_MIB = 600

#: A parent that holds HELD_MIB of touched memory while it runs the code it is given (which spawns the child).
PARENT = f"""
import sys
import numpy as np
held = np.ones({HELD_MIB} * 2**20 // 8)
exec(sys.argv[1])
"""
CHILD = (
    "import json, resource; from scouter_local.runtime import own_peak_rss_mib; "
    "print(json.dumps({'own': own_peak_rss_mib(), "
    "'ru_maxrss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
)
SPAWN_CHILD = (
    "import subprocess; print(subprocess.run([sys.executable, '-c', "
    + repr(CHILD)
    + "], capture_output=True, text=True, check=True).stdout)"
)


def _last_json(text: str):
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is read from /proc (Linux)")
def test_own_peak_is_the_child_s_not_the_parent_s():
    child = _last_json(
        subprocess.run(
            [sys.executable, "-c", PARENT, SPAWN_CHILD], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout
    )
    assert child["ru_maxrss"] >= HELD_MIB  # why VmHWM: ru_maxrss carries the parent's memory over
    assert child["own"] < HELD_MIB / 2  # the child itself only imported a few modules (~180 MiB)


@pytest.mark.slow  # four processes load a screen, two of them beside 600 MiB
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is read from /proc (Linux)")
def test_scale_benchmark_rss_does_not_depend_on_the_parent(tmp_path):
    """The same ``load`` stage of ``benchmarks.scale`` reports the same peak from a light and a heavy parent."""
    from benchmarks.scale import generate

    path = generate(tmp_path / "screen.h5ad", 2000, 200)
    stage = (
        "import json; from pathlib import Path; from benchmarks.scale import _child; "
        f"print(json.dumps(_child('load', Path({str(path)!r}), 300)))"
    )
    light = _last_json(
        subprocess.run([sys.executable, "-c", stage], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    )
    heavy = _last_json(
        subprocess.run(
            [sys.executable, "-c", PARENT, stage], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout
    )
    assert "error" not in light and "error" not in heavy, (light, heavy)
    assert heavy["peak_rss_gib"] * 1024 < HELD_MIB - 100
    assert abs(heavy["peak_rss_gib"] - light["peak_rss_gib"]) <= 0.06  # GiB: the same run, whoever spawned it
