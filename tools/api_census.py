"""Which parts of PyTorch's API real training scripts use, and which of them tinynet has.

    python tools/api_census.py gather  --mirror /work/.mirror --corpus /work/census-corpus
    python tools/api_census.py collect --corpus /work/census-corpus   # needs torch
    python tools/api_census.py doc                                     # tinynet only

``gather`` copies the scripts listed in ``SOURCES`` out of bare git snapshots
(``<mirror>/<owner>+<name>/repo``) into a local corpus directory; notebooks become plain
Python (their code cells, without ``!`` and ``%`` lines). The corpus is not committed: the
scripts are other people's code.

``collect`` parses every script with ``ast`` (nothing is run) and counts each PyTorch name it
uses: ``torch.*``, ``nn.*``, ``F.*``, ``optim.*``, ``lr_scheduler.*``, ``utils.data.*`` (import
aliases resolved: ``import torch.nn as nn``, ``from torch import nn``, ``from torch.optim import
Adam``...), and every method called on an object whose name is a method of ``torch.Tensor``,
``nn.Module``, ``optim.Optimizer`` or an LR scheduler (``x.view(...)``, ``model.eval()``). It
writes ``tools/api_census.json``: per name, the number of uses and the scripts using it (no
code). torch is only needed here, to know which method names are Tensor methods.

``doc`` checks every name against tinynet by introspection (the tinynet equivalent of the
name resolves to an attribute), reads the hand-kept ``DIFFERENCES`` table, and writes
``docs/pytorch-coverage.md`` sorted by use with the coverage figure on top.
tests/test_api_census.py checks that the committed page is what ``doc`` writes today.
"""

from __future__ import annotations

import argparse
import ast
import collections
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CENSUS = os.path.join(HERE, "api_census.json")
DOC = os.path.join(ROOT, "docs", "pytorch-coverage.md")

# (repository, commit, paths). The commit pins what was counted.
SOURCES: list[tuple[str, str, list[str]]] = [
    ("pytorch/examples", "77f55b912142e11fcfdf5b530231fb9c52f181e8", [
        "dcgan/main.py", "imagenet/main.py", "mnist/main.py", "mnist_forward_forward/main.py",
        "mnist_hogwild/main.py", "mnist_hogwild/train.py", "mnist_rnn/main.py",
        "regression/main.py", "reinforcement_learning/actor_critic.py",
        "reinforcement_learning/reinforce.py", "siamese_network/main.py",
        "super_resolution/main.py", "super_resolution/model.py",
        "super_resolution/super_resolve.py", "time_sequence_prediction/train.py", "vae/main.py",
        "word_language_model/main.py", "word_language_model/model.py",
        "word_language_model/generate.py", "fast_neural_style/neural_style/neural_style.py",
        "fast_neural_style/neural_style/transformer_net.py",
        "fast_neural_style/neural_style/vgg.py", "fast_neural_style/neural_style/utils.py",
        "gat/main.py", "gcn/main.py", "language_translation/main.py",
        "language_translation/src/model.py", "legacy/snli/train.py", "legacy/snli/model.py",
    ]),
    ("karpathy/makemore", "988aa59e4d8fefa526d06f3b453ad116258398d4", ["makemore.py"]),
    ("karpathy/nanoGPT", "3adf61e154c3fe3fca428ad6bc3818b27a3b8291", [
        "model.py", "train.py", "sample.py", "bench.py",
    ]),
    ("karpathy/minGPT", "37baab71b9abea1b76ab957409a1cc2fbfba8a26", [
        "mingpt/model.py", "mingpt/trainer.py", "mingpt/utils.py", "projects/adder/adder.py",
        "projects/chargpt/chargpt.py",
    ]),
    ("karpathy/nn-zero-to-hero", "73c3fcc741f0ec104ca850b1fb0df90e7e8d4cde", [
        "lectures/makemore/makemore_part1_bigrams.ipynb",
        "lectures/makemore/makemore_part2_mlp.ipynb",
        "lectures/makemore/makemore_part3_bn.ipynb",
        "lectures/makemore/makemore_part4_backprop.ipynb",
        "lectures/makemore/makemore_part5_cnn1.ipynb",
        "lectures/micrograd/micrograd_lecture_first_half_roughly.ipynb",
        "lectures/micrograd/micrograd_lecture_second_half_roughly.ipynb",
    ]),
    ("karpathy/micrograd", "c911406e5ace8742e5841a7e0df113ecb5d54685", ["test/test_engine.py"]),
    ("yunjey/pytorch-tutorial", "0500d3df5a2a8080ccfccbc00aca0eacc21818db", [
        "tutorials/01-basics/feedforward_neural_network/main.py",
        "tutorials/01-basics/linear_regression/main.py",
        "tutorials/01-basics/logistic_regression/main.py",
        "tutorials/01-basics/pytorch_basics/main.py",
        "tutorials/02-intermediate/bidirectional_recurrent_neural_network/main.py",
        "tutorials/02-intermediate/convolutional_neural_network/main.py",
        "tutorials/02-intermediate/deep_residual_network/main.py",
        "tutorials/02-intermediate/language_model/main.py",
        "tutorials/02-intermediate/recurrent_neural_network/main.py",
        "tutorials/03-advanced/generative_adversarial_network/main.py",
        "tutorials/03-advanced/image_captioning/model.py",
        "tutorials/03-advanced/image_captioning/train.py",
        "tutorials/03-advanced/image_captioning/sample.py",
        "tutorials/03-advanced/neural_style_transfer/main.py",
        "tutorials/03-advanced/variational_autoencoder/main.py",
    ]),
]

