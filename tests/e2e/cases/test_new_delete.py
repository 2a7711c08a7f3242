"""operator new/delete in every form (arrays, nothrow, aligned types,
std::align_val_t, sized delete, failing new with the new-handler): the
program runs as without the shim, and the report names each allocating
function with its exact leaked bytes when every allocation is sampled."""
import unittest

import lwtest

# new_delete.cpp's leaks: function -> bytes still live at exit.
LEAKS = {
    "leak_new_scalar": 20 * 16,
    "leak_new_array": sum(1000 + i for i in range(10)),
    "leak_new_aligned": 10 * 64,
    "leak_new_aligned_array": 10 * 4 * 64,
    "leak_new_align_val": 10 * 500,
    "leak_new_nothrow": 10 * 700,
}


class NewDelete(lwtest.ShimTestCase):
    def test_every_allocation_sampled(self):
        r = self.assertSameAsPlain([lwtest.program("new_delete")], sample_bytes=1)
        self.assertIn(b"failures: 3 thrown, new-handler called 1 times", r.stdout)
        self.assertFinalDumpLast(self.assertDumpsValid(r))
        rep = lwtest.report_json(self.dir)
        for fn, nbytes in LEAKS.items():
            sites = [s for s in rep["sites"] if s["frames"] and s["frames"][0]["function"] == fn]
            self.assertEqual(len(sites), 1, "%s: %d sites with it as the allocating frame" % (fn, len(sites)))
            self.assertEqual(sites[0]["live_bytes"], nbytes, fn)
            self.assertEqual(sites[0]["frames"][1]["function"], "main", fn)

    def test_dense_sparse_and_default_sampling(self):
        for s in (4096, 65536, 524288):
            with self.subTest(sample_bytes=s):
                d = "%s/d%d" % (self.tmp, s)
                r = self.assertSameAsPlain([lwtest.program("new_delete")], dump_dir=d, sample_bytes=s)
                self.assertDumpsValid(r)


if __name__ == "__main__":
    unittest.main()
