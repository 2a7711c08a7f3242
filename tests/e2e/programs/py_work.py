"""Real CPython work for the runtime e2e test: dicts and lists, json round
trips, hashing, sorting, a thread pool, a few objects kept alive on
purpose. Prints deterministic lines only (no addresses, no timings)."""
import hashlib
import json
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor


def build(n):
    data = {}
    for i in range(n):
        key = "key-%d-%s" % (i, "x" * (i % 17))
        data[key] = {"id": i, "tags": [str(i * k) for k in range(i % 7)], "ratio": i / 7.0}
    return data


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    h = hashlib.sha256()
    kept = []
    for r in range(rounds):
        d = build(2000 + r * 10)
        text = json.dumps(d, sort_keys=True)
        back = json.loads(text)
        assert back == d
        h.update(text.encode())
        h.update(zlib.compress(text.encode(), 6)[:64])
        words = sorted(text.split(","), key=lambda w: (len(w), w))
        h.update(("%d %s" % (len(words), words[len(words) // 2])).encode())
        kept.append(bytearray(4096 * (r % 5 + 1)))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: hashlib.md5(("job%d" % i).encode() * 1000).hexdigest(), range(200)))
    h.update("".join(results).encode())
    print("python work digest", h.hexdigest())
    print("kept", sum(len(b) for b in kept), "bytes")


main()
