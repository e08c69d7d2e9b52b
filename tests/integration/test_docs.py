"""The documentation: a short README, the site's includes of it, and one documentation address.

The site itself is built by ``.ci/run`` (``mkdocs build --strict``); these checks need no mkdocs.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r'^--8<-- "(?P<file>[^":]+)(?::(?P<name>[\w-]+))?"\s*$', re.MULTILINE)

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib


def test_readme_is_short():
    """Issue 20: a README of at most ~200 lines; the rest lives in docs/."""
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_site_includes_name_existing_sections():
    """Every ``--8<-- "FILE:NAME"`` of a docs page names a file with exactly one such section."""
    includes = [(page, m) for page in (ROOT / "docs").glob("*.md") for m in INCLUDE.finditer(page.read_text("utf-8"))]
    assert {m["name"] for _, m in includes} >= {"intro", "install", "walkthrough"}
    for page, m in includes:
        text = (ROOT / m["file"]).read_text(encoding="utf-8")
        if m["name"]:
            for edge in ("start", "end"):
                assert text.count(f"--8<-- [{edge}:{m['name']}]") == 1, (page.name, m[0], edge)


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = {next(iter(entry.values())) for entry in config["nav"]}
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_one_documentation_address():
    """pyproject's Documentation URL, the site's address and the napari hub's link are the same."""
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["site_url"]
    with open(ROOT / "pyproject.toml", "rb") as fh:
        urls = tomllib.load(fh)["project"]["urls"]
    hub = yaml.safe_load((ROOT / ".napari-hub" / "config.yml").read_text(encoding="utf-8"))
    assert urls["Documentation"] == site == hub["project_urls"]["Documentation"]
    assert site in (ROOT / ".napari-hub" / "DESCRIPTION.md").read_text(encoding="utf-8")
