"""Count the distinct lines of tinynet a learner follows through docs/autograd.md's example.

    TINYNET_NUMBA=0 python tools/line_trace.py [--show]

Runs ``y = (x @ w.T + b).sigmoid(); ((y - 1.0) ** 2).mean().backward()`` under a line tracer
(the numpy twins, so no compiled code hides lines) and prints the distinct code lines executed
in tinynet's own files, per file. ``--show`` prints the lines themselves.
"""

from __future__ import annotations

import collections
import linecache
import os
import sys

os.environ.setdefault("TINYNET_NUMBA", "0")

import numpy as np  # noqa: E402

import tinynet as tn  # noqa: E402

PACKAGE = os.path.dirname(os.path.abspath(tn.__file__))


def inputs() -> tuple[tn.Tensor, tn.Tensor, tn.Tensor]:
    rng = np.random.default_rng(0)
    x = tn.tensor(rng.standard_normal((4, 3)))
    w = tn.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = tn.tensor(rng.standard_normal(2), requires_grad=True)
    return x, w, b


def example(x: tn.Tensor, w: tn.Tensor, b: tn.Tensor) -> None:
    """The forward and backward a learner follows (making the tensors is not part of it)."""
    y = (x @ w.T + b).sigmoid()
    ((y - 1.0) ** 2).mean().backward()


def trace_lines() -> dict[str, set[int]]:
    example(*inputs())  # warm up: imports and caches are not part of the walk
    x, w, b = inputs()
    seen: dict[str, set[int]] = collections.defaultdict(set)

    def tracer(frame, event, arg):  # noqa: ANN001, ANN202
        path = frame.f_code.co_filename
        if not path.startswith(PACKAGE):
            return None
        if event == "line":
            seen[path].add(frame.f_lineno)
        return tracer

    sys.settrace(tracer)
    try:
        example(x, w, b)
    finally:
        sys.settrace(None)
    return seen


def main() -> None:
    seen = trace_lines()
    total = sum(len(lines) for lines in seen.values())
    for path, lines in sorted(seen.items(), key=lambda item: -len(item[1])):
        print(f"{len(lines):4d}  {os.path.relpath(path, os.path.dirname(PACKAGE))}")
        if "--show" in sys.argv:
            for n in sorted(lines):
                print(f"        {n:4d} {linecache.getline(path, n).rstrip()}")
    print(f"{total:4d}  distinct lines in {len(seen)} files")


if __name__ == "__main__":
    main()
