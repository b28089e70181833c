#!/usr/bin/env python3
"""Check the repository's markdown: links resolve in a clone, contract pages in step.

Usage: python3 scripts/docs.py [--spec DIR]

1. Every relative link of every markdown file in the repository (`[text](path)`,
   `[text](path#anchor)`, `[text](#anchor)`, and `<img src=…>`/`<a href=…>`) names a
   file or folder of the repository, and an anchor names a heading of the page it points
   at (GitHub's rule: lower case, punctuation dropped, spaces as `-`).
2. Every code span that names a markdown file (`` `docker/CONTRACT.md` ``) names one
   that exists, relative to the page or to the repository's root, so a reader of a
   clone can open it. The one exception: `docs/` may name the shared contract it
   started from (`shared/spec/…`), which lives outside the repository.
3. With `--spec DIR` (by default `../shared/spec` beside the repository, when it
   exists): every paragraph, table row and code line of `DIR/sut.md` and
   `DIR/history.md` is still in `docs/sut.md` and `docs/history.md` — the project's
   pages keep every promise of the shared contract.

Python 3.11, standard library only. Exit 0: all good; 1: problems, each named with its
file and line; 2: bad usage.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = "shared/spec/"
CONTRACT_PAGES = ("sut.md", "history.md")

LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML = re.compile(r"<(?:a|img)\s[^>]*?(?:href|src)=\"([^\"]+)\"", re.I)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
MD_PATH = re.compile(r"^[\w.\-/]+\.md(#[\w\-]+)?$")


def markdown_files() -> list[Path]:
    """The repository's markdown files: git's view when there is one, else a walk."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        files = [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in ROOT.rglob("*.md") if "target" not in p.parts and ".git" not in p.parts]
    return sorted(p for p in files if p.is_file())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"`|\*\*|\*|_(?=\w)|(?<=\w)_", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path, cache: dict[Path, set[str]]) -> set[str]:
    if page not in cache:
        found: set[str] = set()
        seen: dict[str, int] = {}
        fenced = False
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and (m := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
                s = slug(m.group(1))
                n = seen.get(s, 0)
                seen[s] = n + 1
                found.add(s if n == 0 else f"{s}-{n}")
        cache[page] = found
    return cache[page]


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks, and whether inside one."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        yield number, line, fenced


def check_links(files: list[Path]) -> list[str]:
    problems: list[str] = []
    cache: dict[Path, set[str]] = {}
    for page in files:
        rel_page = page.relative_to(ROOT)
        in_docs = rel_page.parts[0] == "docs"
        for number, line, fenced in prose_lines(page.read_text(encoding="utf-8")):
            if fenced or line.startswith("    "):
                continue  # code: not links
            where = f"{rel_page}:{number}"
            targets = [m.group(1) for r in (LINK, IMAGE, HTML) for m in r.finditer(line)]
            for target in targets:
                if re.match(r"^[a-z][a-z0-9+.\-]*:", target, re.I):
                    continue  # https:, mailto:, …
                path_part, _, anchor = target.partition("#")
                dest = (page.parent / path_part).resolve() if path_part else page
                if not dest.exists():
                    problems.append(f"{where}: link to {target}: no such file in the repository")
                    continue
                try:
                    dest.relative_to(ROOT)
                except ValueError:
                    problems.append(f"{where}: link to {target}: outside the repository")
                    continue
                if anchor and dest.suffix == ".md" and anchor not in anchors(dest, cache):
                    problems.append(f"{where}: link to {target}: {dest.relative_to(ROOT)} has no heading #{anchor}")
            for m in CODE_SPAN.finditer(line):
                span = m.group(1).strip()
                if not MD_PATH.match(span) or "/" not in span:
                    continue
                if span.startswith(UPSTREAM):
                    if not in_docs:
                        problems.append(
                            f"{where}: `{span}` is not in a clone: point at docs/{Path(span).name} instead"
                        )
                    continue
                path_part = span.partition("#")[0]
                if not ((page.parent / path_part).exists() or (ROOT / path_part).exists()):
                    problems.append(f"{where}: `{span}` names no file of the repository")
    return problems


def blocks(text: str):
    """The spec's promises: prose paragraphs whole, table rows and code lines one by one."""
    paragraph: list[str] = []
    for _, line, fenced in prose_lines(text):
        if fenced or line.lstrip().startswith("|"):
            if paragraph:
                yield " ".join(paragraph)
                paragraph = []
            if line.strip():
                yield line.strip()
        elif not line.strip():
            if paragraph:
                yield " ".join(paragraph)
                paragraph = []
        else:
            paragraph.append(line.strip())
    if paragraph:
        yield " ".join(paragraph)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def check_spec(spec_dir: Path) -> list[str]:
    problems: list[str] = []
    for name in CONTRACT_PAGES:
        spec, page = spec_dir / name, ROOT / "docs" / name
        if not spec.is_file():
            problems.append(f"{spec}: no such file (--spec names the shared contract's folder)")
            continue
        if not page.is_file():
            problems.append(f"docs/{name}: missing (the project's copy of {spec})")
            continue
        doc_text = page.read_text(encoding="utf-8")
        doc = squeeze(doc_text)
        doc_lines = {line.strip() for line in doc_text.splitlines()}
        for block in blocks(spec.read_text(encoding="utf-8")):
            held = block in doc_lines if block.startswith("|") else squeeze(block) in doc
            if not held:
                problems.append(f"docs/{name}: does not keep this of {spec}: {block[:100]}")
    return problems


def main(argv: list[str]) -> int:
    spec_dir: Path | None = None
    if argv[:1] == ["--spec"] and len(argv) == 2:
        spec_dir = Path(argv[1])
    elif argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    elif (ROOT.parent / "shared" / "spec").is_dir():
        spec_dir = ROOT.parent / "shared" / "spec"
    files = markdown_files()
    problems = check_links(files)
    if spec_dir is not None:
        problems += check_spec(spec_dir)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} markdown problem(s)")
        return 1
    spec_note = f"; docs/ keeps every promise of {spec_dir}" if spec_dir else ""
    print(f"markdown: {len(files)} files, every relative link resolves{spec_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
