"""Self-test of tools/check_includes.py on small synthetic trees: a clean
tree passes, a backwards include fails naming its line, and the allowlist
both admits a listed violation and rejects a stale or unexplained entry."""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "check_includes.py")

# A tree that follows the layering, with one file per kind of allowed include.
CLEAN = {
    "shim/runtime/log.h": "#pragma once\n#include <cstdint>\n",
    "shim/runtime/config.h": '#include "shim/runtime/log.h"\n#include "shim/dump/config_table.def"\n',
    "shim/sample/sampler.h": '#include "shim/runtime/log.h"\n',
    "shim/record/recorder.cpp": '#include "shim/sample/sampler.h"\n#include "absl/strings/str_cat.h"\n',
    "shim/hook/table.def": "X(malloc)\n",
    "shim/hook/hooks.cpp": '#include "table.def"\n#include "shim/record/recorder.cpp"\n',
    "shim/dump/format.h": "#pragma once\n#include <cstdint>\n",
    "shim/dump/config_table.def": "LW_VAR(a)\n",
    "shim/main/lifecycle.cpp": '#include "shim/hook/table.def"\n#include "shim/dump/format.h"\n',
    "reporter/model.h": "#pragma once\n",
    "reporter/load/dump_reader.cpp": '#include "shim/dump/format.h"\n#include "reporter/model.h"\n',
    "reporter/render/text.cpp": '#include "reporter/load/dump_reader.cpp"\n#include "render/profile.pb.h"\n',
    "reporter/cli/main.cpp": '#include "reporter/render/text.cpp"\n#include "shim/dump/config_table.def"\n',
}


def run(files, exceptions=None):
    with tempfile.TemporaryDirectory() as root:
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        if exceptions is not None:
            os.makedirs(os.path.join(root, "tools"))
            with open(os.path.join(root, "tools", "include_exceptions.txt"), "w") as f:
                f.write(exceptions)
        p = subprocess.run([sys.executable, SCRIPT, "--root", root], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout.splitlines()


class CheckIncludes(unittest.TestCase):
    def test_clean_tree_passes(self):
        self.assertEqual(run(CLEAN), (0, []))

    def test_backwards_include_fails_with_its_line(self):
        tree = dict(CLEAN)
        tree["shim/runtime/log.h"] = '#pragma once\n\n#include "shim/record/recorder.cpp"\n'
        code, out = run(tree)
        self.assertEqual(code, 1)
        self.assertEqual(out, ["shim/runtime/log.h:3: includes shim/record/recorder.cpp against the flow "
                               "(layer shim/runtime may not include layer shim/record)"])

    def test_siblings_and_domains(self):
        tree = dict(CLEAN)
        tree["reporter/load/x.cpp"] = '#include "shim/runtime/log.h"\n'  # only the contract crosses
        tree["shim/dump/x.cpp"] = '#include "shim/hook/table.def"\n'  # dump and hook are siblings
        tree["reporter/merge/x.cpp"] = '#include "reporter/cli/main.cpp"\n'  # data flows the other way
        tree["shim/dump/format.h"] = '#include "shim/runtime/log.h"\n'  # the contract stands alone
        code, out = run(tree)
        self.assertEqual(code, 1)
        self.assertEqual(sorted(out), sorted([
            "reporter/load/x.cpp:1: includes shim/runtime/log.h against the flow "
            "(layer reporter/load may not include layer shim/runtime)",
            "shim/dump/x.cpp:1: includes shim/hook/table.def against the flow "
            "(layer shim/dump may not include layer shim/hook)",
            "reporter/merge/x.cpp:1: includes reporter/cli/main.cpp against the flow "
            "(layer reporter/merge may not include layer reporter/cli)",
            "shim/dump/format.h:1: includes shim/runtime/log.h against the flow "
            "(layer contract may not include layer shim/runtime)",
        ]))

    def test_unplaced_directory_fails(self):
        tree = dict(CLEAN)
        tree["reporter/extra/x.cpp"] = "\n"
        self.assertEqual(run(tree), (1, ["reporter/extra/x.cpp:1: is in no layer "
                                         "(place its directory in tools/check_includes.py)"]))

    def test_allowlist_admits_listed_violation(self):
        tree = dict(CLEAN)
        tree["shim/record/recorder.cpp"] = '#include "shim/hook/table.def"\n'
        allow = "# why\nshim/record/recorder.cpp -> shim/hook/table.def\n"
        self.assertEqual(run(tree, allow), (0, []))

    def test_stale_or_unexplained_exception_fails(self):
        allow = "# header\n\nshim/a.cpp -> shim/b.h\n\n# fixed since\nshim/record/recorder.cpp -> shim/hook/table.def\n"
        code, out = run(CLEAN, allow)
        self.assertEqual(code, 1)
        self.assertEqual(out, [
            "tools/include_exceptions.txt:3: exception without a '#' reason line above it: shim/a.cpp -> shim/b.h",
            "tools/include_exceptions.txt:6: stale exception: shim/record/recorder.cpp -> shim/hook/table.def "
            "no longer matches an include against the flow; remove it",
        ])


if __name__ == "__main__":
    unittest.main()
