"""Pictures of a handgrad Tensor's computation graph: `to_dot` and `draw_graph`.

The graph that produced a tensor `y` is the chain of Function nodes reached from
`y.grad_fn` through each node's `parents` (a parent is another Function node, or a leaf
tensor that requires grad). `to_dot(y)` writes it as Graphviz DOT text, read left to
right like the scalar engine's pictures (handgrad.scalar.draw):

* a box per tensor: leaf tensors (blue; named when `params=dict(model.named_parameters())`
  gives their names), the tensor each Function made (its shape and dtype), and `y`
  itself (green);
* an ellipse per Function, named by its class (`Linear`, `Mul`, `CrossEntropy`).

`draw_graph(y, path)` returns a `TensorGraph` (a `handgrad.scalar.draw.Graph`: `.source`
is the DOT text, `.save(path)` writes `.dot`, `.svg`, `.png`, `.pdf`). Pictures go
through Graphviz's `dot` program where it is installed; where it is not, they are drawn
with matplotlib in a layered layout (columns by distance from the inputs), so a picture
works on any machine with matplotlib. In Jupyter the returned object shows itself as a
picture either way.

Inputs that do not require grad are not in the graph (the engine records no edge to
them), as in torch's `grad_fn` chain. What it leaves out: values and gradients (a
tensor is too big to print in a node: look at `.grad` instead), and huge graphs (more
than `max_nodes` Function nodes is refused).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from handgrad.autograd.function import Function, TensorBase
from handgrad.scalar.draw import Graph, GraphvizNotFoundError

__all__ = ["draw_graph", "to_dot", "TensorGraph"]

_TEXT_SUFFIXES = {".dot", ".gv"}


@dataclass
class _Node:
    """One box (a tensor) or ellipse (a Function) of the picture."""

    key: str  # the DOT node name
    kind: str  # "leaf", "result" (a Function's output), "root" or "function"
    label: str  # the text in the node, lines separated by "\n"


@dataclass
class _Layout:
    """What both renderers draw: nodes in a fixed order and edges (from key, to key)."""

    nodes: list[_Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)


def _shape_text(shape, dtype) -> str:
    dims = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    return f"{dims} {str(dtype).replace('torch.', '')}"


def _function_name(node: Function) -> str:
    name = type(node).__name__
    return name[:-8] if name.endswith("Backward") and len(name) > 8 else name


def _build(root, params: dict | None, max_nodes: int | None) -> _Layout:
    if not isinstance(root, TensorBase):
        raise TypeError(f"draw_graph: expected a handgrad Tensor, got {type(root).__name__} "
                        "(for a scalar Value use handgrad.scalar.draw_graph)")
    names = {}
    for name, tensor in (params or {}).items():
        if not isinstance(tensor, TensorBase):
            raise TypeError(f"draw_graph: params[{name!r}] is a {type(tensor).__name__}, not a "
                            "handgrad Tensor; pass params=dict(model.named_parameters())")
        names[id(tensor)] = name
    layout = _Layout()
    root_key = "t_root"
    root_label = "output" if id(root) not in names else names[id(root)]
    layout.nodes.append(_Node(root_key, "root" if root._ctx is not None else "leaf",
                              f"{root_label}\n{_shape_text(root.data.shape, root.data.dtype)}"))
    if root._ctx is None:
        return layout  # a leaf (or a tensor without history): just the one box
    keys: dict[int, str] = {}  # id(Function or leaf tensor) -> node key
    order: list = []  # Functions, root first (depth-first discovery)
    stack = [root._ctx]
    keys[id(root._ctx)] = "f0"
    while stack:
        node = stack.pop()
        order.append(node)
        for parent in node.parents:
            if parent is None or id(parent) in keys:
                continue
            if isinstance(parent, Function):
                keys[id(parent)] = f"f{len(keys)}"
                stack.append(parent)
                if max_nodes is not None and len(order) + len(stack) > max_nodes:
                    raise ValueError(
                        f"draw_graph: the graph has more than {max_nodes} Function nodes; a "
                        "picture that big is unreadable and slow to lay out. Draw a smaller "
                        "example, or pass max_nodes=None to draw it anyway.")
            else:
                keys[id(parent)] = f"t{len(keys)}"
                label = names.get(id(parent), "leaf")
                layout.nodes.append(_Node(keys[id(parent)], "leaf", f"{label}\n"
                                          f"{_shape_text(parent.data.shape, parent.data.dtype)}"))
    for node in order:
        key = keys[id(node)]
        layout.nodes.append(_Node(key, "function", _function_name(node)))
        if node is root._ctx:
            layout.edges.append((key, root_key))
        else:
            shape, dtype, _ = node.output_metadata
            layout.nodes.append(_Node(key + "_out", "result", _shape_text(shape, dtype)))
            layout.edges.append((key, key + "_out"))
        for parent in node.parents:
            if parent is None:
                continue
            parent_key = keys[id(parent)]
            source = parent_key + "_out" if isinstance(parent, Function) else parent_key
            layout.edges.append((source, key))
    return layout


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_DOT_STYLE = {
    "leaf": 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"',
    "root": 'shape=box, style="rounded,filled", fillcolor="#d5f0d5"',
    "result": 'shape=box, style=rounded, fontsize=10',
    "function": 'shape=ellipse, style=filled, fillcolor="#f3f3f3"',
}


def _dot_source(layout: _Layout, rankdir: str) -> str:
    lines = ["digraph G {", f"  rankdir={rankdir};",
             '  node [fontname="Helvetica", fontsize=11];']
    for node in layout.nodes:
        lines.append(f'  {node.key} [{_DOT_STYLE[node.kind]}, label="{_escape(node.label)}"];')
    for source, target in layout.edges:
        lines.append(f"  {source} -> {target};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(root, params: dict | None = None, rankdir: str = "LR",
           max_nodes: int | None = 300) -> str:
    """DOT text for the graph that produced the handgrad Tensor `root`.

    `params` maps names to tensors (`dict(model.named_parameters())`): leaves found there
    are labelled with their names, other leaves say `leaf`.
    """
    return _dot_source(_build(root, params, max_nodes), rankdir)


def _columns(layout: _Layout) -> dict[str, int]:
    """Column of each node: its longest path from a node with no incoming edge."""
    incoming: dict[str, list[str]] = {n.key: [] for n in layout.nodes}
    outgoing: dict[str, list[str]] = {n.key: [] for n in layout.nodes}
    for source, target in layout.edges:
        incoming[target].append(source)
        outgoing[source].append(target)
    # Kahn's order (iterative: deep graphs are fine), then longest path along it.
    pending = {key: len(sources) for key, sources in incoming.items()}
    ready = [n.key for n in layout.nodes if pending[n.key] == 0]
    column = dict.fromkeys(ready, 0)
    while ready:
        key = ready.pop()
        for target in outgoing[key]:
            column[target] = max(column.get(target, 0), column[key] + 1)
            pending[target] -= 1
            if pending[target] == 0:
                ready.append(target)
    # A source (a leaf) sits just before the first node that uses it, not far left.
    for key, sources in incoming.items():
        if not sources and outgoing[key]:
            column[key] = min(column[target] for target in outgoing[key]) - 1
    return column


_MPL_COLOURS = {"leaf": "#dbe9f6", "root": "#d5f0d5", "result": "white", "function": "#f3f3f3"}


class TensorGraph(Graph):
    """DOT text of a Tensor graph, plus a matplotlib picture for machines without Graphviz."""

    def __init__(self, layout: _Layout, rankdir: str = "LR") -> None:
        super().__init__(_dot_source(layout, rankdir))
        self._layout = layout
        self.rankdir = rankdir

    def plot(self, ax=None, dpi: int = 80):
        """Draw the graph with matplotlib (layered layout); returns the figure."""
        import matplotlib.pyplot as plt

        layout = self._layout
        column = _columns(layout)
        rows: dict[int, list[str]] = {}
        for node in layout.nodes:
            rows.setdefault(column[node.key], []).append(node.key)
        width = max(rows) + 1
        height = max(len(keys) for keys in rows.values())
        position = {}
        for c, keys in rows.items():
            for r, key in enumerate(keys):
                offset = (height - len(keys)) / 2
                across, down = c, offset + r
                position[key] = (across, -down) if self.rankdir == "LR" else (down, -across)
        if ax is None:
            size = (max(3.0, 2.0 * width), max(1.5, 0.9 * height))
            if self.rankdir != "LR":
                size = (max(3.0, 2.0 * height), max(1.5, 0.9 * width))
            fig, ax = plt.subplots(figsize=size, dpi=dpi)
        else:
            fig = ax.figure
        texts = {}
        for node in layout.nodes:
            box = "round4,pad=0.3" if node.kind == "function" else "round,pad=0.3"
            texts[node.key] = ax.text(
                *position[node.key], node.label, ha="center", va="center",
                fontsize=8 if node.kind != "result" else 7,
                bbox=dict(boxstyle=box, facecolor=_MPL_COLOURS[node.kind],
                          edgecolor="#333333", lw=0.8))
        # Each arrow runs from the edge of its source's box to the edge of its target's
        # (anchored on the two text artists), so its head is never hidden under a box. An
        # edge that skips columns (a tensor used again further on) bends around the
        # nodes between, which would otherwise sit on top of it: above them (LR) or to
        # their right (TB), by about the same height whatever its length.
        leave, arrive = ((1, 0.5), (0, 0.5)) if self.rankdir == "LR" else ((0.5, 0), (0.5, 1))
        bend = 0.5 if self.rankdir == "LR" else 1.5
        for source, target in layout.edges:
            span = abs(column[target] - column[source])
            rad = -bend / span if span > 1 else 0.0
            ax.annotate("", xy=arrive, xycoords=texts[target], xytext=leave,
                        textcoords=texts[source],
                        arrowprops=dict(arrowstyle="->", color="#555555", lw=0.8,
                                        shrinkA=4, shrinkB=4,
                                        connectionstyle=f"arc3,rad={rad:.3f}"))
        xs = [p[0] for p in position.values()]
        ys = [p[1] for p in position.values()]
        bends = any(abs(column[t] - column[s]) > 1 for s, t in layout.edges)
        room = 1.2 if bends else 0.6  # the bent edges pass above (LR) or right of (TB) the rest
        ax.set_xlim(min(xs) - 0.6, max(xs) + (0.6 if self.rankdir == "LR" else room))
        ax.set_ylim(min(ys) - 0.6, max(ys) + (room if self.rankdir == "LR" else 0.6))
        ax.axis("off")
        return fig

    def render(self, format: str = "svg") -> bytes:
        """The picture as bytes: Graphviz's `dot` where installed, else matplotlib
        (svg, png, pdf)."""
        try:
            return super().render(format)
        except GraphvizNotFoundError as error:
            if format not in ("svg", "png", "pdf"):
                raise GraphvizNotFoundError(
                    f"{error} Without Graphviz, handgrad.draw_graph still draws .svg, .png and "
                    ".pdf pictures of a Tensor graph (with matplotlib).") from None
        import matplotlib.pyplot as plt

        fig = self.plot()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=format, bbox_inches="tight")
        plt.close(fig)
        return buffer.getvalue()

    def _repr_svg_(self):  # the picture comes from _repr_mimebundle_, once
        return None

    def _repr_mimebundle_(self, include=None, exclude=None):  # Jupyter: one picture
        try:
            return {"image/svg+xml": Graph.render(self, "svg").decode()}
        except GraphvizNotFoundError:
            return {"image/png": self.render("png")}

    def __repr__(self) -> str:
        functions = sum(1 for n in self._layout.nodes if n.kind == "function")
        return f"TensorGraph({functions} Functions, {len(self._layout.nodes)} nodes)"


def draw_graph(root, path: str | Path | None = None, *, params: dict | None = None,
               format: str | None = None, rankdir: str = "LR",
               max_nodes: int | None = 300) -> TensorGraph:
    """Draw the computation graph that produced the handgrad Tensor `root`.

    `params=dict(model.named_parameters())` names the parameters among the leaves. The
    suffix of `path` (if given) picks what is written: `.dot`/`.gv` the DOT text,
    `.svg`/`.png`/`.pdf` a picture (Graphviz's `dot`, or matplotlib without it).
    Returns a `TensorGraph`; `.plot()` draws it with matplotlib, Jupyter displays it.
    """
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"draw_graph: rankdir must be 'LR' or 'TB', got {rankdir!r}")
    graph = TensorGraph(_build(root, params, max_nodes), rankdir)
    if path is not None:
        graph.save(path, format)
    return graph
