"""mkdocs hook: a page line ``--8<-- "FILE"`` or ``--8<-- "FILE:NAME"`` includes that file of the
repository, or its section between the lines holding ``--8<-- [start:NAME]`` and ``[end:NAME]``.

The README keeps the walkthrough, the install and the intro (GitHub, PyPI and the napari hub show
it); the site includes those sections instead of a copy that would drift apart. The README links
``docs/...`` from the repository root; inside the site the same files lie at the docs root, so
included links are rewritten here, before mkdocs checks them (pymdownx.snippets includes after
that check, which then fails on every screenshot).
"""
from __future__ import annotations

import re
from pathlib import Path

_INCLUDE = re.compile(r'^--8<-- "(?P<file>[^":]+)(?::(?P<name>[\w-]+))?"\s*$', re.MULTILINE)


def _section(text: str, name: str, path: Path) -> str:
    start, end = f"--8<-- [start:{name}]", f"--8<-- [end:{name}]"
    lines = text.splitlines()
    begin = [i for i, line in enumerate(lines) if start in line]
    stop = [i for i, line in enumerate(lines) if end in line]
    if len(begin) != 1 or len(stop) != 1 or stop[0] < begin[0]:
        raise ValueError(f"{path}: section {name!r} needs one start and one end marker")
    return "\n".join(lines[begin[0] + 1:stop[0]])


def on_page_markdown(markdown: str, *, config, **_: object) -> str:
    """Replace each include line by the file or section it names, with docs/ links made relative."""
    root = Path(config.config_file_path).parent

    def include(match: re.Match) -> str:
        path = root / match["file"]
        text = path.read_text(encoding="utf-8")  # a missing file fails the build
        if match["name"]:
            text = _section(text, match["name"], path)
        return text.replace("](docs/", "](")

    return _INCLUDE.sub(include, markdown)


_ROLE_TILDE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):<code>~(?:\w+\.)*(?P<name>\w+)</code>")


def on_page_content(html: str, **_: object) -> str:
    """Docstrings cite with Sphinx roles (``:func:`x```), which markdown renders as the role's name
    before the code (45 of them on the API page): drop the role; ``~a.b.C`` shows ``C``, as Sphinx does."""
    html = _ROLE_TILDE.sub(lambda m: f"<code>{m['name']}</code>", html)
    return re.sub(r":(?:func|class|meth|mod|attr|data|exc|obj):(?=<code>)", "", html)
