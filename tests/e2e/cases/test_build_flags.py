"""The e2e programs are built as production code is (-O2, no frame
pointers), so every stack the e2e suite checks was unwound from DWARF CFI,
the path distribution binaries need. Read from each binary's own debug
info (GCC records its command line in DW_AT_producer), not from the build
files, so a flag added anywhere (a toolchain file, CFLAGS) is caught."""
import os
import re
import subprocess
import unittest

import lwtest


def producers(path):
    out = subprocess.run(["readelf", "--debug-dump=info", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, timeout=60).stdout
    return re.findall(r"DW_AT_producer\s*:.*?: (GNU C.*)", out)


class BuildFlags(unittest.TestCase):
    def test_programs_are_built_like_production(self):
        checked = 0
        for name in sorted(os.listdir(lwtest.PROGRAMS)):
            path = os.path.join(lwtest.PROGRAMS, name)
            if not os.path.isfile(path) or not os.access(path, os.X_OK):
                continue
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            own = producers(path)
            self.assertTrue(own, "%s: no DWARF producer (built without -g?)" % name)
            for p in own:
                self.assertIn("-O2", p, "%s: %s" % (name, p))
                self.assertIn("-fomit-frame-pointer", p, "%s: %s" % (name, p))
                self.assertNotIn("-fno-omit-frame-pointer", p, "%s: %s" % (name, p))
            checked += 1
        self.assertGreater(checked, 20, "programs found in %s" % lwtest.PROGRAMS)


if __name__ == "__main__":
    unittest.main()