# torch's namespaces under the short names scripts use, longest prefix first.
PREFIXES = [
    ("torch.nn.functional.", "F."),
    ("torch.optim.lr_scheduler.", "lr_scheduler."),
    ("torch.optim.", "optim."),
    ("torch.utils.data.", "utils.data."),
    ("torch.nn.", "nn."),
]

# Where each short name lives in tinynet.
TINYNET_HOME = {
    "F.": "tinynet.nn.functional.",
    "lr_scheduler.": "tinynet.optim.lr_scheduler.",
    "optim.": "tinynet.optim.",
    "utils.data.": "tinynet.utils.data.",
    "nn.": "tinynet.nn.",
    "torch.": "tinynet.",
}

# Method names also common on Python's own objects (str.split, dict.items, list.index): a call
# ``s.split(...)`` says nothing about tensors, so these are not counted as methods.
PYTHON_METHODS = set()
for _kind in (str, bytes, list, dict, set, tuple, int, float):
    PYTHON_METHODS |= {n for n in dir(_kind) if not n.startswith("_")}
# Attributes read (not called) that are counted: the everyday Tensor properties.
TENSOR_PROPERTIES = {"shape", "grad", "data", "T", "requires_grad", "dtype", "device", "ndim",
                     "is_leaf", "grad_fn", "mT"}

# Hand-kept: names tinynet deliberately does not provide or provides differently, and why.
DIFFERENCES: dict[str, str] = {
    "torch.distributed": "no distributed training (one CPU process)",
    "nn.parallel.DistributedDataParallel": "no distributed training (one CPU process)",
    "nn.DataParallel": "no multi-device training (CPU only)",
    "nn.parallel.data_parallel": "no multi-device training (CPU only)",
    "utils.data.distributed": "no distributed training (one CPU process)",
    "torch.multiprocessing": "no shared-memory tensors across processes",
    "torch.cuda.amp": "no mixed precision (float32/float64 on CPU)",
    "torch.amp": "no mixed precision (float32/float64 on CPU)",
    "torch.autocast": "no mixed precision (float32/float64 on CPU)",
    "torch.bfloat16": "no bfloat16 (numpy has none)",
    "torch.jit": "no TorchScript; tn.compile traces steps instead",
    "torch.onnx": "no ONNX export",
    "torch.hub": "no model hub (no network)",
    "torch.profiler": "no profiler (tinynet's ops are Python: cProfile sees them)",
    "torch.cuda.synchronize": "CPU only: raises, as torch does without CUDA",
    "torch.cuda.get_device_name": "CPU only: raises, as torch does without CUDA",
    "torch.cuda.set_device": "CPU only: raises, as torch does without CUDA",
    "torch.accelerator.set_device_index": "CPU only: there is no accelerator",
    "Tensor.cuda": "CPU only: .cuda() raises, naming the fix .to(device)",
    "Module.cuda": "CPU only: .cuda() raises, naming the fix .to(device)",
    "Tensor.pin_memory": "CPU only: there is no device to copy to",
    "Tensor.share_memory_": "no shared-memory tensors across processes",
    "Module.share_memory": "no shared-memory tensors across processes",
    "torch.set_float32_matmul_precision": "CPU only: matmul is numpy's BLAS in full precision",
    "torch.compile": "tn.compile traces with tinynet's own recorder (see docs/compile.md)",
    "Tensor.data": "tinynet's .data is the numpy array (README, Differences)",
    "Tensor.storage": "storage is a numpy array (.data)",
    "torch.load": "reads the .npz files tn.save writes (Tensors come back as Tensors), never "
                  "pickles",
    "torch.save": "writes .npz (state dicts, tensors, numbers, nested dicts), never pickles",
    "torch.serialization": "tn.load never unpickles, so there are no pickle globals to allow",
    "nn.NonDynamicallyQuantizableLinear": "torch's internal class (named only in "
                                          "safe_globals lists for unpickling)",
    "torch.sparse_coo_tensor": "no sparse tensors (storage is a dense numpy array)",
    "torch.spmm": "no sparse tensors (storage is a dense numpy array)",
    "Tensor.to_sparse": "no sparse tensors (storage is a dense numpy array)",
    "torch.LongTensor": "legacy typed constructor: tn.tensor(data, dtype=tn.long)",
    "torch.FloatTensor": "legacy typed constructor: tn.tensor(data, dtype=tn.float)",
}

