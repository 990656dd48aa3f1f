#!/usr/bin/python3
"""ONNX's own node test cases through dendrite's importer (docs/onnx.md, "Conformance").

Debian's libonnx-testdata holds ONNX's backend test cases: data/node/<case>/model.onnx (mostly one node) with
test_data_set_0/input_*.pb and output_*.pb.  Those graphs take every operand as a graph input, weights included,
while a dendrite model has one data input and constant weights.  For each case whose ops the importer reads, this
script writes a copy of the model in which every input but input 0 is an initializer holding that input's value
from input_<k>.pb, and input 0 keeps a named (dynamic) batch axis; then build/onnx_conformance_run (C, public API)
imports each copy with dn_model_import_onnx, runs input_0 in evaluation mode and compares with output_0 within
|dendrite - ONNX| <= 1e-6 + 1e-5 |ONNX| for every element (and the same output shape).

Every case ends as: pass, or refused with the importer's message.  A wrong answer, a shape mismatch, an import
that then fails to run, or a crash is a failure.  The cases listed in tests/fixtures/onnx_conformance_pass.txt
must pass (a regression fails the run); a pass not listed is reported (--update rewrites the list).

  /usr/bin/python3 tools/onnx_conformance.py [--build build-onnx] [--verbose] [--update]
Needs Debian's python3-onnx (python3-numpy comes with it) and a `make ONNX=1` build.  Exit status 0 when
everything holds, 1 otherwise, 2 when the test data or the build is missing.
"""
import argparse
import collections
import os
import re
import struct
import subprocess
import sys

import onnx
import numpy as np
from onnx import numpy_helper

# The op types the importer reads as nodes of their own (src/io/onnx_import.c, supported_ops).  The elementwise
# ops that only occur inside activation patterns (Mul, Div, Erf, Greater, Where) are not listed: a case of one of
# those alone is not a model the importer claims to read.
SUPPORTED = {
    "Gemm", "MatMul", "Add", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "Flatten", "Reshape", "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "Softplus",
    "HardSigmoid", "Softmax", "LogSoftmax", "PRelu", "Clip", "Neg", "Concat", "Identity", "Dropout", "Constant",
}
DEFAULT_DATA = "/usr/share/libonnx-testdata/data/node"
DEFAULT_FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                               "onnx_conformance_pass.txt")


def write_blob(path, arr):
    """int32 rank, int64 dims, float32 data (little-endian): what onnx_conformance_run reads"""
    arr = np.ascontiguousarray(arr, dtype="<f4")
    with open(path, "wb") as f:
        f.write(struct.pack("<i", arr.ndim))
        f.write(struct.pack("<%dq" % arr.ndim, *arr.shape))
        f.write(arr.tobytes())


def load_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def is_float_tensor(value_info):
    tt = value_info.type.tensor_type if value_info.type.HasField("tensor_type") else None
    return tt is not None and tt.elem_type == onnx.TensorProto.FLOAT


def prepare(case, src, dst):
    """Writes dst/model.onnx (weights bound as initializers), input.bin, expected.bin; None or why it cannot."""
    model = onnx.load(os.path.join(src, "model.onnx"))
    g = model.graph
    data = os.path.join(src, "test_data_set_0")
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    pbs = sorted((f for f in os.listdir(data) if re.fullmatch(r"input_\d+\.pb", f)),
                 key=lambda f: int(f[6:-3]))
    if len(pbs) != len(inputs):
        return "%d graph inputs but %d input_*.pb files" % (len(inputs), len(pbs))
    for k in range(1, len(inputs)):
        if not inputs[k].type.HasField("tensor_type"):
            return "input %d is not a tensor" % k
        t = load_tensor(os.path.join(data, pbs[k]))
        t.name = inputs[k].name
        g.initializer.append(t)
        if model.ir_version >= 4:  # before IR 4 every initializer is also listed as a graph input
            g.input.remove(inputs[k])
    os.makedirs(dst, exist_ok=True)
    for f in ("input.bin", "expected.bin"):
        if os.path.exists(os.path.join(dst, f)):
            os.remove(os.path.join(dst, f))
    if inputs:
        x = inputs[0]
        dims = x.type.tensor_type.shape.dim if x.type.HasField("tensor_type") else []
        if len(dims) >= 1:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"
        if is_float_tensor(x):
            write_blob(os.path.join(dst, "input.bin"), numpy_helper.to_array(load_tensor(os.path.join(data, pbs[0]))))
    out0 = os.path.join(data, "output_0.pb")
    if g.output and is_float_tensor(g.output[0]) and os.path.exists(out0):
        write_blob(os.path.join(dst, "expected.bin"), numpy_helper.to_array(load_tensor(out0)))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        return "the rewritten model fails onnx.checker: %s" % str(e).splitlines()[0]
    onnx.save(model, os.path.join(dst, "model.onnx"))
    return None


def run_driver(driver, dirs):
    """({case: (status, detail)}, problems): a crash marks its case and the driver starts again after it; an
    exit status other than 0 after the last case (a leak report under ASan) is a problem"""
    results, problems = {}, []
    todo = list(dirs)
    while todo:
        p = subprocess.run([driver], input="\n".join(todo) + "\n", capture_output=True, text=True, timeout=300)
        for line in p.stdout.splitlines():
            parts = line.split("\t", 2)
            if len(parts) == 3:
                results[parts[0]] = (parts[1], parts[2])
        rest = [d for d in todo if os.path.basename(d) not in results]
        if not rest:
            if p.returncode != 0:
                problems.append("FAIL the driver exited with status %d after the last case: %s" %
                                (p.returncode, p.stderr.strip()[-2000:]))
            break
        # the first case without a line is the one the driver died on
        results[os.path.basename(rest[0])] = ("wrong", "the driver crashed (exit status %d): %s" %
                                              (p.returncode, p.stderr.strip()[-300:]))
        todo = rest[1:]
    return results, problems


