#!/usr/bin/env python3
"""List module cycles in each crate of the workspace; exit 1 when there is one.

Usage: python3 scripts/cycles.py [--edges] [CRATE_DIR ...]

A crate's modules are found from its roots (src/lib.rs, src/main.rs, src/bin/*.rs) by
their `mod` declarations. A module depends on another when its code names it:
`use crate::…`, `use super::…`, `use self::…`, a path such as `crate::a::b(…)` or
`super::X`, or a path through one of its child modules or imported names (`store::load`).
Paths go through re-exports (`pub use`) to the module that defines the item, so
`crate::Cluster` is `engines::cluster`, not the crate root.

A cycle is looked for at every level of the module tree: among the children of each
module, plus that module's own body (what its own file defines), a child stands for
everything under it. So `run/` ↔ `report/` is a cycle when anything under `run/` uses
anything under `report/` and back, and `system.rs` ↔ `outbox.rs` is one when each names
the other. Test code (`#[cfg(test)]` modules) is left out: it may use anything.

Python 3.11, standard library only. Exit 0: no cycle; 1: cycles (each printed with a
line that makes each of its edges); 2: bad usage.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE_CRATES = ["checkers", "harness", "workloads"]


# ---------------------------------------------------------------------------------------
# Reading Rust: blank out comments, strings and char literals (keeping line numbers).

CHAR_LIT = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'\n])'")
RAW_STR = re.compile(r'b?r(#*)"')


def strip(src: str) -> str:
    """The source with comments, strings and chars replaced by blanks (newlines kept)."""
    out: list[str] = []
    i, n = 0, len(src)

    def blank(text: str) -> str:
        return "".join("\n" if c == "\n" else " " for c in text)

    while i < n:
        c = src[i]
        prev_ident = i > 0 and (src[i - 1].isalnum() or src[i - 1] == "_")
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif c in "rb" and not prev_ident and (m := RAW_STR.match(src, i)):
            end = '"' + m.group(1)
            j = src.find(end, m.end())
            j = n if j < 0 else j + len(end)
            out.append(blank(src[i:j]))
            i = j
        elif c == '"' or (c == "b" and not prev_ident and src.startswith('b"', i)):
            j = i + (2 if c == "b" else 1)
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(blank(src[i : j + 1]))
            i = j + 1
        elif c == "'" and (m := CHAR_LIT.match(src, i)):
            out.append(blank(m.group(0)))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def use_tree(text: str) -> list[tuple[list[str], str | None]]:
    """Expands a `use` tree into (path, name it binds); the name is None for a glob."""
    tokens = re.findall(r"::|[{},*]|\w+", text)
    pos = 0

    def parse(prefix: list[str]) -> list[tuple[list[str], str | None]]:
        nonlocal pos
        path = list(prefix)
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "::":
                pos += 1
            elif tok == "{":
                pos += 1
                found: list[tuple[list[str], str | None]] = []
                while pos < len(tokens) and tokens[pos] != "}":
                    if tokens[pos] == ",":
                        pos += 1
                        continue
                    found += parse(path)
                pos += 1
                return found
            elif tok == "*":
                pos += 1
                return [(path, None)]
            elif tok in (",", "}"):
                break
            elif tok == "as":
                pos += 1
                alias = tokens[pos]
                pos += 1
                return [] if alias == "_" else [(path, alias)]
            else:
                path.append(tok)
                pos += 1
        if path and path[-1] == "self":
            path = path[:-1]
        return [(path, path[-1])] if path else []

    return parse([])


# ---------------------------------------------------------------------------------------
# The module tree.


@dataclass(eq=False)
class Module:
    """One module: a file, or an inline `mod x { … }` block."""

    name: str
    parent: Module | None
    file: Path
    children: dict[str, Module] = field(default_factory=dict)
    # A name brought in by `use` → (path as written, line).
    aliases: dict[str, tuple[list[str], int]] = field(default_factory=dict)
    globs: list[tuple[list[str], int]] = field(default_factory=list)
    # Paths the code names → line.
    refs: list[tuple[list[str], int]] = field(default_factory=list)
    # Names re-exported by `pub use` → (path, line): a dependency only if the body uses them.
    reexports: dict[str, tuple[list[str], int]] = field(default_factory=dict)
    # Every word of the module's own code outside `use` items.
    words: set[str] = field(default_factory=set)

    def path(self) -> str:
        parts: list[str] = []
        m: Module | None = self
        while m is not None and m.parent is not None:
            parts.append(m.name)
            m = m.parent
        return "::".join(reversed(parts)) or "crate"


TOKEN = re.compile(
    r"(?P<mod>\bmod\s+(?P<modname>\w+)\s*(?P<modend>[;{]))"
    r"|(?P<use>\b(?P<vis>pub(?:\s*\([^)]*\))?\s+)?use\s+(?P<usetree>[^;]+);)"
    r"|(?P<path>(?<![\w:])(?:\w+\s*::\s*)+\w+)"
    r"|(?P<open>\{)|(?P<close>\})|(?P<word>\b\w+\b)"
)


def is_test(text: str, start: int) -> bool:
    """Whether the item starting at `start` carries `#[cfg(test)]`."""
    head = text[max(0, start - 300) : start]
    cut = max(head.rfind(";"), head.rfind("}"), head.rfind("{"))
    return re.search(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]", head[cut + 1 :]) is not None


def module_file(dir_: Path, name: str) -> Path | None:
    for candidate in (dir_ / f"{name}.rs", dir_ / name / "mod.rs"):
        if candidate.is_file():
            return candidate
    return None


def load(module: Module, file: Path, child_dir: Path) -> None:
    """Reads `file` into `module`, and its `mod x;` children from `child_dir`."""
    text = strip(file.read_text(encoding="utf-8"))
    stack: list[tuple[Module | None, int]] = [(module, 0)]  # None: test code
    depth = 0
    for m in TOKEN.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        current = stack[-1][0]
        if m.group("open"):
            depth += 1
        elif m.group("close"):
            if stack[-1][1] == depth and len(stack) > 1:
                stack.pop()
            depth -= 1
        elif m.group("mod"):
            name, end = m.group("modname"), m.group("modend")
            test = current is None or is_test(text, m.start())
            if end == "{":
                depth += 1
                child = None if test else Module(name, current, file)
                if child is not None and current is not None:
                    current.children[name] = child
                stack.append((child, depth))
            elif not test and current is not None:
                sub_file = module_file(child_dir, name)
                if sub_file is None:
                    sys.exit(f"{file}:{line}: no file for `mod {name};` in {child_dir}")
                child = Module(name, current, sub_file)
                current.children[name] = child
                sub_dir = sub_file.parent if sub_file.name == "mod.rs" else sub_file.with_suffix("")
                load(child, sub_file, sub_dir)
        elif current is None:
            depth += m.group(0).count("{") - m.group(0).count("}")
        elif m.group("use"):
            for path, alias in use_tree(m.group("usetree")):
                if alias is None:
                    current.globs.append((path, line))
                else:
                    current.aliases[alias] = (path, line)
                if m.group("vis") and alias is not None:
                    current.reexports[alias] = (path, line)
                else:
                    current.refs.append((path, line))
        elif m.group("word"):
            current.words.add(m.group("word"))
        elif m.group("path"):
            current.refs.append((re.split(r"\s*::\s*", m.group("path")), line))


def resolve(module: Module, path: list[str], root: Module, seen: frozenset = frozenset()) -> Module | None:
    """The module that defines what `path`, written in `module`, names (None: outside)."""
    if not path:
        return None
    cur, i = module, 0
    while i < len(path) and path[i] in ("crate", "super", "self"):
        if path[i] == "crate":
            cur = root
        elif path[i] == "super":
            if cur.parent is None:
                return None
            cur = cur.parent
        i += 1
    if i == 0 and path[0] not in cur.children and path[0] not in cur.aliases:
        if (id(cur), "*") in seen:
            return None
        seen = seen | {(id(cur), "*")}
        for glob, _ in cur.globs:
            target = resolve(cur, glob, root, seen)
            if target is not None and (path[0] in target.children or path[0] in target.aliases):
                return resolve(target, path, root, seen)
        return None  # another crate, std, or a local name
    while i < len(path):
        name = path[i]
        if name in cur.children:
            cur = cur.children[name]
        elif name in cur.aliases and (id(cur), name) not in seen:
            target = resolve(cur, cur.aliases[name][0], root, seen | {(id(cur), name)})
            if target is None:
                return None
            cur = target
        elif (id(cur), "*") not in seen:
            seen = seen | {(id(cur), "*")}
            for glob, _ in cur.globs:
                target = resolve(cur, glob, root, seen)
                if target is not None and (name in target.children or name in target.aliases):
                    return resolve(target, path[i:], root, seen)
            break
        else:
            break
        i += 1
    return cur


# ---------------------------------------------------------------------------------------
# Cycles.


def walk(module: Module):
    yield module
    for child in module.children.values():
        yield from walk(child)


def strongly_connected(nodes: list, edges: dict) -> list[list]:
    """Tarjan's strongly connected components with more than one node."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on: set = set()
    found: list[list] = []
    counter = 0

    def visit(v) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return found


