"""handgrad.draw_graph / to_dot on Tensor graphs: the nodes and edges, parameter names,
the DOT text, and pictures with and without Graphviz (the matplotlib fallback)."""

import shutil

import pytest

import handgrad as hg
import handgrad.graph as graph_module
import handgrad.nn.functional as F
from handgrad import nn
from handgrad.scalar.draw import GraphvizNotFoundError


def _mlp_loss():
    hg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    loss = F.cross_entropy(model(hg.randn(5, 4)), hg.tensor([0, 1, 2, 0, 1]))
    return model, loss


def test_functions_tensors_and_parameter_names():
    model, loss = _mlp_loss()
    source = hg.draw_graph(loss, params=dict(model.named_parameters())).source
    assert source.count("shape=ellipse") == 4  # Linear, Relu, Linear, CrossEntropy
    assert source.count('label="Linear"') == 2
    for name, p in model.named_parameters():
        shape = "(" + ", ".join(map(str, p.shape)) + ("," if p.dim() == 1 else "") + ")"
        assert f"{name}\\n{shape} float32" in source
    assert "output\\n() float32" in source
    assert "(5, 8) float32" in source  # the tensors in between carry their shapes
    assert source == hg.to_dot(loss, params=dict(model.named_parameters()))


def test_edges_follow_the_graph():
    a = hg.randn(3, requires_grad=True)
    b = hg.randn(3, requires_grad=True)
    y = (a * b + a).sum()
    layout = graph_module._build(y, {"a": a, "b": b}, 300)
    label = {n.key: n.label.split("\n")[0] for n in layout.nodes}
    edges = {(label[s], label[t]) for s, t in layout.edges}
    assert ("a", "Mul") in edges and ("b", "Mul") in edges and ("a", "Add") in edges
    assert ("Sum", "output") in edges
    # a leaf shared by two Functions is one node
    assert sum(1 for n in layout.nodes if n.label.startswith("a\n")) == 1


def test_leaf_without_history_and_bad_input():
    x = hg.randn(2, 2, requires_grad=True)
    assert hg.to_dot(x).count("shape=box") == 1
    with pytest.raises(TypeError, match="draw_graph: expected a handgrad Tensor"):
        hg.draw_graph(3.0)
    with pytest.raises(TypeError, match="named_parameters"):
        hg.draw_graph(x * 2, params={"w": 1.0})
    with pytest.raises(ValueError, match="rankdir"):
        hg.draw_graph(x * 2, rankdir="XY")


def test_max_nodes_refuses_huge_graphs():
    x = hg.randn(2, requires_grad=True)
    y = x
    for _ in range(50):
        y = y * 1.01
    with pytest.raises(ValueError, match="more than 10 Function nodes"):
        hg.to_dot(y, max_nodes=10)
    assert hg.to_dot(y, max_nodes=None).count("Mul") == 50


def test_deep_chain_is_iterative():
    x = hg.randn(2, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y + 1.0
    layout = graph_module._build(y, None, None)
    assert max(graph_module._columns(layout).values()) >= 3000


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_matplotlib_fallback_without_graphviz(tmp_path, monkeypatch, suffix):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model, loss = _mlp_loss()
    graph = hg.draw_graph(loss, tmp_path / f"g{suffix}", params=dict(model.named_parameters()))
    data = (tmp_path / f"g{suffix}").read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data
    bundle = graph._repr_mimebundle_()
    assert list(bundle) == ["image/png"]
    with pytest.raises(GraphvizNotFoundError):
        graph.render("jpg")  # only dot makes other formats
    graph.save(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == graph.source
    assert repr(graph) == "TensorGraph(4 Functions, 12 nodes)"


def test_plot_on_given_axes_top_to_bottom():
    plt = pytest.importorskip("matplotlib.pyplot")
    a = hg.randn(3, requires_grad=True)
    fig, ax = plt.subplots()
    assert hg.draw_graph((a.exp() * a).sum(), rankdir="TB").plot(ax=ax) is fig
    plt.close(fig)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graphviz_svg():
    a = hg.randn(3, requires_grad=True)
    assert b"<svg" in hg.draw_graph((a * a).sum()).render("svg")
