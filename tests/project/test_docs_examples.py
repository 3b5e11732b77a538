"""The code in the guides runs, and prints what the guides say it prints.

Every fenced ```python block of each guide in GUIDES is run. The conventions:

* The blocks of one guide run in order, in one namespace, like the cells of a notebook:
  a later block may use what an earlier block defined. Each guide starts from a fresh
  namespace and `handgrad.manual_seed(0)`.
* A block whose info string says ```python no-run is only compiled (its syntax is
  checked), never run: code that needs a file, a network or a registry change.
  ```text, ```sh and other blocks are not Python and are left alone.
* A ```text output block that follows a python block (blank lines between are allowed)
  is that block's expected standard output; it must equal what the block printed
  (trailing spaces and trailing blank lines aside). A python block without one may print
  anything.
* Warnings are errors: an example that makes handgrad (or torch) warn is a bad example.

Code is compiled with the guide's file name and line numbers, so a traceback points at
the line of the guide that failed.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

import handgrad as hg

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ["docs/tensor.md", "docs/nn.md"]
FENCE = re.compile(r"^```(\S*)(.*)$")


@dataclass
class Block:
    info: str  # the whole info string, e.g. "python", "python no-run", "text output"
    line: int  # 1-based line of the guide where the code starts (after the fence)
    code: str

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order (fences start at column 0)."""
    blocks, current, lines = [], None, []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if current is None:
            match = FENCE.match(text)
            if match:
                current, lines = Block((match.group(1) + match.group(2)).strip(), number + 1,
                                       ""), []
        elif text.startswith("```"):
            current.code = "\n".join(lines) + "\n"
            blocks.append(current)
            current = None
        else:
            lines.append(text)
    assert current is None, f"{path}: the block opened at line {current.line - 1} never closes"
    return blocks


def follows(path: Path, earlier: Block, later: Block) -> bool:
    """True when only blank lines stand between two blocks."""
    text = path.read_text(encoding="utf-8").splitlines()
    end = earlier.line + earlier.code.count("\n")  # the closing fence of `earlier`
    return all(not line.strip() for line in text[end:later.line - 2])


def normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_examples_run_and_print_what_they_show(guide):
    path = ROOT / guide
    blocks = read_blocks(path)
    runnable = [b for b in blocks if b.language == "python" and "no-run" not in b.info.split()]
    assert runnable, f"{guide}: no ```python block found"
    namespace: dict = {"__name__": "__docs__"}
    hg.manual_seed(0)
    for i, block in enumerate(blocks):
        if block.language != "python":
            if block.info.split() == ["text", "output"]:
                previous = blocks[i - 1] if i else None
                assert previous is not None and previous.language == "python" and \
                    follows(path, previous, block), (
                        f"{guide}:{block.line - 1}: an output block must follow a python "
                        "block")
            continue
        code = compile("\n" * (block.line - 1) + block.code, str(path), "exec")
        if "no-run" in block.info.split():
            continue
        printed = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            warnings.simplefilter("error")
            exec(code, namespace)  # noqa: S102 -- the guide's own example
        after = blocks[i + 1] if i + 1 < len(blocks) else None
        if after is not None and after.info.split() == ["text", "output"] \
                and follows(path, block, after):
            assert normalise(printed.getvalue()) == normalise(after.code), (
                f"{guide}:{block.line}: the block printed\n{printed.getvalue()}\n"
                f"but the guide shows (line {after.line})\n{after.code}")


def test_readme_links_both_guides():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for guide in GUIDES:
        assert f"]({guide})" in readme, f"README.md's Documentation list lacks {guide}"
