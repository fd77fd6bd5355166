"""Every decimal figure on README.md, saved_models/README.md and docs/**/*.md is backed by a committed raw file, or
is marked plainly as not reproducible, or is a setting the page declares (the rules: docs/README.md, "How figures
are backed"). Reads files only: no TensorFlow, no data."""

import csv
import glob
import json
import math
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True)
PAGES = sorted(["README.md", os.path.join("saved_models", "README.md")] + [os.path.relpath(p, REPO) for p in DOCS])
CODE_FENCES = ("bash", "sh", "shell", "python")
UNBACKED_SAYS = "not reproducible from committed files"
OPEN = re.compile(r"<!--\s*(figures|unbacked):\s*(.*?)\s*-->")
CLOSE = re.compile(r"<!--\s*/(figures|unbacked)\s*-->")
SETTINGS = re.compile(r"(?m)^<!--\s*settings:\s*(.*?)\s*-->")
UNBACKED_ROW = re.compile(r"<!--\s*unbacked row\s*-->")
GENERATED = re.compile(r"(?m)^<!--\s*generated:\s*(\S+) by (\S+)")
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)")  # 0.951, 12.5; not 2.21.0, v1.2.3, file.tar.gz


def raw_numbers(path):
    """Every number in a raw file: JSON numbers (recursively), CSV cells that parse as numbers, or the decimals of a
    generated page (one checked byte for byte against its own raw file: `RENDERERS`)."""
    values = []
    if path.endswith(".md"):
        if os.path.relpath(path, REPO) not in RENDERERS:
            raise ValueError(f"{path} is not a generated page with a renderer: it cannot back figures")
        return [float(v) for v in DECIMAL.findall(open(path, encoding="utf-8").read())]
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                for cell in row:
                    try:
                        values.append(float(cell))
                    except ValueError:
                        pass
        return values

    def walk(node):
        if isinstance(node, bool):
            return
        if isinstance(node, (int, float)):
            values.append(float(node))
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    with open(path, encoding="utf-8") as f:
        walk(json.load(f))
    return values


def backed(printed, numbers):
    """Whether the printed decimal is some raw number rounded to the printed places (absolute values: a page may
    print a minus sign as text)."""
    places = len(printed.split(".")[1])
    value, half = float(printed), 0.5 * 10.0 ** -places + 1e-9
    return any(math.isfinite(n) and abs(abs(n) - value) <= half for n in numbers)


def prose_lines(text):
    """(line number, line) of what may hold figures, inline code removed: prose, tables and console output
    (untagged fences). Commands and code (fences tagged bash/sh/python, indented blocks) are skipped."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip()[3:].strip()
            continue
        if fence in CODE_FENCES or (fence is None and line.startswith("    ")):
            continue
        yield number, re.sub(r"`[^`]*`", "", line)


def check_page(page):
    """The page's problems, one string each ("page:line: what")."""
    path = os.path.join(REPO, page)
    text = open(path, encoding="utf-8").read()
    generated = GENERATED.search(text)
    if generated:  # the whole page is a script's rendering of its raw file: checked by rendering it again
        return [] if page in RENDERERS else [f"{page}: generated, but tests/test_figures.py has no renderer for it"]
    settings = {s for m in SETTINGS.finditer(text) for s in m.group(1).split()}
    problems, block, numbers = [], None, []
    for number, line in prose_lines(text):
        where = f"{page}:{number}"
        opened = OPEN.search(line)
        if opened:
            if block:
                problems.append(f"{where}: a {opened.group(1)} block opens inside a {block[0]} block")
            block, numbers = (opened.group(1), number, opened.group(2)), []
            if block[0] == "figures":
                for raw in (p.strip() for p in opened.group(2).split(",")):
                    raw_path = os.path.normpath(os.path.join(os.path.dirname(path), raw))
                    if not os.path.exists(raw_path):
                        problems.append(f"{where}: raw file {raw!r} does not exist")
                        continue
                    try:
                        numbers += raw_numbers(raw_path)
                    except ValueError as e:
                        problems.append(f"{where}: {e}")
            line = OPEN.sub("", line)
        closed = CLOSE.search(line)
        body = CLOSE.split(line)[0] if closed else line
        body = SETTINGS.sub("", body)
        if UNBACKED_ROW.search(body):  # one table row (a block would break the table); the page says why
            if UNBACKED_SAYS not in _visible(text, 1, len(text.splitlines())):
                problems.append(f"{where}: an unbacked row, but the page never says '{UNBACKED_SAYS}: <why>'")
            continue
        for printed in DECIMAL.findall(body):
            if printed in settings or (block and block[0] == "unbacked"):
                continue
            if not block:
                problems.append(f"{where}: {printed} is in no figures block, unbacked block or settings line")
            elif not backed(printed, numbers):
                problems.append(f"{where}: {printed} is not in {block[2]}")
        if closed:
            if not block or block[0] != closed.group(1):
                problems.append(f"{where}: /{closed.group(1)} closes no {closed.group(1)} block")
            elif block[0] == "unbacked" and UNBACKED_SAYS not in _visible(text, block[1], number):
                problems.append(f"{page}:{block[1]}: an unbacked block must say '{UNBACKED_SAYS}: <why>'")
            block = None
    if block:
        problems.append(f"{page}:{block[1]}: {block[0]} block never closed")
    return problems


