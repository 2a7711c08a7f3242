"""A Python service that keeps small dicts and strings at a steady rate
(CPython's default allocator, pymalloc, takes them from arenas it maps
itself), for SECONDS. Prints "rss T BYTES" at the start and at the end.
Usage: python3 py_heap_leak.py OBJECTS_PER_SECOND SECONDS"""
import sys
import time

rate, seconds = float(sys.argv[1]), float(sys.argv[2])


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


t0 = time.monotonic()
print("rss %.3f %d" % (0.0, rss()), flush=True)
kept, made = [], 0
while True:
    t = time.monotonic() - t0
    if t >= seconds:
        break
    target = int(rate * t)
    while made < target:
        kept.append({"id": made, "name": "session-%d" % made, "tags": ["a", "b", str(made)]})
        made += 1
    time.sleep(0.002)
print("rss %.3f %d" % (time.monotonic() - t0, rss()), flush=True)
print("kept %d" % len(kept))
