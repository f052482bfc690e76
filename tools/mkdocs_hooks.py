"""mkdocs hook: piaa's docstrings use Sphinx cross-reference roles (``:class:`Scorer```), which
mkdocstrings renders literally; on the API page they read as the plain code they name."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):(<code>)~?")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(r"\1", html)
