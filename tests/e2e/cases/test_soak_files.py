"""Dump files never harm the host or leak its data (issue 7).

- Planted symlinks: a dump directory shared with others (mode 1777, like
  /tmp) where someone has put symlinks at the exact temp and final names
  the shim will use next. The shim must never write through them: the
  files they point to stay as they were, dangling targets are never
  created, and each dump is still written as a regular file of its own
  (or refused), mode 0600, and valid.
- Modes: dumps are 0600 and a directory the shim creates is 1777 as /tmp
  is (its parents 0755: workers that drop to another user write there
  too, test_drop_privileges), whatever the umask (0, 077).
- No heap contents: a program fills its heap with a marker string and
  leaks it through every allocation entry point; neither the dump files
  nor their decompressed payloads contain any piece of the marker.
- Never blocked by what a file names: a dump or an imported heap profile
  whose modules are a FIFO or /dev/zero is reported without hanging (the
  reporter opens the recorded paths to symbolize).

Program: programs/soak_marker.c.
"""
import os
import re
import shutil
import stat
import struct
import subprocess
import unittest
import zlib

import lwtest

MARKER = b"LWMARK:heap-secret-9f1c2e:"
# Any 8 consecutive bytes of the marker, wherever the repetition starts.
FRAGMENTS = {(MARKER * 2)[i:i + 8] for i in range(len(MARKER))}
NAME_RE = re.compile(r"^(soak_marker\.\d+\.[0-9a-f]{16})\.(\d{6})\.lwdump$")


def payload(path):
    with open(path, "rb") as f:
        data = f.read()
    flags = struct.unpack_from("<I", data, 16)[0]
    stored = data[48:]
    return data, (zlib.decompress(stored) if flags & 1 else stored)


def sections(pay):
    out, at = [], 0
    while at + 16 <= len(pay):
        tag, _, size = struct.unpack_from("<4sIQ", pay, at)
        out.append((tag, pay[at + 16:at + 16 + size]))
        at += 16 + size
    return out


def with_paths(dump_bytes, paths):
    """The dump with every absolute path in its string table replaced, in
    turn, by one of `paths`; a valid file (sizes and checksums redone)."""
    flags = struct.unpack_from("<I", dump_bytes, 16)[0]
    pay = zlib.decompress(dump_bytes[48:]) if flags & 1 else dump_bytes[48:]
    out, k = b"", 0
    for tag, body in sections(pay):
        if tag == b"STRS":
            n = struct.unpack_from("<I", body, 0)[0]
            at, strs = 4, []
            for _ in range(n):
                ln = struct.unpack_from("<I", body, at)[0]
                strs.append(body[at + 4:at + 4 + ln])
                at += 4 + ln
            for i, s in enumerate(strs):
                if s.startswith(b"/"):
                    strs[i] = paths[k % len(paths)].encode()
                    k += 1
            body = struct.pack("<I", n) + b"".join(struct.pack("<I", len(s)) + s for s in strs)
        out += struct.pack("<4sIQ", tag, 0, len(body)) + body
    stored = zlib.compress(out)
    h = bytearray(48)
    h[0:8] = b"LKWTDUMP"
    struct.pack_into("<HHIIIQQ", h, 8, 1, 0, 48, 1, zlib.crc32(stored), len(stored), len(out))
    struct.pack_into("<I", h, 40, zlib.crc32(bytes(h[:40])))
    return bytes(h) + stored


