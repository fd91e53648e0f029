"""The code in README.md and docs/**/*.md runs, and prints what the page says it prints.

Every ```python block of a page runs in one namespace, in order.  A statement that calls
``print`` may be followed by full-line ``# ...`` comments: they are the expected output.
Blocks marked ``# needs CuPy and a GPU`` run only where CuPy and a device exist.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
from pathlib import Path

import pytest
from _helpers import HAS_CUPY

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _page_id(page):
    """``README.md``, ``training.md``, ``guide/gpu.md``: the path under docs/ (or the root)."""
    base = ROOT / "docs" if (ROOT / "docs") in page.parents else ROOT
    return page.relative_to(base).as_posix()


def _expected_output(src):
    lines = src.splitlines()
    expected = []
    for node in ast.parse(src).body:
        calls_print = any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
                          for n in ast.walk(node))
        if not calls_print:
            continue
        ln = node.end_lineno
        while ln < len(lines) and lines[ln].startswith("#"):
            expected.append(lines[ln][2:] if lines[ln].startswith("# ") else lines[ln][1:])
            ln += 1
    return expected


@pytest.mark.parametrize("page", PAGES, ids=[_page_id(p) for p in PAGES])
def test_page_examples(page, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    if not blocks:
        pytest.skip(f"{_page_id(page)} has no python blocks")
    monkeypatch.chdir(tmp_path)          # examples that save files write here
    ns = {"__name__": "__doc__"}
    for k, src in enumerate(blocks):
        if "# needs CuPy and a GPU" in src and not HAS_CUPY:
            continue
        expected = _expected_output(src)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(src, f"{_page_id(page)}:block{k}", "exec"), ns)
        got = buf.getvalue().rstrip("\n").splitlines()
        if expected:
            assert [g.rstrip() for g in got] == [e.rstrip() for e in expected], (
                f"{_page_id(page)} block {k} printed:\n" + "\n".join(got))
    assert os.getcwd() == str(tmp_path)
