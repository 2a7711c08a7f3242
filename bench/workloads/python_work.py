# CPython doing ordinary work (run with PYTHONMALLOC=malloc so every object
# allocation reaches malloc): build records, JSON round trip, regex
# tokenising, counting, sorting, string formatting, a small class-heavy
# simulation. Usage: python3 python_work.py [SCALE=1]
import collections
import json
import re
import sys

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = int(40000 * scale)


class Account:
    __slots__ = ("id", "owner", "balance", "history")

    def __init__(self, i):
        self.id = i
        self.owner = "owner-%d" % (i % 977)
        self.balance = i % 1000
        self.history = []

    def post(self, amount, memo):
        self.balance += amount
        self.history.append((amount, memo))
        if len(self.history) > 8:
            del self.history[:4]


records = [{"id": i, "name": "user%05d" % i, "tags": ["t%d" % (i * j % 97) for j in range(i % 6)],
            "score": (i * 7919) % 10007 / 7.0, "active": i % 3 == 0} for i in range(n)]
text = json.dumps(records)
back = json.loads(text)
words = re.findall(r"[a-z]+\d*", text)
counts = collections.Counter(words)
top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
by_tag = collections.defaultdict(list)
for r in back:
    for t in r["tags"]:
        by_tag[t].append(r["id"])
accounts = [Account(i) for i in range(n // 4)]
for step in range(n * 3):
    a = accounts[(step * 31) % len(accounts)]
    a.post((step % 13) - 6, "memo %d/%s" % (step, a.owner))
report = "\n".join("%s=%d" % (k, len(v)) for k, v in sorted(by_tag.items()))
checksum = (len(text) + sum(v for _, v in top) + len(report) + sum(a.balance for a in accounts)
            + sum(len(a.history) for a in accounts))
print("checksum=%d" % checksum)
