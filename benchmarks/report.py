"""The JSON file ``python -m benchmarks --json FILE`` writes, and reading it back.

The layout is documented in docs/benchmarks.md ("The JSON file"); a test keeps the two in step.
``load_report`` checks what ``compare`` and ``plot`` rely on and names the first key that is
missing or malformed, so a wrong or damaged file fails with a sentence, not a KeyError.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


class ReportError(ValueError):
    """A benchmark JSON file that cannot be read or lacks what is needed."""


def _fail(path: str, where: str, problem: str) -> ReportError:
    return ReportError(f"{path}: {where} {problem}; is this a `python -m benchmarks --json` file?")


def check_report(report: Any, path: str = "report") -> dict[str, Any]:
    """Return ``report`` if it has the keys and types ``compare`` and ``plot`` read.

    Files written before ``schema_version`` was recorded (version 0) are accepted: they
    hold the same samples.
    """
    if not isinstance(report, dict):
        raise _fail(path, "the top level", f"is a {type(report).__name__}, not an object")
    version = report.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise _fail(
            path,
            "schema_version",
            f"is {version!r}; this tinynet reads versions up to {SCHEMA_VERSION}",
        )
    for key, kind in (("machine", dict), ("workloads", list)):
        if not isinstance(report.get(key), kind):
            raise _fail(path, f"key {key!r}", f"is missing or not a {kind.__name__}")
    for i, workload in enumerate(report["workloads"]):
        where = f"workloads[{i}]"
        if not isinstance(workload, dict) or not isinstance(workload.get("name"), str):
            raise _fail(path, where, "has no 'name'")
        where = f"workload {workload['name']!r}"
        impls = workload.get("implementations")
        if not isinstance(impls, dict):
            raise _fail(path, where, "has no 'implementations' object")
        for impl, entry in impls.items():
            times = entry.get("times_s") if isinstance(entry, dict) else None
            if (
                not isinstance(times, list)
                or not times
                or not all(isinstance(t, int | float) and math.isfinite(t) and t > 0 for t in times)
            ):
                raise _fail(
                    path,
                    f"{where}, implementation {impl!r}:",
                    "'times_s' is not a list of positive seconds",
                )
    return report


def load_report(path: Path | str) -> dict[str, Any]:
    """Read and check a benchmark JSON file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from exc
    return check_report(report, str(path))


def describe_run(report: dict[str, Any]) -> str:
    """One line naming a run: when, settings, tinynet version and load."""
    machine = report["machine"]
    parts = [report.get("started_at", "date not recorded")]
    if "quick" in report:
        parts.append("quick settings" if report["quick"] else "full settings")
    parts.append(f"tinynet {machine.get('tinynet', '?')}")
    load = machine.get("load_average_at_start")
    if load is not None:
        parts.append(f"load {load} at start")
    cores = (machine.get("threads") or {}).get("cores")
    if cores is not None:
        parts.append(f"--cores {cores}")
    if report.get("load_warning"):
        parts.append("LOADED MACHINE (load above 0.5 per core; times are rough)")
    return ", ".join(str(p) for p in parts)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": leaf}``; lists stay leaves."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out