def _visible(text, first, last):
    """Lines first..last of the page without HTML comments (what a reader sees), lower case, one space between
    words."""
    lines = "\n".join(text.splitlines()[first - 1:last])
    return " ".join(re.sub(r"<!--.*?-->", "", lines, flags=re.S).lower().split())


def render_real(raw):
    """docs/results/real.md from real.json: pipelines/validate_real.py's own page writer."""
    import sys

    sys.path.insert(0, os.path.join(REPO, "pipelines"))
    import validate_real

    return validate_real.markdown(raw["adfecgdb"], raw["bidmc"], raw["meta"], raw["synthetic"], raw.get("ecg_models"),
                                  raw.get("bidmc_mean_removed"))


# generated pages: {page: renderer of its raw file}; the page must equal the rendering, byte for byte
RENDERERS = {os.path.join("docs", "results", "real.md"): render_real}


@pytest.mark.parametrize("page", sorted(RENDERERS))
def test_a_generated_page_is_its_raw_file_rendered_again(page):
    text = open(os.path.join(REPO, page), encoding="utf-8").read()
    raw = os.path.join(os.path.dirname(os.path.join(REPO, page)), GENERATED.search(text).group(1))
    with open(raw, encoding="utf-8") as f:
        assert RENDERERS[page](json.load(f)) == text


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_on_the_page_is_backed(page):
    problems = check_page(page)
    assert not problems, f"{len(problems)} unbacked figures:\n" + "\n".join(problems[:40])


def test_the_check_can_fail(tmp_path, monkeypatch):
    """A figure that drifts from its raw file, one outside any block and an unbacked block that does not say so
    are each reported; the backed and declared ones are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "raw.json").write_text(json.dumps({"a": {"f1": 0.93297}, "b": [3.2531, -0.5]}))
    (tmp_path / "docs" / "page.md").write_text("\n".join([
        "<!-- settings: 2.21 -->",
        "TensorFlow 2.21; code `1.23` is skipped.",
        "<!-- figures: raw.json -->",
        "| F1 0.933 | L2 3.25 | 0.5 | 0.934 |",
        "<!-- /figures -->",
        "A stray 0.951.",
        "<!-- unbacked: no raw output -->",
        "ecg/1 L2 1.451",
        "<!-- /unbacked -->",
        "<!-- unbacked: lost -->",
        "0.77, " + UNBACKED_SAYS + ": the runs' outputs were not kept <!-- /unbacked -->",
    ]))
    monkeypatch.setattr(__import__(__name__), "REPO", str(tmp_path))
    assert check_page(os.path.join("docs", "page.md")) == [
        "docs/page.md:4: 0.934 is not in raw.json",
        "docs/page.md:6: 0.951 is in no figures block, unbacked block or settings line",
        f"docs/page.md:7: an unbacked block must say '{UNBACKED_SAYS}: <why>'",
    ]
