"""``python -m scouter_local.benchmarking SPEC_JSON``: one benchmark run in this process (see :mod:`.runner`)."""

import sys

from scouter_local.benchmarking.runner import main

main(sys.argv[1:])