# Method calls the census finds that are not on tensors in this corpus: PIL's Image.resize.
NOT_TENSOR_METHODS = {"resize"}


# ---- gather ---------------------------------------------------------------------------------


def notebook_to_python(text: str) -> str:
    """The code cells of a notebook as one script; IPython's ``!`` and ``%`` lines dropped."""
    cells = json.loads(text)["cells"]
    lines: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"]
        source = "".join(source) if isinstance(source, list) else source
        lines += [ln for ln in source.splitlines() if not ln.lstrip().startswith(("!", "%"))]
        lines.append("")
    return "\n".join(lines)


def script_id(repo: str, path: str) -> str:
    return f"{repo}:{path}"


def local_name(repo: str, path: str) -> str:
    return (repo + "/" + path).replace("/", "__").removesuffix(".ipynb") + (
        ".py" if path.endswith(".ipynb") else "")


def gather(mirror: str, corpus: str) -> None:
    os.makedirs(corpus, exist_ok=True)
    for repo, commit, paths in SOURCES:
        git_dir = os.path.join(mirror, repo.replace("/", "+"), "repo")
        for path in paths:
            text = subprocess.run(["git", "-C", git_dir, "show", f"{commit}:{path}"],
                                  check=True, capture_output=True, text=True).stdout
            if path.endswith(".ipynb"):
                text = notebook_to_python(text)
            with open(os.path.join(corpus, local_name(repo, path)), "w") as f:
                f.write(text)
    print(f"{sum(len(p) for _, _, p in SOURCES)} scripts in {corpus}")


# ---- collect --------------------------------------------------------------------------------


def short_name(dotted: str) -> str:
    """``torch.nn.functional.relu`` -> ``F.relu``; ``torch.zeros`` stays ``torch.zeros``."""
    for long, short in PREFIXES:
        if dotted.startswith(long):
            dotted = short + dotted[len(long):]
            break
    # Where torch defines a class is not how scripts name it: nn.modules.linear.Linear is
    # nn.Linear, utils.data.dataloader.DataLoader is utils.data.DataLoader.
    parts = dotted.split(".")
    if parts[:2] == ["nn", "modules"] and len(parts) == 4:
        return "nn." + parts[3]
    if parts[:2] == ["utils", "data"] and len(parts) == 4 and parts[2] in (
            "dataloader", "dataset", "sampler"):
        return "utils.data." + parts[3]
    return dotted


class Collector(ast.NodeVisitor):
    """Counts torch names and method calls in one module's syntax tree."""

    def __init__(self, method_owners: dict[str, list[str]]) -> None:
        self.aliases: dict[str, str] = {}  # local name -> dotted torch path
        self.method_owners = method_owners
        self.counts: collections.Counter[str] = collections.Counter()

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "torch" or alias.name.startswith("torch."):
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:  # ``import torch.nn`` binds ``torch``
                    self.aliases["torch"] = "torch"

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0 and (module == "torch" or module.startswith("torch.")):
            for alias in node.names:
                if alias.name != "*":
                    self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"

    def _dotted(self, node: ast.expr) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node)
        if dotted is not None:  # the longest chain: do not visit its inner attributes
            self.counts[short_name(dotted)] += 1
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id in self.aliases:
            dotted = self.aliases[node.id]
            if dotted != "torch":
                self.counts[short_name(dotted)] += 1

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and self._dotted(func) is None:
            for owner in self.method_owners.get(func.attr, []):
                self.counts[f"{owner}.{func.attr}"] += 1
        self.generic_visit(node)