class DumpFiles(lwtest.ShimTestCase):
    def marker_proc(self, dump_dir, **shim_vars):
        b = self.start([lwtest.program("soak_marker")], dump_dir=dump_dir, **shim_vars)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 60, "soak_marker to start")
        return b

    def regular_dumps(self, d):
        return sorted(os.path.join(d, f) for f in os.listdir(d)
                      if NAME_RE.match(f) and not os.path.islink(os.path.join(d, f)))

    def test_planted_symlinks_are_never_followed(self):
        shared = os.path.join(self.tmp, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        victims = os.path.join(self.tmp, "victims")
        os.mkdir(victims)
        b = self.marker_proc(shared, interval=0.25, sample_bytes=4096)
        seen = b.wait_ticking(lambda: self.regular_dumps(shared), 60, "the first dump")
        prefix = NAME_RE.match(os.path.basename(seen[0])).group(1)
        # The writer keeps going while we plant: start a few names past the newest dump, and
        # a name the writer took first (a fast machine) is simply not planted.
        newest = max(int(NAME_RE.match(os.path.basename(p)).group(2)) for p in self.regular_dumps(shared))
        first_seq, end_seq = newest + 3, newest + 11
        planted = {}  # link path -> (target, original content or None for dangling)
        for seq in range(first_seq, end_seq):
            for kind, name in (("tmp", ".%s.%06d.lwdump.tmp" % (prefix, seq)), ("final", "%s.%06d.lwdump" % (prefix, seq))):
                target = os.path.join(victims, "%s-%d" % (kind, seq))
                content = None
                if seq % 2 == 0:  # an existing file to overwrite; odd: a dangling link to create through
                    content = ("victim %s %d\n" % (kind, seq)).encode()
                    with open(target, "wb") as f:
                        f.write(content)
                    os.chmod(target, 0o644)
                link = os.path.join(shared, name)
                try:
                    os.symlink(target, link)
                except FileExistsError:
                    if content is not None:
                        os.unlink(target)
                    continue
                planted[link] = (target, content)
        self.assertTrue(any(not l.endswith(".tmp") for l in planted), "the writer outran every planted name")
        b.wait_ticking(lambda: any(int(NAME_RE.match(os.path.basename(p)).group(2)) >= end_seq
                                   for p in self.regular_dumps(shared)),
                       60, "dumps past the planted names")
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        self.assertTrue(b.stdout().startswith(b"ready\nbye "), b.stdout())
        self.assertEqual(b.stderr(), b"", "the shim should write its dumps silently")

        for link, (target, content) in planted.items():
            if content is None:
                self.assertFalse(os.path.lexists(target), "the shim created %s through a planted link" % target)
            else:
                with open(target, "rb") as f:
                    self.assertEqual(f.read(), content, "the shim wrote through %s into %s" % (link, target))
            if link.endswith(".tmp"):
                # Our temp file was removed, or the planted link is still there untouched.
                if os.path.lexists(link):
                    self.assertTrue(os.path.islink(link) and os.readlink(link) == target, link)
                continue
            if os.path.islink(link):  # refused: the link is left as it was
                self.assertEqual(os.readlink(link), target)
                continue
            st = os.lstat(link)
            self.assertTrue(stat.S_ISREG(st.st_mode), link)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, link)
        written = [l for l in planted if not l.endswith(".tmp") and not os.path.islink(l)]
        self.assertGreaterEqual(len(written), 1, "no dump was written at any planted name")
        for p in self.regular_dumps(shared):
            self.assertEqual(stat.S_IMODE(os.lstat(p).st_mode), 0o600, p)
        self.assertFinalDumpLast(self.assertDumpsValid(self.regular_dumps(shared), at_least=end_seq))
        leftovers = [f for f in os.listdir(shared) if f.endswith(".tmp") and not os.path.islink(os.path.join(shared, f))]
        self.assertEqual(leftovers, [], "temp files left behind")

    def test_modes_with_umask_zero(self):
        self.check_modes(0)

    def test_modes_with_umask_077(self):
        self.check_modes(0o077)

    def check_modes(self, umask):
        d = os.path.join(self.tmp, "new", "dumps")  # created by the shim
        old = os.umask(umask)
        try:
            b = self.marker_proc(d, interval=0.2)
        finally:
            os.umask(old)
        b.wait_ticking(lambda: len(lwtest.list_dumps(d)) >= 2, 60, "two periodic dumps")
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        parent = os.path.join(self.tmp, "new")
        self.assertEqual(stat.S_IMODE(os.stat(parent).st_mode), 0o755, parent)
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o1777, d)
        # Two periodic dumps and the final one were written; retention may
        # thin a dump that lands in the same interval bucket as another
        # (a high-water dump, say), so at least two stay on disk.
        paths = self.assertDumpsValid(lwtest.list_dumps(d), at_least=2)
        self.assertGreaterEqual(max(lwtest.dump_seq(p) for p in paths), 2, paths)
        for p in paths:
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, p)

    @unittest.skipUnless(shutil.which("strace"), "strace not installed")
    def test_open_flags_seen_by_strace(self):
        """The writer's own open of each temp file, as the kernel sees it."""
        d = os.path.join(self.tmp, "traced")
        log = os.path.join(self.tmp, "strace.log")
        env = lwtest.shim_env(d, interval=0.1, match="soak_marker")  # not strace itself
        p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", log,
                            lwtest.program("soak_marker")], env=env, input=b"more\n", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(log) as f:
            opens = [l for l in f if ".lwdump.tmp" in l]
        self.assertGreaterEqual(len(opens), 1, "no open of a temp dump file traced")
        for line in opens:
            for flag in ("O_CREAT", "O_EXCL", "O_NOFOLLOW", "O_CLOEXEC", ", 0600)"):
                self.assertIn(flag, line, line)
            self.assertNotIn("O_TRUNC", line)
        self.assertDumpsValid(lwtest.list_dumps(d), at_least=1)

    def check_no_marker(self, d):
        paths = self.assertDumpsValid(lwtest.list_dumps(d), at_least=2)
        for p in paths:
            raw, pay = payload(p)
            for blob, what in ((raw, "file"), (pay, "decompressed payload")):
                hits = [f for f in FRAGMENTS if f in blob]
                self.assertEqual(hits, [], "heap contents in the %s of %s" % (what, p))
        return paths

    def run_marker(self, d, rounds, **shim_vars):
        b = self.marker_proc(d, interval=0.1, **shim_vars)
        for i in range(rounds):
            b.send(b"more\n")
            lwtest.wait_until(lambda: b.stdout().count(b"more ok\n") >= i + 1, 60, "round %d" % (i + 1))
        b.wait_ticking(lambda: len(lwtest.list_dumps(d)) >= 2, 60, "periodic dumps")
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())

    def test_no_heap_contents_every_allocation_sampled(self):
        d = os.path.join(self.tmp, "dense")
        self.run_marker(d, 3, sample_bytes=1)
        paths = self.check_no_marker(d)
        # The leaks were recorded (so the marker blocks were in the dumps' tables).
        info = lwtest.inspect_info(paths[-1])
        self.assertIn("soak_marker", info["exe"])
        rep = lwtest.report_json(d)
        self.assertTrue(lwtest.sites_with_function(rep, "fill_round"), "fill_round's leaks not reported")

    def test_no_heap_contents_sparse_sampling(self):
        d = os.path.join(self.tmp, "sparse")
        self.run_marker(d, 3, sample_bytes=65536)
        self.check_no_marker(d)

    def report_must_finish(self, d, what):
        try:
            r = subprocess.run([lwtest.CLI, "report", d, "--format", "json"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        except subprocess.TimeoutExpired:
            self.fail("leakwatch report blocked for 60 s on %s" % what)
        self.assertIn(r.returncode, (0, 1), r.stderr)

    def test_report_never_blocks_on_special_files(self):
        fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(fifo)
        # A dump whose modules are a FIFO and /dev/zero.
        src = os.path.join(self.tmp, "src")
        self.run_marker(src, 0, sample_bytes=4096)
        d = os.path.join(self.tmp, "dumps-fifo")
        os.mkdir(d)
        with open(lwtest.list_dumps(src)[-1], "rb") as f:
            data = with_paths(f.read(), [fifo, "/dev/zero"])
        with open(os.path.join(d, "x.1.0000000000000001.000000.lwdump"), "wb") as f:
            f.write(data)
        self.assertEqual(lwtest.inspect(os.path.join(d, "x.1.0000000000000001.000000.lwdump")).returncode, 0)
        self.report_must_finish(d, "a dump whose module is a FIFO")
        # A jemalloc heap profile whose MAPPED_LIBRARIES name a FIFO and /dev/zero.
        h = os.path.join(self.tmp, "heap-fifo")
        os.mkdir(h)
        with open(os.path.join(h, "prof.4242.0.f0.heap"), "w") as f:
            f.write("heap_v2/524288\n  t*: 10: 10240 [0: 0]\n@ 0x400500 0x7f0000001000\n"
                    "  t*: 10: 10240 [10: 10240]\nMAPPED_LIBRARIES:\n"
                    "00400000-00401000 r-xp 00000000 08:01 123 %s\n"
                    "7f0000000000-7f0000002000 r-xp 00000000 00:05 7 /dev/zero\n" % fifo)
        self.report_must_finish(h, "a heap profile whose MAPPED_LIBRARIES name a FIFO")


if __name__ == "__main__":
    unittest.main()
