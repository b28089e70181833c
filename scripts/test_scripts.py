#!/usr/bin/env python3
"""Tests of scripts/cycles.py and scripts/docs.py on small made-up crates and pages:
what each must find, and what not.

Usage: python3 scripts/test_scripts.py   (Python 3.11, standard library only; < 1 s)
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cycles  # noqa: E402
import docs  # noqa: E402


def run(files: dict[str, str]) -> tuple[int, str]:
    """Cycles found in a crate made of `files` (paths under src/), and what was printed."""
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="cycles-test-") as tmp:
        root = Path(tmp)
        for path, text in files.items():
            f = root / "src" / path
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text, encoding="utf-8")
        with contextlib.redirect_stdout(out):
            found = cycles.check_crate(root, show_edges=False)
    return found, out.getvalue()


class Cycles(unittest.TestCase):
    def test_two_files_that_use_each_other(self):
        found, out = run({
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            "b.rs": "pub struct B;\nfn f() { let _ = crate::a::A; }\n",
        })
        self.assertEqual(found, 1, out)
        self.assertIn("cycle among a, b", out)
        self.assertIn("b.rs:2", out)  # the line that makes the edge

    def test_a_layered_crate_has_none(self):
        found, out = run({
            "lib.rs": "pub mod a;\npub mod b;\npub use a::A;\n",
            "a.rs": "pub struct A;\n",
            "b.rs": "use crate::A;\npub struct B(A);\n",
        })
        self.assertEqual(found, 0, out)

    def test_a_child_that_uses_its_parents_body(self):
        found, out = run({
            "lib.rs": "pub mod node;\n",
            "node/mod.rs": "pub mod process;\npub fn helper() {}\npub fn main() { process::serve(); }\n",
            "node/process.rs": "pub fn serve() { super::helper(); }\n",
        })
        self.assertEqual(found, 1, out)
        self.assertIn("node, node::process", out)

    def test_folders_that_use_each_other_through_different_files(self):
        found, out = run({
            "lib.rs": "pub mod run;\npub mod report;\n",
            "run/mod.rs": "pub mod store;\n",
            "run/store.rs": "use crate::report::html::page;\n",
            "report/mod.rs": "pub mod html;\npub mod scan;\n",
            "report/html.rs": "pub fn page() {}\n",
            "report/scan.rs": "fn f() { crate::run::store::x(); }\n",
        })
        self.assertEqual(found, 1, out)
        self.assertIn("cycle among report, run", out)

    def test_a_re_export_is_followed_to_the_defining_module(self):
        # b names `crate::Thing`, which lib.rs re-exports from a: b depends on a, not on
        # the crate root, so the root's own use of b is no cycle.
        found, out = run({
            "lib.rs": "pub mod a;\npub mod b;\npub use a::Thing;\nfn f() { b::g(); }\n",
            "a.rs": "pub struct Thing;\n",
            "b.rs": "pub fn g() { let _ = crate::Thing; }\n",
        })
        self.assertEqual(found, 0, out)

    def test_test_code_comments_and_strings_are_left_out(self):
        found, out = run({
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b::B;\n",
            "b.rs": (
                "pub struct B;\n"
                "// crate::a::x\n"
                "const S: &str = \"crate::a::x\";\n"
                "const C: char = '{';\n"
                "#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n"
            ),
        })
        self.assertEqual(found, 0, out)

    def test_the_workspace_has_none(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cycles.main([])
        self.assertEqual(code, 0, out.getvalue())


class Links(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="docs-test-")
        self.root = Path(self.tmp.name)
        self.saved, docs.ROOT = docs.ROOT, self.root

    def tearDown(self):
        docs.ROOT = self.saved
        self.tmp.cleanup()

    def page(self, path: str, text: str) -> Path:
        f = self.root / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text, encoding="utf-8")
        return f

    def test_every_broken_link_is_named_and_good_ones_pass(self):
        a = self.page("a.md", (
            "# Top\n"
            "[ok](sub/b.md#the-part), [self](#top), [web](https://example.com/x.md)\n"
            "[gone](nope.md) and [no anchor](sub/b.md#none) and `sub/gone.md`\n"
            "    [code](not-checked.md)\n"
        ))
        b = self.page("sub/b.md", "## The part\n[back](../a.md)\n")
        problems = docs.check_links([a, b])
        self.assertEqual(len(problems), 3, problems)
        self.assertTrue(all(p.startswith("a.md:3: ") for p in problems), problems)

    def test_a_pointer_at_the_shared_contract_outside_docs(self):
        a = self.page("README.md", "See `shared/spec/sut.md`.\n")
        d = self.page("docs/sut.md", "From `shared/spec/sut.md`.\n")
        problems = docs.check_links([a, d])
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("README.md:1", problems[0])

    def test_the_contract_pages_must_keep_every_promise(self):
        spec = self.root / "spec"
        self.page("spec/sut.md", "# T\n\nA promise\nover two lines.\n\n| a | b |\n")
        self.page("spec/history.md", "# H\n\nKept.\n")
        self.page("docs/sut.md", "# T\n\nA promise over\ntwo lines.\n\n| a | c |\n\nMore.\n")
        self.page("docs/history.md", "# H\n\nKept.\n\n## Extensions\n")
        problems = docs.check_spec(spec)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("| a | b |", problems[0])


if __name__ == "__main__":
    unittest.main(verbosity=1)
