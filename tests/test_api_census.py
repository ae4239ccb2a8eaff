"""The API census (tools/api_census.py): the committed coverage page is current, and no name
that real scripts use and tinynet supports silently disappears (issue 21)."""

from __future__ import annotations

import ast
import collections
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import api_census  # noqa: E402


def committed_rows() -> dict[str, tuple[int, str]]:
    """name -> (scripts, status) as the committed docs/pytorch-coverage.md shows them."""
    rows = {}
    for line in (ROOT / "docs" / "pytorch-coverage.md").read_text().splitlines():
        match = re.match(r"\| `([^`]+)` \| (\d+) \| \d+ \| (.*) \|$", line)
        if match:
            name, scripts, shown = match.groups()
            rows[name] = (int(scripts), shown.split(":")[0].strip("*"))
    return rows


def test_the_census_covers_at_least_30_real_scripts_from_several_projects() -> None:
    census = api_census.load_census()
    assert len(census["scripts"]) >= 30
    assert len({s.split(":")[0] for s in census["scripts"]}) >= 5
    assert len(census["names"]) > 100
    for entry in census["names"]:
        assert set(entry["scripts"]) <= set(census["scripts"]) and entry["uses"] >= len(
            entry["scripts"]) >= 1


def test_the_committed_coverage_page_is_what_the_tool_writes_today() -> None:
    expected = api_census.render(api_census.load_census())
    actual = (ROOT / "docs" / "pytorch-coverage.md").read_text()
    assert actual == expected, (
        "docs/pytorch-coverage.md is out of date (tinynet gained or lost a name, or the census "
        "changed); regenerate it with `python tools/api_census.py doc` and check the diff"
    )


def test_no_name_in_the_top_list_marked_supported_has_regressed() -> None:
    """Every name used in >= 2 scripts that the committed page calls supported still resolves
    in tinynet (a renamed or deleted function fails here, naming it)."""
    rows = committed_rows()
    classes = api_census.tinynet_classes()
    top = [name for name, (scripts, shown) in rows.items() if scripts >= 2
           and shown == "supported"]
    assert len(top) > 80
    lost = [name for name in top if api_census.status(name, classes)[0] != "supported"]
    assert not lost, f"names real scripts use are no longer in tinynet: {lost}"


def test_status_resolves_names_through_tinynets_namespaces() -> None:
    classes = api_census.tinynet_classes()
    assert api_census.status("torch.zeros", classes) == ("supported", "tinynet.zeros")
    assert api_census.status("F.relu", classes) == ("supported", "tinynet.nn.functional.relu")
    assert api_census.status("Tensor.view", classes) == ("supported", "Tensor.view")
    assert api_census.status("torch.cuda.is_available", classes)[0] == "supported"
    assert api_census.status("torch.no_such_function", classes) == (
        "missing", "tinynet.no_such_function")
    assert api_census.status("torch.distributed.all_reduce", classes)[0] == "different"


def test_the_collector_resolves_import_aliases_and_counts_methods() -> None:
    source = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim
from torch.optim import Adam
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader
import torch.utils.data as tud

class Net(nn.Module):
    def forward(self, x):
        return F.relu(x.view(-1, 4)).sum(dim=1)

model = Net().to("cpu")
opt = Adam(model.parameters())
sched = StepLR(opt, 1)
other = optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader(tud.TensorDataset(torch.zeros(3)))
print(x.shape, "a b".split(), torch.nn.functional.softmax(torch.randn(2), dim=0))
'''
    owners = {"view": ["Tensor"], "sum": ["Tensor"], "to": ["Tensor", "Module"],
              "parameters": ["Module"]}
    counts = api_census.census_of(source, owners)
    assert counts == collections.Counter({
        "nn.Module": 1, "F.relu": 1, "Tensor.view": 1, "Tensor.sum": 1, "Tensor.to": 1,
        "Module.to": 1, "optim.Adam": 1, "Module.parameters": 2, "lr_scheduler.StepLR": 1,
        "optim.SGD": 1, "utils.data.DataLoader": 1, "utils.data.TensorDataset": 1,
        "torch.zeros": 1, "Tensor.shape": 1, "F.softmax": 1, "torch.randn": 1,
    })


def test_notebooks_become_their_code_cells() -> None:
    notebook = ('{"cells": [{"cell_type": "markdown", "source": ["# t"]}, {"cell_type": "code", '
                '"source": ["!pip install x\\n", "import torch\\n", "%matplotlib inline\\n", '
                '"y = torch.ones(2)"]}]}')
    code = api_census.notebook_to_python(notebook)
    ast.parse(code)
    assert "pip" not in code and "matplotlib" not in code and "torch.ones(2)" in code


def test_the_census_data_holds_no_code() -> None:
    text = (ROOT / "tools" / "api_census.json").read_text()
    for marker in ("def ", "import ", "return ", "\\n"):
        assert marker not in text, marker


@pytest.mark.parametrize("dotted, short", [
    ("torch.nn.functional.relu", "F.relu"), ("torch.nn.Linear", "nn.Linear"),
    ("torch.optim.lr_scheduler.StepLR", "lr_scheduler.StepLR"), ("torch.optim.Adam",
                                                                 "optim.Adam"),
    ("torch.utils.data.DataLoader", "utils.data.DataLoader"), ("torch.zeros", "torch.zeros"),
    ("torch.nn.modules.linear.Linear", "nn.Linear"),
    ("torch.utils.data.dataloader.DataLoader", "utils.data.DataLoader"),
])
def test_short_names(dotted: str, short: str) -> None:
    assert api_census.short_name(dotted) == short


def test_the_census_page_names_ops_without_an_op_database_entry() -> None:
    """Adding an op means adding its entry: an op of tinynet's own that tests/opdb.py does not
    reach shows up on the coverage page (and so fails the page-is-current test above)."""
    import opdb

    from tinynet.autograd import Function

    class Unentered(Function):
        @staticmethod
        def forward(ctx: Function, x: object) -> object:
            return x

    Unentered.__module__ = "tinynet.ops.fake"
    Function.registry["Unentered"] = Unentered
    try:
        assert "Unentered" in opdb.ops_without_entry()
        assert "`Unentered`" in api_census.render(api_census.load_census())
    finally:
        del Function.registry["Unentered"]
    assert opdb.ops_without_entry() == []
