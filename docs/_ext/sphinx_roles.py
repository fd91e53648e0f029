"""Griffe extension for the docs build: show Sphinx roles as code.

The package's docstrings use reST roles such as ``:class:`TTMatrix``` and
``:meth:`~tensortrain.TTTensor.round```.  Markdown has no roles, so this extension rewrites
each one to a code span holding the name (the last component when the target starts with
``~``, as Sphinx does), before mkdocstrings renders the page.  Only the docs build loads it;
the docstrings themselves stay as they are.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj):`(~?)([^`]+)`")


def _as_code(match: re.Match) -> str:
    target = match.group(2)
    if match.group(1):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` to a Markdown code span in every docstring."""

    def on_instance(self, *, obj, **kwargs) -> None:  # noqa: D102
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_as_code, obj.docstring.value)
