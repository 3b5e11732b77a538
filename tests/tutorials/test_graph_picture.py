"""The Tensor graph picture the tutorials show (notebook 7) where Graphviz is missing:
handgrad.graph's matplotlib drawing. Every arrow starts and ends on the edge of a box (so
its head shows), an edge that skips columns bends around the nodes it would cross, and a
format only Graphviz makes says what works without it. The DOT text and the Graphviz path
are tested in tests/autograd/test_tensor_graph.py."""

import shutil

import pytest

import handgrad as hg
from handgrad.scalar.draw import GraphvizNotFoundError


def test_arrows_sit_on_the_boxes_and_skip_edges_bend(monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    from matplotlib.text import Annotation, Text

    monkeypatch.setattr(shutil, "which", lambda name: None)
    a = hg.randn(3, requires_grad=True)
    graph = hg.draw_graph((a.exp() * a).sum(), params={"a": a})  # a feeds Exp, then Mul
    fig = graph.plot()
    arrows = [t for t in fig.axes[0].texts if isinstance(t, Annotation)]
    assert len(arrows) == len(graph._layout.edges) == 7
    assert all(isinstance(t.xycoords, Text) and isinstance(t.anncoords, Text) for t in arrows)
    bends = [t.arrow_patch.get_connectionstyle().rad for t in arrows]
    assert sum(rad != 0 for rad in bends) == 1  # only a -> Mul skips columns
    fig.canvas.draw()  # the anchors resolve when drawn
    plt.close(fig)
    assert graph.render("png").startswith(b"\x89PNG")
    with pytest.raises(GraphvizNotFoundError, match="still draws .svg, .png and .pdf"):
        graph.render("jpg")
