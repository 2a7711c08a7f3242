"""The shim never changes how a host process behaves, whatever it does:
each class of host behaviour that used to hang, deadlock, bloat or
misbehave under the shim, run under the real preload at every-allocation
and default sampling, built like production code (-O2, no frame
pointers). A hang is reported with every thread's stack (gdb), then
killed (lwtest.communicate_watched)."""
import os
import signal
import unittest

import lwtest

SAMPLINGS = (1, 524288)


class HostSafety(lwtest.ShimTestCase):
    def same_as_plain(self, cmd, name, timeout=120, **kw):
        """assertSameAsPlain at each sampling rate; returns {rate: Run}."""
        runs = {}
        for s in SAMPLINGS:
            with self.subTest(program=name, sample_bytes=s):
                d = os.path.join(self.tmp, "%s-%d" % (name, s))
                runs[s] = self.assertSameAsPlain(cmd, dump_dir=d, timeout=timeout, sample_bytes=s, interval=0.05, **kw)
        return runs

    def test_last_thread_ends_with_pthread_exit(self):
        # main() calls pthread_exit and its worker returns; and a child forked
        # from a thread whose only thread calls pthread_exit (CPython's
        # test_threading.test_3_join_in_forked_from_thread). Both must exit
        # 0 with atexit handlers run and stdio flushed, and leave a final dump.
        for mode in ("main", "forked"):
            runs = self.same_as_plain([lwtest.program("pthread_exit_main"), mode], "pthread-exit-" + mode, timeout=60)
            for r in runs.values():
                self.assertIn(b"atexit ran\n", r.stdout)
                by_proc = self.assertFinalDumpLast(self.assertDumpsValid(r))
                self.assertEqual(len(by_proc), 2 if mode == "forked" else 1)

    def test_signal_reaches_process_after_main_pthread_exit(self):
        # main() has ended (pthread_exit); the worker waits in pause().
        # SIGTERM must end the process exactly as without the shim.
        for preload in (False, True):
            with self.subTest(preload=preload):
                b = self.start([lwtest.program("pthread_exit_main"), "signal"], preload=preload,
                               name="sig-%d" % preload)
                lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "the worker to be ready")
                os.kill(b.pid, signal.SIGTERM)
                self.assertEqual(b.wait_exit(timeout=30), -signal.SIGTERM)
                self.assertEqual(b.stderr(), b"")

    def test_fork_while_threads_use_stdio(self):
        # Forking threads, getline (realloc under a FILE lock) and fflush(NULL)
        # (stdio's list lock) at once: no lock-order inversion with glibc's fork.
        self.same_as_plain([lwtest.program("fork_stdio"), "150", "20000"], "fork-stdio")

    def test_fork_from_signal_handler(self):
        # One thread of the program's own; its SIGVTALRM handler forks
        # wherever it lands (inside the shim, libc's allocator, the unwinder).
        for r in self.same_as_plain([lwtest.program("fork_signal"), "100000"], "fork-signal").values():
            self.assertIn(b"forked yes", r.stdout)

    def test_realloc_shrink_gives_memory_back(self):
        # 32 blocks of 8 MiB shrunk to 100 bytes: the memory goes back to the
        # allocator, and each shrunk block counts for 100 bytes (the weight
        # it was sampled with), not for its old size or 100 / p(100).
        def parse(out):
            fields = out.decode().split()
            return int(fields[1]), int(fields[3])

        plain_usable, plain_rss_kb = parse(lwtest.run_plain([lwtest.program("realloc_shrink")], input=b"").stdout)
        for s in (1, 4096, 524288):
            with self.subTest(sample_bytes=s):
                d = os.path.join(self.tmp, "shrink-%d" % s)
                r = lwtest.run_shim([lwtest.program("realloc_shrink")], d, input=b"", timeout=60, sample_bytes=s)
                self.assertEqual(r.returncode, 0, r.stderr)
                usable, rss_kb = parse(r.stdout)
                self.assertEqual(usable, plain_usable)
                # Without the fix: 256 MiB more. The shim's own tables are a few MiB.
                self.assertLess(rss_kb, plain_rss_kb + 24 * 1024, "RSS %d KiB vs %d without the shim" % (rss_kb, plain_rss_kb))
                rep = lwtest.report_json(d)
                sites = lwtest.sites_with_function(rep, "shrink_site")
                self.assertEqual(len(sites), 1, [s["frames"][:1] for s in rep["sites"]])
                # Every 8 MiB block is sampled with p = 1 - exp(-8 MiB / S) ~ 1.
                self.assertAlmostEqual(sites[0]["live_bytes"], 3200, delta=1)

    def test_overflowing_sizes_fail_as_glibc_does(self):
        self.same_as_plain([lwtest.program("overflow")], "overflow")

    def test_rtld_deepbind_library_is_tracked(self):
        # libdeep.so, opened by bare name through its loader's RUNPATH (as
        # the loader, not the shim, is dlopen's caller), with and without
        # RTLD_DEEPBIND: it frees 200 blocks the host allocated (no phantom
        # live bytes may stay) and keeps 100 blocks of 5000 bytes of its own.
        sub = os.path.join(self.tmp, "sub")
        os.makedirs(sub)
        lwtest.build_shared(lwtest.program_source("libs/deep_lib.c"), os.path.join(sub, "libdeep.so"))
        loader = lwtest.build_shared(lwtest.program_source("libs/deep_loader.c"), os.path.join(self.tmp, "libloader.so"),
                                     cflags=["-Wl,-rpath,$ORIGIN/sub"])
        for mode in ("plain", "deepbind"):
            for s in (1, 4096):
                with self.subTest(mode=mode, sample_bytes=s):
                    d = os.path.join(self.tmp, "deep-%s-%d" % (mode, s))
                    r = self.assertSameAsPlain([lwtest.program("deepbind_host"), loader, mode], dump_dir=d, input=b"x",
                                               sample_bytes=s)
                    rep = lwtest.report_json(d)
                    host = lwtest.sites_with_function(rep, "host_alloc")
                    self.assertTrue(host, "the host's allocations were sampled")
                    self.assertEqual(sum(x["live_bytes"] for x in host), 0, "phantom live blocks freed by the library")
                    kept = lwtest.sites_with_function(rep, "deep_keep_alloc")
                    self.assertEqual(len(kept), 1, "the library's allocations are not seen")
                    if s == 1:
                        self.assertEqual(kept[0]["live_bytes"], 500000)
                    else:
                        self.assertAlmostEqual(kept[0]["live_bytes"], 500000, delta=150000)

    def test_exit_with_a_thread_inside_dl_iterate_phdr(self):
        # A thread blocks inside a dl_iterate_phdr callback (the loader's lock
        # held) while main allocates (sampled: the unwinder must not need that
        # lock) and exits: as fast as without the shim, with a final dump
        # whose stacks are whole.
        for s, r in self.same_as_plain([lwtest.program("phdr_exit")], "phdr-exit", timeout=30).items():
            self.assertFinalDumpLast(self.assertDumpsValid(r))
            rep = lwtest.report_json(r.dump_dir)
            sites = lwtest.sites_with_function(rep, "main_alloc")
            self.assertTrue(sites, "sampling %d" % s)
            self.assertIn("main", [f["function"] for f in sites[0]["frames"]])


if __name__ == "__main__":
    unittest.main()