def one_cycle(comp: list, edges: dict) -> list:
    """A shortest cycle through the component's first node."""
    start = comp[0]
    members = set(comp)
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, ())):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp + [start]


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def check_crate(crate_dir: Path, show_edges: bool) -> int:
    """Prints the crate's cycles; returns how many."""
    src = crate_dir / "src"
    roots = [p for p in (src / "lib.rs", src / "main.rs") if p.is_file()]
    roots += sorted((src / "bin").glob("*.rs")) if (src / "bin").is_dir() else []
    cycles = 0
    for root_file in roots:
        root = Module("crate", None, root_file)
        load(root, root_file, src if root_file.parent == src else root_file.with_suffix(""))
        # Every edge between two modules, with one line that makes it.
        deps: dict[tuple[Module, Module], tuple[Path, int]] = {}
        for module in walk(root):
            used = [e for name, e in module.reexports.items() if name in module.words]
            for path, line in module.refs + used:
                target = resolve(module, path, root)
                if target is not None and target is not module:
                    deps.setdefault((module, target), (module.file, line))
        if show_edges:
            for (a, b), (f, line) in sorted(deps.items(), key=lambda e: (e[0][0].path(), e[0][1].path())):
                print(f"{crate_dir.name}: {a.path()} -> {b.path()}  ({rel(f)}:{line})")
        for parent in walk(root):
            if not parent.children:
                continue

            def side(m: Module) -> str | None:
                # The child of `parent` that holds m, "(self)" for parent's body, None outside.
                while m is not None and m.parent is not parent:
                    if m is parent:
                        return "(self)"
                    m = m.parent
                return None if m is None else m.name

            edges: dict[str, set[str]] = {}
            witness: dict[tuple[str, str], tuple[Module, Module, Path, int]] = {}
            for (a, b), (f, line) in deps.items():
                sa, sb = side(a), side(b)
                if sa is None or sb is None or sa == sb:
                    continue
                edges.setdefault(sa, set()).add(sb)
                witness.setdefault((sa, sb), (a, b, f, line))
            nodes = ["(self)", *parent.children]
            for comp in strongly_connected(nodes, edges):
                cycles += 1
                where = parent.path()
                label = lambda s: where if s == "(self)" else (s if where == "crate" else f"{where}::{s}")
                cycle = one_cycle(comp, edges)
                print(f"{crate_dir.name} ({rel(root_file)}): cycle among {', '.join(label(s) for s in comp)}:")
                for a, b in zip(cycle, cycle[1:]):
                    ma, mb, f, line = witness[(a, b)]
                    print(f"    {label(a)} -> {label(b)}: {rel(f)}:{line} ({ma.path()} uses {mb.path()})")
    return cycles


def main(argv: list[str]) -> int:
    show_edges = "--edges" in argv
    args = [a for a in argv if a != "--edges"]
    if any(a.startswith("-") for a in args):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    crates = [Path(a) for a in args] or [ROOT / c for c in WORKSPACE_CRATES]
    for crate in crates:
        if not (crate / "src").is_dir():
            print(f"cycles: {crate} has no src/ folder", file=sys.stderr)
            return 2
    total = sum(check_crate(c, show_edges) for c in crates)
    if total:
        print(f"{total} module cycle(s)")
        return 1
    print(f"no module cycles in {', '.join(c.name for c in crates)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
