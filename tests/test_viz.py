"""tn.viz: the DOT text of a graph (structure checked here, always) and its rendering with
Graphviz (checked when the ``dot`` program is installed).

``python tests/test_viz.py`` (tinynet installed, e.g. ``pip install -e .``) regenerates
docs/figures/autograd_graph.dot, and its .svg when Graphviz is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tinynet as tn
from tinynet.errors import TinynetError

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")
FIGURE = Path(__file__).resolve().parent.parent / "docs" / "figures" / "autograd_graph"


# ---------------------------------------------------------------------------------------------
# A small DOT reader: just enough to check what to_dot promises
# ---------------------------------------------------------------------------------------------

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|->|[{}\[\];=,]|[A-Za-z_][A-Za-z0-9_]*|[0-9.]+|\s+')


def tokenize(text: str) -> list[str]:
    """DOT tokens; fails on anything else (e.g. a quote that was never closed)."""
    tokens, at = [], 0
    while at < len(text):
        match = TOKEN.match(text, at)
        assert match is not None, f"not DOT at {at}: {text[at:at + 40]!r}"
        if not match.group().isspace():
            tokens.append(match.group())
        at = match.end()
    return tokens


def unquote(token: str) -> str:
    assert token.startswith('"') and token.endswith('"')
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), token[1:-1])


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    """Nodes (id -> attributes, label unescaped) and edges of the DOT that to_dot writes."""
    tokens = tokenize(text)
    assert tokens[:3] == ["digraph", "autograd", "{"] and tokens[-1] == "}"
    depth = 0
    for t in tokens:  # quoted strings are single tokens, so these are the real braces
        depth += (t == "{") - (t == "}")
        assert depth >= 0
    assert depth == 0
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str]] = []
    statements, current = [], []
    for t in tokens[3:-1]:
        if t == ";":
            statements.append(current)
            current = []
        else:
            current.append(t)
    assert current == [], "every statement ends with ';'"
    for st in statements:
        if st[0] in ("rankdir", "node", "edge"):
            continue
        if len(st) >= 3 and st[1] == "->":
            assert len(st) == 3
            edges.append((unquote(st[0]), unquote(st[2])))
            continue
        assert st[1] == "[" and st[-1] == "]", st
        attrs, body = {}, st[2:-1]
        for i in range(0, len(body), 4):
            key, eq, value = body[i:i + 3]
            assert eq == "="
            attrs[key] = unquote(value) if value.startswith('"') else value
        node_id = unquote(st[0])
        assert node_id not in nodes, f"{node_id} declared twice"
        nodes[node_id] = attrs
    for tail, head in edges:
        assert tail in nodes and head in nodes, f"edge {tail} -> {head} to an undeclared node"
    return nodes, edges


def labels(nodes: dict[str, dict[str, str]]) -> dict[str, str]:
    return {node_id: attrs["label"] for node_id, attrs in nodes.items()}


def find(nodes: dict[str, dict[str, str]], first_line: str) -> str:
    """The id of the one node whose label starts with ``first_line``."""
    hits = [i for i, a in nodes.items() if a["label"].split("\n")[0] == first_line]
    assert len(hits) == 1, (first_line, hits)
    return hits[0]


def f64(values, requires_grad=False):
    return tn.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# ---------------------------------------------------------------------------------------------
# to_dot: structure
# ---------------------------------------------------------------------------------------------


def shared_node_graph():
    x = f64([1.0, 2.0], requires_grad=True)
    w = f64([3.0, 4.0], requires_grad=True)
    h = x * w  # used twice below: still one MulBackward node and one tensor node
    loss = (h + h.exp()).sum()
    return x, w, h, loss


def test_to_dot_has_one_node_per_op_and_per_tensor_and_the_right_edges():
    x, w, h, loss = shared_node_graph()
    nodes, edges = parse_dot(tn.viz.to_dot(loss, params={"x": x, "w": w}))
    ops = sorted(a["label"] for a in nodes.values() if a["label"].endswith("Backward"))
    assert ops == ["AddBackward", "ExpBackward", "MulBackward", "SumBackward"]
    mul, exp, add, total = (find(nodes, op) for op in ("MulBackward", "ExpBackward",
                                                        "AddBackward", "SumBackward"))
    x_node, w_node = find(nodes, "x (leaf)"), find(nodes, "w (leaf)")
    output = find(nodes, "output")
    (h_node,) = [tail for tail, head in edges if head == exp]  # h feeds exp...
    assert (h_node, add) in edges  # ...and add, as the same node
    assert nodes[h_node]["label"] == "(2,) float64"
    assert set(edges) >= {(x_node, mul), (w_node, mul), (mul, h_node), (total, output)}
    assert len(edges) == len(set(edges))
    # 4 ops, 2 leaves, output, h, exp(h), h + exp(h): every tensor once
    assert len(nodes) == 10 and len(edges) == 10  # 2 into each op but exp and sum, 1 out of each


def test_to_dot_marks_leaves_constants_and_the_output():
    x = f64([[1.0, 2.0]])  # a tensor that doesn't require grad
    w = f64([[0.5], [-0.3]], requires_grad=True)
    loss = ((x @ w) * 2.0 - np.array([[1.0]])).sum()
    nodes, _ = parse_dot(tn.viz.to_dot(loss))
    by_label = {a["label"]: a for a in nodes.values()}
    assert "leaf\n(2, 1) float64" in by_label
    assert by_label["leaf\n(2, 1) float64"]["fillcolor"] == "lightblue"
    assert "constant\n(1, 2) float64" in by_label  # x
    assert "constant 2\n() float64" in by_label  # the number 2.0, as x's dtype
    assert "constant 1\n(1, 1) float64" in by_label  # the array [[1.0]]
    assert by_label["output\n() float64"]["fillcolor"] == "darkseagreen1"
    assert all("dashed" in a["style"] for lab, a in by_label.items() if "constant" in lab)


def test_to_dot_names_parameters_from_a_dict_or_named_pairs_and_escapes_them():
    w = f64([1.0, 2.0], requires_grad=True)
    b = f64([0.5], requires_grad=True)
    loss = (w * b).sum()
    tricky = 'layer "one"\\weight{0}'
    for params in ({tricky: w, "b": b}, iter([(tricky, w), ("b", b)])):
        text = tn.viz.to_dot(loss, params=params)
        nodes, _ = parse_dot(text)
        assert find(nodes, f"{tricky} (leaf)")
        assert find(nodes, "b (leaf)")
        assert '\\"one\\"' in text and "\\\\weight" in text  # escaped in the DOT text


def test_to_dot_names_a_modules_parameters_and_skips_a_missing_bias():
    model = tn.nn.Sequential(tn.nn.Linear(3, 4), tn.nn.Tanh(), tn.nn.Linear(4, 1, bias=False))
    loss = model(tn.ones(5, 3)).sum()
    nodes, _ = parse_dot(tn.viz.to_dot(loss, params=model.named_parameters()))
    names = {lab.split("\n")[0] for lab in labels(nodes).values() if "(leaf)" in lab}
    assert names == {"0.weight (leaf)", "0.bias (leaf)", "2.weight (leaf)"}
    assert not any("None" in lab for lab in labels(nodes).values())


def test_to_dot_works_before_and_after_backward_and_shows_grads_and_freed_values():
    x, w, h, loss = shared_node_graph()
    h.retain_grad()
    before_nodes, before_edges = parse_dot(tn.viz.to_dot(loss))
    loss.backward()
    after_nodes, after_edges = parse_dot(tn.viz.to_dot(loss))
    assert after_edges == before_edges  # backward frees saved arrays, not the graph
    assert after_nodes.keys() == before_nodes.keys()
    after = labels(after_nodes)
    assert after[find(after_nodes, "MulBackward")] == "MulBackward\nsaved values freed"
    assert after[find(after_nodes, "ExpBackward")] == "ExpBackward\nsaved values freed"
    assert after[find(after_nodes, "AddBackward")] == "AddBackward"  # it saves nothing
    leaves = [lab for lab in after.values() if lab.startswith("leaf")]
    assert leaves == ["leaf\n(2,) float64\ngrad (2,)"] * 2
    assert "(2,) float64\ngrad (2,)" in after.values()  # h kept its gradient (retain_grad)
    assert not any("grad" in lab for lab in labels(before_nodes).values())


def test_to_dot_after_backward_with_retain_graph_keeps_saved_values():
    _, _, _, loss = shared_node_graph()
    loss.backward(retain_graph=True)
    assert "freed" not in tn.viz.to_dot(loss)


def test_to_dot_show_data_prints_values_and_gradients():
    w = f64([1.5, -2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    nodes, _ = parse_dot(tn.viz.to_dot(loss, show_data=True, params={"w": w}))
    assert nodes[find(nodes, "w (leaf)")]["label"] == (
        "w (leaf)\n(2,) float64\ndata [1.5, -2]\ngrad (2,)\ngrad [3, -4]"
    )
    assert nodes[find(nodes, "output")]["label"] == "output\n() float64\ndata 6.25"
    big = tn.viz.to_dot((tn.ones(100, 100, requires_grad=True) * 1.0).sum(), show_data=True)
    assert "..." in big and len(big) < 2000  # large arrays are abbreviated


def test_to_dot_of_a_leaf_is_a_single_node():
    nodes, edges = parse_dot(tn.viz.to_dot(f64([1.0], requires_grad=True)))
    assert labels(nodes) == {"n0": "output\n(1,) float64"} and edges == []


def test_to_dot_walks_a_20000_op_chain_without_recursion():
    x = tn.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(20_000):  # 20x Python's default recursion limit
        y = y * 1.0
    text = tn.viz.to_dot(y)
    assert text.count('label="MulBackward"') == 20_000


def test_to_dot_draws_the_graph_of_a_create_graph_gradient():
    x = f64([1.0, 2.0], requires_grad=True)
    (g,) = tn.autograd.grad((x.sigmoid() * x).sum(), x, create_graph=True)
    nodes, edges = parse_dot(tn.viz.to_dot(g, params={"x": x}))
    ops = [lab for lab in labels(nodes).values() if lab.endswith("Backward")]
    assert "SigmoidBackward" in ops and len(ops) >= 3
    assert find(nodes, "x (leaf)")
    assert edges


def test_to_dot_rejects_what_is_not_a_tensor():
    with pytest.raises(TypeError, match="to_dot: expected a Tensor"):
        tn.viz.to_dot(np.ones(2))


# ---------------------------------------------------------------------------------------------
# Rendering with Graphviz
# ---------------------------------------------------------------------------------------------


@needs_dot
def test_graphviz_parses_the_dot_text_including_awkward_names():
    x, w, _, loss = shared_node_graph()
    loss.backward()
    text = tn.viz.to_dot(loss, show_data=True, params={'x "in"\\{': x, "w\nnew line": w})
    result = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert b"<svg" in result.stdout and b"MulBackward" in result.stdout


@needs_dot
def test_render_writes_svg_and_png_files(tmp_path):
    _, _, _, loss = shared_node_graph()
    svg = tn.viz.render(loss, tmp_path / "graph.svg")
    assert svg == tmp_path / "graph.svg" and b"<svg" in svg.read_bytes()
    png = tn.viz.render(loss, tmp_path / "graph.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    forced = tn.viz.render(tn.viz.to_dot(loss), tmp_path / "graph.out", format="png")
    assert forced.read_bytes()[:4] == b"\x89PNG"  # DOT text in, format given explicitly


@needs_dot
def test_render_reports_what_dot_says_about_broken_input(tmp_path):
    with pytest.raises(TinynetError, match="dot -Tsvg"):
        tn.viz.render("digraph { this is not dot ", tmp_path / "broken.svg")


def test_render_without_graphviz_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on an empty PATH
    _, _, _, loss = shared_node_graph()
    with pytest.raises(tn.viz.GraphvizNotFoundError, match="apt-get install graphviz") as info:
        tn.viz.render(loss, tmp_path / "graph.svg")
    assert isinstance(info.value, TinynetError) and isinstance(info.value, RuntimeError)
    assert "brew install graphviz" in str(info.value) and "to_dot" in str(info.value)
    assert not (tmp_path / "graph.svg").exists()


def test_render_rejects_an_unknown_format(tmp_path):
    _, _, _, loss = shared_node_graph()
    with pytest.raises(ValueError, match="format must be one of"):
        tn.viz.render(loss, tmp_path / "graph.pdf")


# ---------------------------------------------------------------------------------------------
# The figure in docs/autograd.md
# ---------------------------------------------------------------------------------------------


def documented_example() -> tuple[tn.Tensor, dict[str, tn.Tensor]]:
    """The graph drawn in docs/autograd.md: one sigmoid neuron and a squared error."""
    x = tn.tensor([[1.0, 2.0]])  # an input: no gradient needed
    w = tn.tensor([[0.5, -0.3]], requires_grad=True)
    b = tn.tensor([0.1], requires_grad=True)
    y = (x @ w.T + b).sigmoid()
    loss = ((y - 1.0) ** 2).mean()
    loss.backward()
    return loss, {"w": w, "b": b}


def test_the_committed_figure_source_matches_the_code():
    previous = tn.get_default_dtype()
    tn.set_default_dtype(tn.float32)  # the figure shows float32, whatever other tests set
    try:
        loss, params = documented_example()
    finally:
        tn.set_default_dtype(previous)
    committed = FIGURE.with_suffix(".dot").read_text()
    assert committed == tn.viz.to_dot(loss, params=params), (
        "docs/figures/autograd_graph.dot is stale: run `python tests/test_viz.py`"
    )


if __name__ == "__main__":
    example, names = documented_example()
    FIGURE.with_suffix(".dot").write_text(tn.viz.to_dot(example, params=names))
    print("wrote", FIGURE.with_suffix(".dot"))
    if HAS_DOT:
        print("wrote", tn.viz.render(example, FIGURE.with_suffix(".svg"), params=names))
