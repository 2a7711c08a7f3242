#!/usr/bin/env python3
"""Checks that every `#include "..."` in shim/ and reporter/ follows the
documented layering (README, "Architecture"). Exit 0 when it does; exit 1
with one line per problem otherwise:

    FILE:LINE: includes X against the flow (layer A may not include layer B)

A file may include headers of its own layer, of lower layers, and
third-party, generated or system headers (anything outside shim/ and
reporter/). Layers, lowest first:

  contract   shim/dump/format.h, shim/dump/config_table.def: the dump format
             and the LEAKWATCH_* environment table, the product's contract
             shared by the shim and the reporter (CMake target
             leakwatch_contract). They include nothing of the project.

  shim       runtime < sample, stack < record < dump, hook < main
             (sample/stack and dump/hook are siblings: neither includes the
             other). main/ is the composition root.

  reporter   model.h (the shared data model) < load < import < merge
             < symbolize < analyze < report.{h,cpp}, diff.{h,cpp}
             < render < cli
             Data flows left to right: a later stage may include an earlier
             one, never the reverse. import sits just above load because an
             imported heap profile becomes a load::Dump. report and diff
             compose the stages into a report, so they sit above every
             stage and below the renderers that print it and the CLI.

Across the two: the reporter may include the contract files and nothing else
of shim/; the shim never includes the reporter. A file in a directory that
is in no layer is itself an error, so a new directory has to be placed.

Known violations are listed in tools/include_exceptions.txt, one
`FILE -> INCLUDED` pair per line with a `#` reason above it. An entry that no
longer matches a violating include is an error too: the list only shrinks.

Usage: check_includes.py [--root DIR] [--exceptions FILE]
(defaults: the repository this script is in, and its
tools/include_exceptions.txt).
"""
import argparse
import os
import re
import sys

SCANNED_DIRS = ("shim", "reporter")
SCANNED_SUFFIXES = (".h", ".cpp", ".def")

CONTRACT_FILES = {"shim/dump/format.h", "shim/dump/config_table.def"}

# (path prefix, layer name, rank). Longest prefix wins, so a file entry
# (reporter/model.h) overrides its directory. Ranks only compare within a
# domain (the first path component); equal ranks with different names are
# siblings that may not include each other.
LAYERS = [
    ("shim/runtime/", "shim/runtime", 0),
    ("shim/sample/", "shim/sample", 1),
    ("shim/stack/", "shim/stack", 1),
    ("shim/record/", "shim/record", 2),
    ("shim/dump/", "shim/dump", 3),
    ("shim/hook/", "shim/hook", 3),
    ("shim/main/", "shim/main", 4),
    ("reporter/model.h", "reporter/model.h", 0),
    ("reporter/load/", "reporter/load", 1),
    ("reporter/import/", "reporter/import", 2),
    ("reporter/merge/", "reporter/merge", 3),
    ("reporter/symbolize/", "reporter/symbolize", 4),
    ("reporter/analyze/", "reporter/analyze", 5),
    ("reporter/report.h", "reporter/report", 6),
    ("reporter/report.cpp", "reporter/report", 6),
    ("reporter/diff.h", "reporter/report", 6),
    ("reporter/diff.cpp", "reporter/report", 6),
    ("reporter/render/", "reporter/render", 7),
    ("reporter/cli/", "reporter/cli", 8),
]

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def layer_of(path):
    """(name, rank) of a repository-relative path, or None if unplaced."""
    if path in CONTRACT_FILES:
        return ("contract", -1)
    best = None
    for prefix, name, rank in LAYERS:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, name, rank)
    return None if best is None else (best[1], best[2])


def allowed(src, dst):
    """True if a file of layer src may include a file of layer dst."""
    (src_name, src_rank), (dst_name, dst_rank) = src, dst
    if dst_name == "contract":
        return True
    if src_name == "contract":
        return False  # the contract stands alone
    if src_name.split("/")[0] != dst_name.split("/")[0]:
        return False  # shim <-> reporter only through the contract
    if src_name == dst_name:
        return True
    return dst_rank < src_rank


def resolve(root, including, target):
    """The repository-relative path an include names, or None if it is not
    the project's (third-party, generated, system)."""
    if target.split("/")[0] in SCANNED_DIRS:
        return os.path.normpath(target)
    # A bare or relative name next to the including file (e.g. a .def).
    local = os.path.normpath(os.path.join(os.path.dirname(including), target))
    if os.path.isfile(os.path.join(root, local)):
        return local
    return None


def source_files(root):
    for top in SCANNED_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(SCANNED_SUFFIXES):
                    yield os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")


def read_exceptions(path, shown, problems):
    """{(file, included): line number} from the allowlist; malformed lines
    (or entries without a reason) become problems."""
    entries = {}
    if not os.path.exists(path):
        return entries
    reason = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                reason = False  # a reason belongs to the entry right below it
                continue
            if text.startswith("#"):
                reason = True
                continue
            m = re.fullmatch(r"(\S+)\s*->\s*(\S+)", text)
            if not m:
                problems.append(f"{shown}:{n}: not a 'file -> included' pair: {text}")
            elif not reason:
                problems.append(f"{shown}:{n}: exception without a '#' reason line above it: {text}")
            else:
                entries[(m.group(1), m.group(2))] = n
    return entries


def check(root, exceptions_path):
    problems = []
    shown = os.path.relpath(exceptions_path, root)
    if shown.startswith(".."):
        shown = exceptions_path
    exceptions = read_exceptions(exceptions_path, shown, problems)
    used = set()
    for rel in source_files(root):
        src = layer_of(rel)
        if src is None:
            problems.append(f"{rel}:1: is in no layer (place its directory in tools/check_includes.py)")
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                target = resolve(root, rel, m.group(1))
                if target is None:
                    continue
                dst = layer_of(target)
                if dst is not None and allowed(src, dst):
                    continue
                if (rel, target) in exceptions:
                    used.add((rel, target))
                    continue
                dst_name = dst[0] if dst else target
                problems.append(f"{rel}:{n}: includes {target} against the flow "
                                f"(layer {src[0]} may not include layer {dst_name})")
    for (rel, target), n in sorted(exceptions.items(), key=lambda e: e[1]):
        if (rel, target) not in used:
            problems.append(f"{shown}:{n}: stale exception: {rel} -> {target} "
                            f"no longer matches an include against the flow; remove it")
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.dirname(here), help="repository root")
    ap.add_argument("--exceptions", help="allowlist (default: ROOT/tools/include_exceptions.txt)")
    args = ap.parse_args()
    exceptions = args.exceptions or os.path.join(args.root, "tools", "include_exceptions.txt")
    problems = check(args.root, exceptions)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
