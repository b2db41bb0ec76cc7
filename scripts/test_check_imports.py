#!/usr/bin/env python3
"""Tests of check-imports.py on small made-up crates: a circle is found with its arrows, a folder's
face re-exporting its children is not a circle, a long file needs its reason. Run by .ci/run."""

import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-imports.py")


def crate(files):
    root = tempfile.mkdtemp()
    for rel, text in files.items():
        path = os.path.join(root, "src", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return root


def check(root, *extra):
    done = subprocess.run(
        [sys.executable, SCRIPT, root, *extra], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr


class CheckImports(unittest.TestCase):
    def test_an_import_the_layers_forbid_is_named_and_an_unlisted_module_too(self):
        root = crate(
            {
                "lib.rs": "pub mod shared;\npub mod stage_a;\npub mod stage_b;\npub mod extra;\n",
                "shared.rs": "pub struct S;\n",
                "stage_a.rs": "use crate::shared::S;\nuse crate::stage_b::B;\npub struct A;\n",
                "stage_b.rs": "use crate::shared::S;\npub struct B;\n",
                "extra.rs": "pub struct E;\n",
            }
        )
        table = os.path.join(root, "layers.json")
        with open(table, "w", encoding="utf-8") as fh:
            fh.write('{"shared": [], "stage_a": ["shared"], "stage_b": ["shared"]}')
        code, out = check(root, "--layers", table)
        self.assertEqual(code, 1, out)
        self.assertIn("src/stage_a.rs:2 -> src/stage_b.rs", out)
        self.assertIn("`stage_a` may not import `stage_b`", out)
        self.assertIn("src/extra: a top-level module the layering table", out)
        self.assertNotIn("stage_b.rs:1", out)
        with open(table, "w", encoding="utf-8") as fh:
            fh.write('{"shared": [], "stage_a": ["shared", "stage_b"], "stage_b": ["shared"], '
                     '"extra": []}')
        code, out = check(root, "--layers", table)
        self.assertEqual(code, 0, out)

    def test_a_circle_is_reported_with_file_and_line(self):
        root = crate(
            {
                "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
                "a.rs": "use crate::b::B;\npub struct A;\n",
                "b.rs": "pub struct B;\nfn f() { let _ = crate::c::C; }\n",
                "c.rs": "// use crate::a::A; in a comment does not count\npub struct C;\n"
                "fn g() -> super::a::A { todo!() }\n",
            }
        )
        code, out = check(root)
        self.assertEqual(code, 1, out)
        self.assertIn("import circle of 3 files", out)
        self.assertIn("src/a.rs:1 -> src/b.rs", out)
        self.assertIn("src/b.rs:2 -> src/c.rs", out)
        self.assertIn("src/c.rs:3 -> src/a.rs", out)

    def test_a_face_listing_its_children_and_children_using_it_is_no_circle(self):
        root = crate(
            {
                "lib.rs": "pub mod api;\n",
                "api/mod.rs": "mod http;\npub use http::Client;\npub struct Error;\n"
                "pub fn run() { http::go(); }\n",
                "api/http.rs": "use super::Error;\npub struct Client;\npub fn go() {}\n",
            }
        )
        code, out = check(root)
        self.assertEqual(code, 0, out)

    def test_test_modules_do_not_count(self):
        root = crate(
            {
                "lib.rs": "pub mod a;\npub mod b;\n",
                "a.rs": "use crate::b::B;\n",
                "b.rs": "pub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
            }
        )
        code, out = check(root)
        self.assertEqual(code, 0, out)

    def test_a_long_file_needs_its_reason_at_the_top(self):
        body = "fn f() {}\n" * 601
        code, out = check(crate({"lib.rs": "pub mod big;\n", "big.rs": body}))
        self.assertEqual(code, 1, out)
        self.assertIn("src/big.rs: 601 lines", out)
        reason = "//! Over 600 lines because the table and its parser belong together.\n"
        code, out = check(crate({"lib.rs": "pub mod big;\n", "big.rs": reason + body}))
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
