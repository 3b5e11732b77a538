"""Build the tutorial notebooks: tutorials/src/NN_name.py -> tutorials/NN_name.ipynb, executed.

Each tutorial is written as a Python "percent" script, so it reads well in an editor and
diffs well in git:

    # %% [markdown]
    # # A title
    # Markdown text, each line behind `# `.

    # %%
    x = 1 + 1        # a code cell runs until the next `# %%` line

    # %%
    # check
    assert x == 2, "x should be 2"   # an exercise's check: first line `# check`
    print("correct")

A code cell whose first line is `# check` checks an exercise. It is stored with its source
collapsed (`jupyter.source_hidden`: JupyterLab shows it as `...`; a click opens it), so
the check's code, which is close to an answer, is not in sight while the learner works;
its output, `correct` or what is wrong, shows as usual.

This tool turns every script into a Jupyter notebook (nbformat 4), runs it top to bottom in
a fresh kernel (nbclient; the kernel is this interpreter's `python3`, started in tutorials/
so relative paths work) and writes the notebook with its outputs (plots included) next to
the sources. It prints the seconds each notebook took.

    python tools/build_tutorials.py              # every notebook
    python tools/build_tutorials.py 01 03_mlp    # only those (a number or a name prefix)
    python tools/build_tutorials.py --no-execute # convert only, no outputs

`make tutorials` runs it. tests/tutorials/test_notebooks.py imports `script_to_notebook`
from here to check that each committed notebook matches its source, then re-executes it.

What it leaves out: jupytext's full format (cell metadata after `# %%`, other comment
styles); only the two markers above are read. Anything before the first marker is ignored.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "tutorials"
SOURCES = TUTORIALS / "src"
CELL_TIMEOUT_S = 300          # seconds one cell may run before the build fails
_MARKDOWN = "# %% [markdown]"
_CODE = "# %%"
CHECK_MARK = "# check"        # the first line of a code cell that checks an exercise


def parse_percent_script(text: str) -> list[tuple[str, str]]:
    """The cells of a percent script as (kind, source) pairs, kind "code" or "markdown".

    Markdown lines lose their leading `# ` (a bare `#` is an empty line). Blank lines at the
    start and end of a cell are dropped; empty cells are dropped.
    """
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        stripped = line.rstrip()
        if stripped == _MARKDOWN:
            cells.append(("markdown", []))
        elif stripped == _CODE or stripped.startswith(_CODE + " "):
            if stripped.startswith(_CODE + " ["):
                raise ValueError(f"build_tutorials: unknown cell marker {stripped!r}; "
                                 f"use {_CODE!r} or {_MARKDOWN!r}")
            cells.append(("code", []))
        elif cells:
            kind, lines = cells[-1]
            if kind == "markdown":
                if stripped == "#":
                    line = ""
                elif line.startswith("# "):
                    line = line[2:]
                elif stripped:
                    raise ValueError(
                        f"build_tutorials: markdown cell line {line!r} does not start with "
                        "'# '; write markdown as comment lines, or start a code cell with "
                        f"{_CODE!r}")
            lines.append(line.rstrip())
    out = []
    for kind, lines in cells:
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            out.append((kind, "\n".join(lines)))
    return out


def is_check_cell(cell) -> bool:
    """True for the code cell that checks an exercise: its first line is `# check`."""
    return cell.cell_type == "code" and cell.source.split("\n", 1)[0].strip() == CHECK_MARK


def script_to_notebook(path: Path):
    """An unexecuted nbformat notebook made from the percent script at `path`.

    Cell ids are stable (`cell-0`, `cell-1`, ...) so a rebuild changes only what changed.
    Check cells (first line `# check`) are marked collapsed.
    """
    import nbformat

    nb = nbformat.v4.new_notebook()
    for i, (kind, source) in enumerate(parse_percent_script(path.read_text(encoding="utf-8"))):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = make(source)
        cell["id"] = f"cell-{i}"
        if is_check_cell(cell):
            cell.metadata["jupyter"] = {"source_hidden": True}
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute_notebook(nb, cwd: Path, timeout: int = CELL_TIMEOUT_S):
    """Run `nb` top to bottom in a fresh python3 kernel started in `cwd`; return it.

    Raises nbclient's CellExecutionError (which shows the failing cell and traceback) on the
    first error. The kernel inherits this process's environment (HANDGRAD_DATA included),
    with OMP_NUM_THREADS=1 unless it is set, so timings match a one-thread laptop run.
    """
    from nbclient import NotebookClient

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def select_sources(names: list[str]) -> list[Path]:
    """The source scripts named by `names` (numbers or name prefixes); all when empty."""
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if not names:
        return sources
    chosen = []
    for name in names:
        stem = Path(name).stem
        hits = [s for s in sources if s.stem == stem or s.stem.startswith(stem)]
        if not hits:
            known = ", ".join(s.stem for s in sources) or "none"
            raise SystemExit(f"build_tutorials: no tutorial source matches {name!r} in "
                             f"{SOURCES} (known: {known})")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def build(source: Path, execute: bool = True, timeout: int = CELL_TIMEOUT_S) -> float:
    """Convert (and run) one source script, write tutorials/<name>.ipynb; return seconds."""
    import nbformat

    start = time.perf_counter()
    nb = script_to_notebook(source)
    if execute:
        execute_notebook(nb, TUTORIALS, timeout)
    nbformat.validate(nb)
    target = TUTORIALS / f"{source.stem}.ipynb"
    nbformat.write(nb, str(target))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert tutorials/src/*.py percent scripts to executed notebooks.")
    parser.add_argument("names", nargs="*",
                        help="notebooks to build, by number or name prefix (default: all)")
    parser.add_argument("--no-execute", action="store_true",
                        help="convert only: write notebooks without running them")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S,
                        help=f"seconds one cell may run (default {CELL_TIMEOUT_S})")
    args = parser.parse_args(argv)
    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as error:
        print(f"build_tutorials: {error.name} is not installed; run "
              "`pip install -e '.[tutorials]'` (or '.[dev]') first", file=sys.stderr)
        return 2
    sources = select_sources(args.names)
    if not sources:
        print(f"build_tutorials: no sources in {SOURCES}", file=sys.stderr)
        return 1
    total = 0.0
    from nbclient.exceptions import CellExecutionError

    for source in sources:
        try:
            seconds = build(source, execute=not args.no_execute, timeout=args.timeout)
        except CellExecutionError as error:   # the failing cell and its traceback
            print(f"build_tutorials: {source.name} failed; its notebook was not written.\n"
                  f"{error}", file=sys.stderr)
            return 1
        total += seconds
        size_kb = (TUTORIALS / f"{source.stem}.ipynb").stat().st_size / 1024
        print(f"{source.stem:32s} {seconds:6.1f} s  {size_kb:7.1f} KB", flush=True)
    print(f"{'total':32s} {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
