"""Run the `handgrad` command from another checkout, for before/after benchmarks.

    python tools/run_at.py ROOT bench core --threads 1

imports handgrad from ROOT (for example a `git worktree` of an older commit) instead of
the editable install, which would otherwise serve this working tree to both runs, then
calls `handgrad.cli.main` with the remaining arguments.
"""

import os
import sys

root, arguments = os.path.abspath(sys.argv[1]), sys.argv[2:]
sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in repr(finder).lower()]
sys.path.insert(0, root)

import handgrad  # noqa: E402
from handgrad.cli import main  # noqa: E402

if not os.path.abspath(handgrad.__file__).startswith(root + os.sep):
    raise SystemExit(f"run_at: imported handgrad from {handgrad.__file__}, not from {root}")
raise SystemExit(main(arguments))
