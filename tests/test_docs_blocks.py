"""Every ```python block in README.md and docs/*.md runs on its own.

A reader copies one block into a fresh interpreter, so each block must bring its imports and
its data. Each runs here as a script of its own, in a fresh Python process whose working
directory is an empty temporary folder, with matplotlib's file-only Agg backend; a failure
names the file and the line of the block's opening fence.

What is not run:
- blocks fenced with another language (```bash, ```text, or a bare ```), for commands and
  printed output;
- quotations of tinynet's source: a ```python block whose first line is a path comment such
  as ``# tinynet/autograd.py`` (tests/test_internals.py checks those verbatim against the code
  instead).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
OPENING = re.compile(r"```python\s*")
CLOSING = re.compile(r"```\s*")
QUOTATION = re.compile(r"# tinynet/[\w/]+\.py")


@dataclass(frozen=True)
class Block:
    document: str  # path relative to the repository, e.g. "docs/tutorial.md"
    line: int  # 1-based line of the opening ```python fence
    code: str

    @property
    def is_source_quotation(self) -> bool:
        return bool(QUOTATION.fullmatch(self.code.partition("\n")[0].strip()))

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def python_blocks(text: str, document: str) -> list[Block]:
    """The ```python blocks of a markdown text, in order, each with its fence's line number.
    An unclosed block is an error (it would swallow the rest of the page)."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if OPENING.fullmatch(lines[i]):
            start = i
            i += 1
            while i < len(lines) and not CLOSING.fullmatch(lines[i]):
                i += 1
            if i == len(lines):
                raise ValueError(f"{document}:{start + 1}: ```python block is never closed")
            blocks.append(Block(document, start + 1, "\n".join(lines[start + 1 : i]) + "\n"))
        i += 1
    return blocks


def runnable_blocks() -> list[Block]:
    blocks = []
    for path in DOCUMENTS:
        document = path.relative_to(REPO).as_posix()
        blocks += python_blocks(path.read_text(encoding="utf-8"), document)
    return [block for block in blocks if not block.is_source_quotation]


def run_block(block: Block, folder: Path) -> str | None:
    """Run the block as a script in ``folder``; None if it exits 0, else what went wrong."""
    script = folder / "block.py"
    script.write_text(block.code, encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run(
            [sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{block}: the ```python block starting on this line ran for over 300 s"
    if proc.returncode == 0:
        return None
    return (
        f"{block}: the ```python block starting on this line failed (exit {proc.returncode}); "
        f"line numbers below count from the block's first line of code.\n{proc.stderr}"
    )


BLOCKS = runnable_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_python_block_runs_on_its_own(block, tmp_path):
    problem = run_block(block, tmp_path)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


def test_the_pages_have_python_blocks_to_run():
    per_document = {str(block).rpartition(":")[0] for block in BLOCKS}
    assert {"README.md", "docs/tutorial.md"} <= per_document
    assert sum(block.document == "docs/tutorial.md" for block in BLOCKS) >= 8


def test_blocks_are_found_with_their_line_numbers_and_languages_told_apart():
    text = (
        "# Title\n"              # 1
        "```bash\n"              # 2
        "python -m tinynet\n"    # 3
        "```\n"                  # 4
        "```python\n"            # 5
        "x = 1\n"                # 6
        "```\n"                  # 7
        "```\n"                  # 8
        "printed output\n"       # 9
        "```\n"                  # 10
        "```python\n"            # 11
        "# tinynet/tensor.py\n"  # 12
        "class Tensor:\n"        # 13
        "```\n"                  # 14
    )
    blocks = python_blocks(text, "page.md")
    assert [(b.line, b.code, b.is_source_quotation) for b in blocks] == [
        (5, "x = 1\n", False),
        (11, "# tinynet/tensor.py\nclass Tensor:\n", True),
    ]
    with pytest.raises(ValueError, match="page.md:2"):
        python_blocks("text\n```python\nx = 1\n", "page.md")


def test_a_failing_block_is_reported_with_its_file_and_line(tmp_path):
    good = Block("docs/page.md", 3, "import tinynet as tn\nprint(tn.tensor([1.0]))\n")
    assert run_block(good, tmp_path) is None
    bad = Block("docs/page.md", 12, "x = 1\nprint(tn)\n")  # `tn` was never imported
    problem = run_block(bad, tmp_path)
    assert problem is not None
    assert problem.startswith("docs/page.md:12: the ```python block")
    assert "NameError: name 'tn' is not defined" in problem
