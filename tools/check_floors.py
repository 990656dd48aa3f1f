#!/usr/bin/env python3
"""Checks the house's floors (docs/design.md): no file of src/ includes a header of a higher floor or calls a
function defined on a higher floor.  Calls are read from the object files' symbol tables (nm), so a call through a
macro or an inline function counts too.

    python3 tools/check_floors.py [BUILD_DIR]      exit status 1 and one line per violation if any

Floors, lowest first (a file may use its own floor and those below):
    0 alloc, error, files     1 kernels/          2 tensor, arena, iter        3 autograd, registry, ops/
    4 nn/                     5 optim/, data/     6 io/                        7 train, run, dist/ (the whole run)
tools/ (floor 8) may only use the public header, which is checked by its includes.
"""
import os
import re
import subprocess
import sys

# source files that only some builds compile: src/io/onnx_*.c with make ONNX=1, src/io/no_onnx.c without; the
# same for src/dist/mpi.c (make MPI=1) and src/dist/no_mpi.c
OPTIONAL = re.compile(r"^(io/(onnx_\w+|no_onnx)|dist/(no_)?mpi)\.c$")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def floor_of(path):
    """The floor of a source or header path relative to src/, or None for files outside the plan."""
    p = path.replace("\\", "/")
    top = p.split("/")[0]
    base = os.path.splitext(os.path.basename(p))[0]
    if top in ("alloc.c", "error.c", "files.c", "base.h"):
        return 0
    if top == "kernels":
        return 1
    if base in ("tensor", "arena", "iter") and "/" not in p:
        return 2
    if p == "internal.h":
        return 2  # declarations of floors 0-3 that the lower files share; calls are checked by symbol
    if base in ("autograd", "registry") and "/" not in p:
        return 3
    if top == "ops":
        return 3
    if top == "nn":
        return 4
    if top in ("optim", "data"):
        return 5
    if top == "io":
        return 6
    if "/" not in p or top == "dist":
        return 7  # train.c, run.c and any other whole-run file; distributed training (src/dist/)
    return None


def sources():
    for d, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in files:
            if f.endswith((".c", ".h")):
                full = os.path.join(d, f)
                yield os.path.relpath(full, os.path.join(ROOT, "src")), full


def check_includes(errors):
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    for rel, full in sources():
        f = floor_of(rel)
        if f is None:
            continue
        text = open(full, encoding="utf-8").read()
        for name in inc.findall(text):
            if name == "dendrite.h":
                continue  # the public vocabulary (types and declarations) is for every floor
            # headers are named from src/ (-Isrc) or, rarely, relative to the including file
            cand = name if os.path.exists(os.path.join(ROOT, "src", name)) else os.path.join(os.path.dirname(rel), name)
            g = floor_of(cand)
            if g is not None and g > f:
                errors.append(f"src/{rel} (floor {f}) includes {name} (floor {g})")
            if f == 1 and cand == "internal.h":
                errors.append(f"src/{rel}: kernels include base.h and kernels/*.h, not internal.h")


def nm(obj, *flags):
    out = subprocess.run(["nm", *flags, obj], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def check_symbols(build, errors):
    objs = {}
    for rel, _ in sources():
        if rel.endswith(".c"):
            o = os.path.join(build, "src", rel[:-2] + ".o")
            if not os.path.exists(o):
                if OPTIONAL.search(rel):
                    continue  # the ONNX files, or their stand-in, are not in this build (make ONNX=1 or not)
                errors.append(f"{o} is missing: build first (make)")
                continue
            objs[rel] = o
    defined = {}
    for rel, o in objs.items():
        for line in nm(o, "--defined-only", "-g"):
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "TDBRVWC":
                defined[parts[2]] = rel
    for rel, o in objs.items():
        f = floor_of(rel)
        for line in nm(o, "-u"):
            sym = line.split()[-1]
            if sym in defined:
                g = floor_of(defined[sym])
                if f is not None and g is not None and g > f:
                    errors.append(f"src/{rel} (floor {f}) calls {sym} of src/{defined[sym]} (floor {g})")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    errors = []
    check_includes(errors)
    check_symbols(os.path.join(ROOT, build) if not os.path.isabs(build) else build, errors)
    for e in errors:
        print(e)
    print(f"floors: {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
