#!/usr/bin/env python3
"""Regenerates the seed corpus of the fuzz targets (tests/fuzz/corpus/).

Real dumps come from a small program run under the real shim (build/ must
hold libleakwatch.so and e2e/simple_alloc, i.e. a normal build); the rest
are derived from them: truncated and corrupted files, raw payloads, and
payload series for the report target. The corpus is kept small (< 200 KB):
seeds only need to show the fuzzer the structure.

Usage: make_seeds.py [BUILD_DIR]   (default: <repo>/build)
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
CORPUS = os.path.join(HERE, "corpus")
SEP = b"LWFZNEXT"  # fuzz_report's separator between payloads


def run_shim(prog_args, dump_dir, **vars_):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKWATCH_") and k != "LD_PRELOAD"}
    env["LD_PRELOAD"] = os.path.join(BUILD, "lib", "libleakwatch.so")
    env["LEAKWATCH_DIR"] = dump_dir
    for k, v in vars_.items():
        env["LEAKWATCH_" + k.upper()] = str(v)
    subprocess.run(prog_args, env=env, stdout=subprocess.DEVNULL, check=True, timeout=60)
    return sorted(os.path.join(dump_dir, f) for f in os.listdir(dump_dir) if f.endswith(".lwdump"))


def payload_of(dump):
    hdr = dump[:48]
    flags = struct.unpack_from("<I", hdr, 16)[0]
    stored = dump[48:]
    return zlib.decompress(stored) if flags & 1 else stored


def header_for(payload, compress):
    stored = zlib.compress(payload, 6) if compress else payload
    h = bytearray(48)
    h[0:8] = b"LKWTDUMP"
    struct.pack_into("<HHIIIQQ", h, 8, 1, 0, 48, 1 if compress else 0, zlib.crc32(stored), len(stored), len(payload))
    struct.pack_into("<I", h, 40, zlib.crc32(bytes(h[:40])))
    return bytes(h) + stored


def sections(payload):
    out, at = [], 0
    while at + 16 <= len(payload):
        tag, _, size = struct.unpack_from("<IIQ", payload, at)
        out.append((tag, payload[at + 16: at + 16 + size]))
        at += 16 + size
    return out


def hide_paths(payload):
    """The payload with every absolute path in its string table moved under
    /lwfuzz-missing/ and every build-id changed, so the report target's
    symbolizer finds no binary nor debug file (/usr/lib/debug/.build-id)
    and each run stays fast (the fuzzer can still mutate them back)."""
    out = b""
    for tag, body in sections(payload):
        if tag == struct.unpack("<I", b"STRS")[0]:
            n = struct.unpack_from("<I", body, 0)[0]
            at, strs = 4, []
            for _ in range(n):
                ln = struct.unpack_from("<I", body, at)[0]
                strs.append(body[at + 4: at + 4 + ln])
                at += 4 + ln
            strs = [b"/lwfuzz-missing" + s if s.startswith(b"/") else s for s in strs]
            strs = [b"deadbeef" + s[8:] if len(s) == 40 and all(c in b"0123456789abcdef" for c in s) else s
                    for s in strs]
            body = struct.pack("<I", n) + b"".join(struct.pack("<I", len(s)) + s for s in strs)
        out += struct.pack("<IIQ", tag, 0, len(body)) + body
    return out


def hide_profile_paths(text):
    """A heap profile with its mapped paths under /lwfuzz-missing/ (see hide_paths)."""
    return text.replace(b" /", b" /lwfuzz-missing/")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    prog = os.path.join(BUILD, "e2e", "simple_alloc")
    if not os.path.exists(prog):
        sys.exit("make_seeds: %s missing (build the project first)" % prog)
    # Seeds named "v1-*" are dumps of format 1.x (stacks as u32s), kept from
    # before 2.0 so the fuzzers still exercise the reader's 1.x path.
    for dp, _, files in os.walk(CORPUS):
        for f in files:
            if not f.startswith("v1-"):
                os.unlink(os.path.join(dp, f))
    tmp = tempfile.mkdtemp(prefix="lwseeds.")
    try:
        # A short run with a few periodic dumps, and one with shallow stacks.
        series = run_shim([prog, "400000"], os.path.join(tmp, "a"), sample_bytes=8192, interval=0.05)
        shallow = run_shim([prog, "3000"], os.path.join(tmp, "b"), sample_bytes=1, max_frames=3)
        dumps = [open(p, "rb").read() for p in series[:4] + shallow[:1]]

        # fuzz_dump: whole files, valid and damaged.
        for i, d in enumerate(dumps):
            write("fuzz_dump", "real-%d.lwdump" % i, d)
        d = dumps[0]
        write("fuzz_dump", "truncated-header", d[:30])
        write("fuzz_dump", "truncated-payload", d[: len(d) // 2])
        write("fuzz_dump", "trailing-bytes", d + b"\0" * 7)
        flipped = bytearray(d)
        flipped[len(d) - 10] ^= 0x40
        write("fuzz_dump", "payload-bitflip", bytes(flipped))
        newer = bytearray(d)
        struct.pack_into("<H", newer, 8, struct.unpack_from("<H", d, 8)[0] + 1)
        struct.pack_into("<I", newer, 40, zlib.crc32(bytes(newer[:40])))
        write("fuzz_dump", "major-next", bytes(newer))
        write("fuzz_dump", "stored", header_for(payload_of(d), False))
        write("fuzz_dump", "foreign", b"\x7fELF\x02\x01\x01" + b"\0" * 57)

        # fuzz_payload: raw section streams (odd length = compressed by the target).
        for i, d in enumerate(dumps[:2] + dumps[-1:]):
            write("fuzz_payload", "payload-%d" % i, payload_of(d))
        p = payload_of(dumps[0])
        write("fuzz_payload", "payload-odd", p + b"\0")  # a trailing byte: truncated section
        write("fuzz_payload", "payload-half", p[: len(p) // 2])

        # fuzz_report: one process's series, and two processes.
        pays = [hide_paths(payload_of(d)) for d in dumps]
        write("fuzz_report", "series", SEP.join(pays[:4]))
        write("fuzz_report", "two-processes", SEP.join([pays[0], pays[-1]]))
        write("fuzz_report", "single", pays[-1])

        # fuzz_config: byte 0 = which variables are set, then NUL-separated
        # TMPDIR, DIR, SAMPLE_BYTES, INTERVAL, MATCH, MAX_FRAMES, DISABLE,
        # MAX_DUMPS, a name to match, raw globs.
        def cfg(mask, *vals):
            return bytes([mask]) + b"\0".join(v.encode() for v in vals)

        write("fuzz_config", "defaults", cfg(0))
        write("fuzz_config", "all-valid", cfg(0xFF, "/tmp", "/var/tmp/lw", "64k", "0.5", "server*,redis-*", "32", "0",
                                              "100", "redis-server", "a*,b?c,[x-z]*"))
        write("fuzz_config", "all-bad", cfg(0xFF, "", "", "12q", "-1", " , ,", "999", "maybe", "3", "x", ","))
        write("fuzz_config", "suffixes", cfg(0x0C, "", "", "1GiB", "86400.000001"))
        write("fuzz_config", "long-dir", cfg(0x03, "/t" * 2040, "/d" * 1990))
        write("fuzz_config", "globs", cfg(0x10, "", "", "", "", "*[!a-c]*,\\*x,[[:alpha:]]?*", "", "", "",
                                          "postgres", "*a*a*a*a*b"))

        # fuzz_import_heap: real jemalloc and gperftools heap profiles of the
        # same program (when the allocators are installed), cut and damaged.
        libdir = "/usr/lib/x86_64-linux-gnu"
        profiles = []
        je = os.path.join(libdir, "libjemalloc.so.2")
        if os.path.exists(je):
            env = dict(os.environ, LD_PRELOAD=je,
                       MALLOC_CONF="prof:true,prof_final:true,lg_prof_sample:12,prof_prefix:%s/je" % tmp)
            subprocess.run([prog, "2000"], env=env, stdout=subprocess.DEVNULL, timeout=60)
        tc = os.path.join(libdir, "libtcmalloc.so.4")
        if os.path.exists(tc):
            env = dict(os.environ, LD_PRELOAD=tc, HEAPPROFILE=os.path.join(tmp, "gp"))
            subprocess.run([prog, "20000"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        for f in sorted(os.listdir(tmp)):
            if f.endswith(".heap"):
                profiles.append((f.split(".")[0], hide_profile_paths(open(os.path.join(tmp, f), "rb").read())))
        profiles.append(("tiny-je", b"heap_v2/524288\n  t*: 3: 300 [0: 0]\n@ 0x1000 0x2000\n  t*: 3: 300 [9: 900]\n"
                                    b"  t0: 3: 300 [9: 900]\nMAPPED_LIBRARIES:\n"
                                    b"00001000-00003000 r-xp 00000000 08:01 1 /lwfuzz-missing/bin/x\n"))
        profiles.append(("tiny-gp", b"heap profile:    3:   300 [   9:   900] @ heap_v2/524288\n"
                                    b"     3:   300 [   9:   900] @ 0x1000 0x2000\n\nMAPPED_LIBRARIES:\n"
                                    b"00001000-00003000 r-xp 00000000 08:01 1 /lwfuzz-missing/bin/x (deleted)\n"
                                    b"7fff0000-7fff1000 r-xp 00000000 00:00 0 [vdso]\n"))
        for name, text in profiles:
            write("fuzz_import_heap", name, text)
        name, text = profiles[0]
        write("fuzz_import_heap", name + "-cut", text[: len(text) // 3])
        write("fuzz_import_heap", name + "-no-maps", text.split(b"MAPPED_LIBRARIES:")[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(CORPUS) for f in fs)
    print("make_seeds: %d bytes in %s" % (total, CORPUS))


if __name__ == "__main__":
    main()
