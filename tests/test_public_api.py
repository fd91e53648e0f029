"""Every public name has a docstring, in numpydoc style, and a place in the API reference.

Public names are those in the ``__all__`` of ``tensortrain``, ``tensortrain.nn``,
``tensortrain.datasets`` and ``tensortrain.gradients``.  For classes, every public method and
property defined by a tensortrain class counts too (a docstring inherited from a base class,
as ``inspect.getdoc`` finds it, is enough for an override).  The docs site renders these
docstrings with the numpy style (``mkdocs.yml``), so sections must be numpydoc sections, the
parameters a ``Parameters`` section lists must exist, and ``>>>`` examples belong under an
``Examples`` header.  The API pages (``docs/api/*.md``) must cover every public name.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import types
from pathlib import Path

import pytest

import tensortrain
import tensortrain.datasets
import tensortrain.gradients
import tensortrain.nn

ROOT = Path(__file__).resolve().parent.parent
MODULES = [tensortrain, tensortrain.nn, tensortrain.datasets, tensortrain.gradients]
SKIP = {"__version__"}

SECTIONS = {"Parameters", "Other Parameters", "Returns", "Yields", "Receives", "Raises",
            "Warns", "Warnings", "See Also", "Notes", "References", "Examples", "Attributes",
            "Methods"}
FOREIGN = re.compile(r"^\s*(Args|Arguments|Keyword Args|Returns|Yields|Raises|Example|Examples|"
                     r"Note|Notes|Attributes):\s*$|^\s*:(param|type|returns?|rtype|raises?)\b")


def _public_names():
    out = []
    for mod in MODULES:
        for name in mod.__all__:
            if name not in SKIP:
                out.append((mod.__name__, name, getattr(mod, name)))
    return out


PUBLIC = _public_names()


def _documentable(obj):
    return isinstance(obj, types.ModuleType) or inspect.isclass(obj) or callable(obj)


def _members(cls):
    """(name, object) for public methods and properties that tensortrain classes define."""
    seen = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("tensortrain"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property) or inspect.isfunction(value):
                seen[name] = getattr(cls, name)
    return sorted(seen.items())


def _all_documented():
    """(label, object) for every public name and every public member of public classes."""
    out = []
    for modname, name, obj in PUBLIC:
        if not _documentable(obj):
            continue
        out.append((f"{modname}.{name}", obj))
        if inspect.isclass(obj):
            out += [(f"{modname}.{name}.{m}", v) for m, v in _members(obj)]
    return out


DOCUMENTED = _all_documented()


@pytest.mark.parametrize("label,obj", DOCUMENTED, ids=[lbl for lbl, _ in DOCUMENTED])
def test_has_docstring(label, obj):
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"{label} has no docstring"


def _sections(doc):
    """Numpydoc section headers of ``doc`` as {name: line index}; checks the underlines."""
    lines = doc.splitlines()
    found = {}
    for i, line in enumerate(lines[:-1]):
        title, under = line.strip(), lines[i + 1].strip()
        if title in SECTIONS and under and set(under) == {"-"}:
            assert len(under) == len(title), f"underline of {title!r} has the wrong length"
            found[title] = i
    return found, lines


def _documented_params(lines, start):
    """Names listed in the Parameters section that starts at line ``start``."""
    names = []
    for line in lines[start + 2:]:
        stripped = line.strip()
        if stripped in SECTIONS:
            break
        if line and not line.startswith(" "):
            head = line.split(" : ")[0].strip()
            names += [n.strip().lstrip("*") for n in head.split(",") if n.strip()]
    return names


def _signature_params(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    return {p for p in sig.parameters if p != "self"}


@pytest.mark.parametrize("label,obj", DOCUMENTED, ids=[lbl for lbl, _ in DOCUMENTED])
def test_docstring_is_numpydoc(label, obj):
    doc = inspect.getdoc(obj) or ""
    for line in doc.splitlines():
        assert not FOREIGN.match(line), (
            f"{label}: {line.strip()!r} is a Google or Sphinx field; use numpydoc sections "
            "(a title underlined with dashes)")
    sections, lines = _sections(doc)
    example = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith(">>>")), None)
    if example is not None:
        assert "Examples" in sections and sections["Examples"] < example, (
            f"{label}: '>>>' examples must follow an 'Examples' header")
    if "Parameters" in sections and not isinstance(obj, (property, types.ModuleType)):
        params = _signature_params(obj)
        if params is not None:
            unknown = [p for p in _documented_params(lines, sections["Parameters"])
                       if p not in params]
            assert not unknown, f"{label} documents parameters it does not take: {unknown}"


def _api_directives():
    """The ``::: dotted.path`` targets of docs/api/*.md, and the pages' text."""
    targets, text = set(), ""
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        page_text = page.read_text()
        text += page_text
        targets |= set(re.findall(r"^:::\s+(\S+)", page_text, re.M))
    return targets, text


def _resolve(path):
    parts = path.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = __import__(".".join(parts[:k]), fromlist=["_"])
        except ImportError:
            continue
        for part in parts[k:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(path)


@pytest.mark.parametrize("modname,name,obj", PUBLIC, ids=[f"{m}.{n}" for m, n, _ in PUBLIC])
def test_in_api_reference(modname, name, obj):
    targets, text = _api_directives()
    if not _documentable(obj):                       # constants: mentioned on a page
        short = modname.split(".")[-1]
        assert f"{short}.{name}" in text or f"{modname}.{name}" in text, (
            f"{modname}.{name} is not mentioned in docs/api/")
        return
    for target in targets:
        resolved = _resolve(target)
        if resolved is obj:
            return
        if isinstance(resolved, types.ModuleType) and getattr(resolved, name, None) is obj \
                and name in getattr(resolved, "__all__", ()):
            return
    pytest.fail(f"{modname}.{name} is not rendered by any '::: ...' directive in docs/api/")


def test_api_directives_resolve():
    targets, _ = _api_directives()
    assert targets
    for target in sorted(targets):
        _resolve(target)


# ---- packaging -----------------------------------------------------------------------------------
def test_version_lives_in_one_place():
    """pyproject.toml has no version of its own: setuptools reads ``tensortrain.__version__``;
    an installed copy reports that same version."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "tensortrain.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", tensortrain.__version__)
    try:
        installed = importlib.metadata.version("tensortrain")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tensortrain is not installed (an uninstalled tree)")
    assert installed == tensortrain.__version__


def test_typed_marker_ships_with_the_package():
    """``py.typed`` exists and is in the package data, so type checkers read the hints."""
    tomllib = pytest.importorskip("tomllib")
    assert (ROOT / "tensortrain" / "py.typed").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in data["package-data"]["tensortrain"]