class PropertyCollector(ast.NodeVisitor):
    """Counts reads of the everyday Tensor properties (``x.shape``, ``p.grad``)."""

    def __init__(self, call_funcs: set[int]) -> None:
        self.call_funcs = call_funcs
        self.counts: collections.Counter[str] = collections.Counter()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in TENSOR_PROPERTIES and id(node) not in self.call_funcs:
            self.counts[f"Tensor.{node.attr}"] += 1
        self.generic_visit(node)


def method_owners() -> dict[str, list[str]]:
    """Method name -> the torch classes having it (``view`` -> Tensor, ``to`` -> Tensor, Module)."""
    import torch

    classes = {"Tensor": torch.Tensor, "Module": torch.nn.Module,
               "Optimizer": torch.optim.Optimizer,
               "LRScheduler": torch.optim.lr_scheduler.LRScheduler}
    owners: dict[str, list[str]] = collections.defaultdict(list)
    for owner, cls in classes.items():
        for name in dir(cls):
            if name.startswith("_") or name in PYTHON_METHODS | NOT_TENSOR_METHODS:
                continue
            if callable(getattr(cls, name, None)):
                owners[name].append(owner)
    return owners


def census_of(source: str, owners: dict[str, list[str]]) -> collections.Counter[str]:
    tree = ast.parse(source)
    collector = Collector(owners)
    collector.visit(tree)
    call_funcs = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    props = PropertyCollector(call_funcs)
    if collector.aliases:  # a script that never imports torch uses no Tensor properties
        props.visit(tree)
    return collector.counts + props.counts


def collect(corpus: str) -> dict:
    owners = method_owners()
    uses: collections.Counter[str] = collections.Counter()
    scripts: dict[str, list[str]] = collections.defaultdict(list)
    ids = []
    for repo, _commit, paths in SOURCES:
        for path in paths:
            sid = script_id(repo, path)
            ids.append(sid)
            with open(os.path.join(corpus, local_name(repo, path))) as f:
                counts = census_of(f.read(), owners)
            for name, n in counts.items():
                uses[name] += n
                scripts[name].append(sid)
    names = sorted(uses, key=lambda n: (-len(scripts[n]), -uses[n], n))
    return {
        "about": "PyTorch names used by real scripts (tools/api_census.py collect); no code",
        "sources": [{"repo": r, "commit": c, "paths": p} for r, c, p in SOURCES],
        "scripts": ids,
        "names": [{"name": n, "uses": uses[n], "scripts": sorted(scripts[n])} for n in names],
    }


# ---- check against tinynet ------------------------------------------------------------------


def resolve(dotted: str) -> object:
    """Import ``a.b.c`` as far as modules go, then getattr the rest; AttributeError if absent."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(".".join(parts[: i + 1]))
        except ImportError:
            raise AttributeError(dotted) from None
    return obj


def tinynet_classes() -> dict[str, object]:
    import tinynet as tn
    import tinynet.optim.lr_scheduler as lr

    return {"Tensor": tn.Tensor, "Module": tn.nn.Module, "Optimizer": tn.optim.Optimizer,
            "LRScheduler": lr.LRScheduler}


def difference(name: str) -> str | None:
    """The reason from ``DIFFERENCES`` for this name or the namespace it is in."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        reason = DIFFERENCES.get(".".join(parts[:i]))
        if reason is not None:
            return reason
    return None


def status(name: str, classes: dict[str, object] | None = None) -> tuple[str, str]:
    """("supported" | "different" | "missing", reason or tinynet name) for one census name."""
    classes = classes or tinynet_classes()
    reason = difference(name)
    if reason is not None:
        return "different", reason
    owner, _, attr = name.partition(".")
    if owner in classes:
        ok = hasattr(classes[owner], attr)
        return ("supported" if ok else "missing"), f"{owner}.{attr}"
    for prefix, home in TINYNET_HOME.items():
        if name.startswith(prefix):
            target = home + name[len(prefix):]
            try:
                resolve(target)
            except AttributeError:
                return "missing", target
            return "supported", target
    return "missing", name