def reason(msg):
    """A refusal's message without the file and node names, so that equal reasons group"""
    msg = re.sub(r"^\S*model\.onnx: ", "", msg)
    msg = re.sub(r"^node '[^']*' \([^)]*\): ", "", msg)
    msg = re.sub(r"'[^' ]*'", "'.'", msg)
    msg = re.sub(r"; the importer reads .*", "", msg)
    return msg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-onnx", help="the make ONNX=1 build directory (default build-onnx)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="the node cases (default %s)" % DEFAULT_DATA)
    ap.add_argument("--fixture", default=DEFAULT_FIXTURE, help="the cases that must pass")
    ap.add_argument("--work", help="where the rewritten cases go (default BUILD/onnx_conformance)")
    ap.add_argument("--update", action="store_true", help="rewrite the fixture with this run's passes")
    ap.add_argument("--verbose", action="store_true", help="one line per case")
    a = ap.parse_args()
    if not os.path.isdir(a.data):
        print("skipped: %s is not there (apt-get install libonnx-testdata)" % a.data)
        return 2
    driver = os.path.join(a.build, "onnx_conformance_run")
    if not os.access(driver, os.X_OK):
        print("FAIL: %s is not built (make ONNX=1 %s)" % (driver, driver))
        return 2
    work = a.work or os.path.join(a.build, "onnx_conformance")

    cases, op_of, other, not_run = [], {}, 0, {}
    for case in sorted(os.listdir(a.data)):
        src = os.path.join(a.data, case)
        if not os.path.exists(os.path.join(src, "model.onnx")):
            continue
        model = onnx.load(os.path.join(src, "model.onnx"))
        ops = list(dict.fromkeys(n.op_type for n in model.graph.node))
        if not ops or any(op not in SUPPORTED for op in ops):
            other += 1
            continue
        op_of[case] = "+".join(ops)
        why = prepare(case, src, os.path.join(work, case))
        if why:
            not_run[case] = why
        else:
            cases.append(os.path.join(work, case))
    results, problems = run_driver(driver, cases)
    for case, why in not_run.items():
        results[case] = ("wrong", "the harness cannot bind its inputs: " + why)

    # the table: per op, cases, passes, refusals (by reason)
    by_op = collections.defaultdict(lambda: collections.Counter())
    reasons = collections.defaultdict(lambda: collections.defaultdict(list))
    failures = list(problems)
    for case in sorted(results):
        status, detail = results[case]
        op = op_of[case]
        by_op[op][status] += 1
        if status == "refused":
            reasons[op][reason(detail)].append(case)
        elif status != "pass":
            failures.append("FAIL %s (%s): %s" % (case, op, detail))
        if a.verbose:
            print("%-8s %s: %s" % (status, case, detail))
    print("ONNX node conformance: %d cases of the ops the importer reads (of %d; %d use other ops)" %
          (len(results), len(results) + other, other))
    print("bound: |dendrite - ONNX| <= 1e-6 + 1e-5 |ONNX| for every element, and the same output shape")
    print()
    print("%-22s %6s %7s %8s %6s" % ("op", "cases", "passed", "refused", "wrong"))
    total = collections.Counter()
    for op in sorted(by_op):
        c = by_op[op]
        n = sum(c.values())
        total.update(c)
        print("%-22s %6d %7d %8d %6d" % (op, n, c["pass"], c["refused"], c["wrong"]))
    print("%-22s %6d %7d %8d %6d" % ("total", sum(total.values()), total["pass"], total["refused"], total["wrong"]))
    print()
    print("refusals by reason:")
    for op in sorted(reasons):
        for why, names in sorted(reasons[op].items(), key=lambda kv: -len(kv[1])):
            print("  %-20s %3d  %s  [%s]" % (op, len(names), why, ", ".join(n[5:] for n in names)))

    passed = sorted(c for c, r in results.items() if r[0] == "pass")
    if a.update:
        with open(a.fixture, "w") as f:
            f.write("# ONNX node test cases (libonnx-testdata 1.12) that dendrite's importer must pass:\n"
                    "# /usr/bin/python3 tools/onnx_conformance.py --update rewrites this list\n")
            f.write("".join(c + "\n" for c in passed))
        print("\nwrote %s (%d cases)" % (a.fixture, len(passed)))
    expected = []
    with open(a.fixture) as f:
        expected = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    for case in expected:
        if case not in op_of and not os.path.isdir(os.path.join(a.data, case)):
            print("note: %s (in the fixture) is not in this copy of the test data" % case)
        elif results.get(case, ("missing", ""))[0] != "pass":
            status, detail = results.get(case, ("not run", "its ops are no longer in the importer's list"))
            failures.append("FAIL %s: passed before (the fixture lists it), now %s: %s" % (case, status, detail))
    new = [c for c in passed if c not in expected]
    if new:
        print("\npassing but not in the fixture (add them: --update): " + ", ".join(new))
    print()
    for f in failures:
        print(f)
    print("%d passed, %d failed, 0 skipped" % (total["pass"], len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
