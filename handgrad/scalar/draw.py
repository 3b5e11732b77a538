"""Pictures of a computation graph of Values, and the `handgrad graph` command.

`to_dot(v)` writes Graphviz DOT text for the graph that produced `v`: one record per
Value (label | data | grad) and one small node per op, read left to right, like
micrograd's `draw_dot`. It needs nothing but the standard library.

`draw_graph(v, path)` also writes a picture: `.dot`/`.gv` is the DOT text itself;
`.svg`, `.png`, `.pdf` go through Graphviz's `dot` program, which must be installed
(Debian/Ubuntu: `sudo apt-get install graphviz`; macOS: `brew install graphviz`;
conda: `conda install graphviz`). In Jupyter the returned `Graph` shows itself as SVG.

What it leaves out: the Python `graphviz` package (not needed: `dot` reads DOT text on
stdin), and layout of huge graphs (more than `max_nodes` Values is refused: nobody can
read such a picture; draw a smaller example).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from handgrad.scalar.engine import Value, op_text

__all__ = ["Graph", "to_dot", "draw_graph", "GraphvizNotFoundError"]

INSTALL_HINT = (
    "Install Graphviz to render pictures: `sudo apt-get install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS) or `conda install graphviz`. Without it, save DOT text "
    "(a path ending in .dot) and paste it into any online Graphviz viewer."
)
_TEXT_SUFFIXES = {".dot", ".gv"}


class GraphvizNotFoundError(RuntimeError):
    """Raised when a picture format needs Graphviz's `dot` program and it is not on PATH."""


def _graph_nodes(root: Value, max_nodes: int | None) -> list[Value]:
    """Every Value `root` depends on (itself included), oldest first."""
    seen = {root}
    stack = [root]
    while stack:
        for child in stack.pop()._prev:
            if child not in seen:
                seen.add(child)
                stack.append(child)
                if max_nodes is not None and len(seen) > max_nodes:
                    raise ValueError(
                        f"draw_graph: the graph has more than {max_nodes} Values; a picture "
                        "that big is unreadable and slow to lay out. Draw a smaller example, "
                        "or pass max_nodes=None to draw it anyway.")
    return sorted(seen, key=lambda v: v._order)


def _number(x: float) -> str:
    if x == 0 or 1e-4 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.4g}"


def _escape(text: str) -> str:
    # Characters with a meaning inside a DOT record label.
    for ch in '\\{}|<>"':
        text = text.replace(ch, "\\" + ch)
    return text


def to_dot(root: Value, rankdir: str = "LR", max_nodes: int | None = 500) -> str:
    """DOT text for the graph that produced `root`.

    Each Value is a record `label | data ... | grad ...`; each op is an ellipse named by
    the op ("*", "tanh", "+ 1" for a Value plus the number 1) with an edge from each
    input Value and an edge to the Value it made.
    """
    if not isinstance(root, Value):
        raise TypeError(f"to_dot: expected a Value, got {type(root).__name__}")
    nodes = _graph_nodes(root, max_nodes)
    name = {v: f"v{i}" for i, v in enumerate(nodes)}
    lines = [
        "digraph G {",
        f"  rankdir={rankdir};",
        '  node [fontname="Helvetica", fontsize=11];',
    ]
    # Graphviz lays a record's fields out at right angles to rankdir, and braces turn
    # them once more: with braces in LR (and none in TB) a record reads across the page.
    open_, close = ("{ ", " }") if rankdir in ("LR", "RL") else ("", "")
    for v in nodes:
        label = _escape(v.label) if v.label else " "
        lines.append(f'  {name[v]} [shape=record, label="{open_}{label} | data {_number(v.data)} '
                     f'| grad {_number(v.grad)}{close}"];')
    for v in nodes:
        if not v._op:
            continue
        op = f"{name[v]}_op"
        lines.append(f'  {op} [shape=ellipse, label="{_escape(op_text(v._op))}"];')
        for child in v._prev:
            lines.append(f"  {name[child]} -> {op};")
        lines.append(f"  {op} -> {name[v]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class Graph:
    """DOT text of a computation graph, which can save itself as text or a picture."""

    def __init__(self, source: str) -> None:
        self.source = source

    def render(self, format: str = "svg") -> bytes:
        """The picture as bytes in `format` (svg, png, pdf, ...), made by Graphviz's `dot`."""
        dot = shutil.which("dot")
        if dot is None:
            raise GraphvizNotFoundError(
                f"draw_graph: rendering {format.upper()} needs Graphviz's `dot` program, "
                f"which is not on PATH. {INSTALL_HINT}")
        result = subprocess.run([dot, f"-T{format}"], input=self.source.encode(),
                                capture_output=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"draw_graph: `dot -T{format}` failed: "
                               f"{result.stderr.decode(errors='replace').strip()}")
        return result.stdout

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write DOT text (.dot, .gv) or a picture (.svg, .png, .pdf, ...) to `path`."""
        path = Path(path)
        format = format or path.suffix.lstrip(".").lower() or "dot"
        data = (self.source.encode() if f".{format}" in _TEXT_SUFFIXES
                else self.render(format))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def _repr_svg_(self) -> str | None:  # Jupyter shows the picture when dot is installed
        try:
            return self.render("svg").decode()
        except GraphvizNotFoundError:
            return None

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"Graph({self.source.count('shape=record')} Values)"


def draw_graph(root: Value, path: str | Path | None = None, *, format: str | None = None,
               rankdir: str = "LR", max_nodes: int | None = 500) -> Graph:
    """Draw the computation graph that produced `root`; write it to `path` if given.

    The suffix of `path` picks the output: `.dot`/`.gv` writes DOT text (no Graphviz
    needed), `.svg`/`.png`/`.pdf` a picture made by Graphviz's `dot`. Returns a `Graph`
    (its `.source` is the DOT text; Jupyter displays it as a picture).
    """
    graph = Graph(to_dot(root, rankdir=rankdir, max_nodes=max_nodes))
    if path is not None:
        graph.save(path, format)
    return graph


# ---- the `handgrad graph` command -----------------------------------------------------


def neuron_example() -> Value:
    """The first graph of the lecture: o = tanh(x1*w1 + x2*w2 + b), after backward."""
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")  # inputs
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")  # weights
    b = Value(6.8813735870195432, label="b")  # bias, chosen so that o is about 0.7071
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.label = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="neuron.svg",
                        help="where to write: .svg/.png/.pdf (needs Graphviz's dot), "
                             ".dot for DOT text, or - to print DOT text (default: neuron.svg)")
    parser.add_argument("--rankdir", default="LR", choices=["LR", "TB"],
                        help="layout direction: left to right (LR) or top to bottom (TB)")


def run(args: argparse.Namespace) -> int:
    graph = draw_graph(neuron_example(), rankdir=args.rankdir)
    if args.out == "-":
        print(graph.source, end="")
        return 0
    try:
        path = graph.save(args.out)
    except GraphvizNotFoundError as error:
        fallback = Path(args.out).with_suffix(".dot")
        graph.save(fallback)
        print(f"handgrad graph: {error}\nWrote the DOT text to {fallback} instead.")
        return 1
    print(f"handgrad graph: wrote the graph of o = tanh(x1*w1 + x2*w2 + b) to {path}")
    return 0