def load_census() -> dict:
    with open(CENSUS) as f:
        return json.load(f)


def top_names(census: dict, min_scripts: int = 2) -> list[dict]:
    return [e for e in census["names"] if len(e["scripts"]) >= min_scripts]


def render(census: dict) -> str:
    classes = tinynet_classes()
    rows = [(e, *status(e["name"], classes)) for e in census["names"]]
    top = [r for r in rows if len(r[0]["scripts"]) >= 2]
    n_scripts = len(census["scripts"])

    def figure(subset: list) -> str:
        count = collections.Counter(state for _, state, _ in subset)
        ok = count["supported"] + count["different"]
        uses = sum(e["uses"] for e, _, _ in subset)
        ok_uses = sum(e["uses"] for e, s, _ in subset if s != "missing")
        return (f"{ok} of {len(subset)} names ({100 * ok / max(len(subset), 1):.0f}%: "
                f"{count['supported']} supported, {count['different']} deliberately "
                f"different; {count['missing']} missing), covering "
                f"{100 * ok_uses / max(uses, 1):.0f}% of their {uses} uses")

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import opdb  # the op database: which of tinynet's ops its tests check

    unchecked = ", ".join(f"`{name}`" for name in opdb.ops_without_entry())
    missing_top = ", ".join(f"`{e['name']}` ({len(e['scripts'])})" for e, state, _ in top
                            if state == "missing")
    lines = [
        "# PyTorch API coverage, measured on real scripts",
        "",
        "Generated by `python tools/api_census.py doc` from `tools/api_census.json` "
        "(do not edit by hand; `tests/test_api_census.py` checks it is current).",
        "",
        f"**Names used in 2 or more of the {n_scripts} scripts: {figure(top)}.**",
        "",
        f"All names: {figure(rows)}.",
        "",
        f"Missing among the names used in 2 or more scripts (scripts using each): "
        f"{missing_top or 'none'}.",
        "",
        f"tinynet ops without an entry in the op database (`tests/opdb.py`, which drives the "
        f"op tests): {unchecked or 'none'}.",
        "",
        "The census parses each script (nothing is run) and counts every `torch.*`, `nn.*`, "
        "`F.*`, `optim.*`, `lr_scheduler.*`, `utils.data.*` name and every method called under "
        "a name that `torch.Tensor`, `nn.Module`, `optim.Optimizer` or `LRScheduler` has "
        "(so `model.eval()` counts as `Module.eval`; a name several classes have counts for "
        "each). *Supported* means the tinynet equivalent exists (`torch.zeros` -> "
        "`tinynet.zeros`, `F.relu` -> `tinynet.nn.functional.relu`, `Tensor.view` -> "
        "`tinynet.Tensor.view`); whether every argument of it is supported is for the tests. "
        "*Different* names are in the hand-kept table in `tools/api_census.py`, with the "
        "reason.",
        "",
        "Scripts: " + ", ".join(f"{s['repo']}@{s['commit'][:7]} ({len(s['paths'])})"
                                for s in census["sources"]) + ".",
        "",
        "| name | scripts | uses | status |",
        "| --- | ---: | ---: | --- |",
    ]
    for e, state, detail in rows:
        shown = {"supported": "supported", "missing": "**missing**",
                 "different": f"different: {detail}"}[state]
        lines.append(f"| `{e['name']}` | {len(e['scripts'])} | {e['uses']} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gather")
    g.add_argument("--mirror", default="/work/.mirror")
    g.add_argument("--corpus", default="/work/census-corpus")
    c = sub.add_parser("collect")
    c.add_argument("--corpus", default="/work/census-corpus")
    sub.add_parser("doc")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command == "gather":
        gather(args.mirror, args.corpus)
    elif args.command == "collect":
        census = collect(args.corpus)
        with open(CENSUS, "w") as f:
            json.dump(census, f, indent=1)
            f.write("\n")
        print(f"{len(census['names'])} names from {len(census['scripts'])} scripts -> {CENSUS}")
    else:
        with open(DOC, "w") as f:
            f.write(render(load_census()))
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
