"""draw_graph / to_dot: every Value and op is in the DOT text, pictures render with Graphviz."""

from __future__ import annotations

import re
import shutil

import pytest

from handgrad.scalar import Value, draw_graph, to_dot
from handgrad.scalar import draw as draw_module

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed "
                               "(apt-get install graphviz)")


def expression():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    d = (c + a).tanh() * 2 + Value.sum([a, b, c])  # `a` feeds four ops
    d.label = "d"
    d.backward()
    return d, [a, b, c]


def all_values(root):
    seen, stack = {root}, [root]
    while stack:
        for child in stack.pop()._prev:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def test_dot_lists_every_value_op_and_edge():
    d, _ = expression()
    source = to_dot(d)
    values = all_values(d)
    records = dict(re.findall(r'(v\d+) \[shape=record, label="\{ (.*?) \|', source))
    ops = dict(re.findall(r'(v\d+)_op \[shape=ellipse, label="(.*?)"\]', source))
    edges = re.findall(r"(v\d+(?:_op)?) -> (v\d+(?:_op)?);", source)
    assert len(records) == len(values)
    assert len(ops) == sum(1 for v in values if v._prev)
    assert len(edges) == sum(len(v._prev) + 1 for v in values if v._prev)
    assert {"a", "b", "c", "d"} <= set(records.values())
    assert sorted(ops.values()) == sorted(["*", "+", "tanh", "* 2", "+", "sum"])
    # every op node has its inputs going in and exactly one output coming out
    for name in ops:
        assert sum(1 for src, _ in edges if src == f"{name}_op") == 1
        assert (f"{name}_op", name) in edges
    # the Value `a` appears once and feeds four ops (*, +, sum, and through c)
    a_name = next(n for n, label in records.items() if label == "a")
    assert sum(1 for src, _ in edges if src == a_name) == 3


def test_records_show_data_and_grad():
    d, (a, b, c) = expression()
    source = to_dot(d)
    assert f'label="{{ a | data 2.0000 | grad {a.grad:.4f} }}"' in source
    assert source.startswith("digraph G {\n  rankdir=LR;")


def test_records_read_across_in_either_direction():
    # Graphviz turns a record's fields at right angles to rankdir, and braces turn them
    # again: braces for left-to-right, none for top-to-bottom, so both read label | data | grad
    # across the page.
    d, _ = expression()
    assert 'label="{ a | data 2.0000 |' in to_dot(d, rankdir="LR")
    assert 'label="a | data 2.0000 |' in to_dot(d, rankdir="TB")


def test_labels_with_dot_special_characters_are_escaped():
    v = Value(1.0, label='x{1}|<"y">')
    assert r'x\{1\}\|\<\"y\"\>' in to_dot(v * 2)


def test_huge_graphs_are_refused_unless_asked():
    x = Value(1.0)
    for _ in range(30):
        x = x + 1
    with pytest.raises(ValueError, match="more than 10 Values"):
        to_dot(x, max_nodes=10)
    assert to_dot(x, max_nodes=None).count("shape=record") == 31


def test_writes_dot_text_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    d, _ = expression()
    graph = draw_graph(d, tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == graph.source == str(graph)
    assert graph._repr_svg_() is None
    with pytest.raises(draw_module.GraphvizNotFoundError, match="apt-get install graphviz"):
        draw_graph(d, tmp_path / "g.svg")


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_renders_pictures_with_graphviz(tmp_path, suffix, magic):
    d, _ = expression()
    path = tmp_path / f"graph{suffix}"
    draw_graph(d, path)
    assert magic in path.read_bytes()[:400]
    assert draw_graph(d)._repr_svg_().lstrip().startswith("<?xml")


def test_graph_command_writes_the_neuron(tmp_path, capsys):
    from handgrad.cli import main

    assert main(["graph", "--out", str(tmp_path / "neuron.dot")]) == 0
    source = (tmp_path / "neuron.dot").read_text()
    for label in ("x1", "x2", "w1", "w2", "b", "n", "o", "tanh"):
        assert f"{{ {label} |" in source or f'label="{label}"' in source
    assert "data 0.7071 | grad 1.0000" in source  # o = tanh(0.8814)
    assert main(["graph", "--out", "-"]) == 0
    assert capsys.readouterr().out.count("shape=record") == 10


def test_graph_command_without_graphviz_writes_dot_and_says_how_to_install(
        tmp_path, monkeypatch, capsys):
    from handgrad.cli import main

    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    assert main(["graph", "--out", str(tmp_path / "neuron.svg")]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().out
    assert (tmp_path / "neuron.dot").exists()
