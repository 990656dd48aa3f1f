#!/bin/sh
# The ONNX export checks of `make test ONNX=1` (docs/onnx.md): the onnx suite of the test runner writes each example
# network and tests/fixtures/onnx_all.cfg as .onnx, with inputs (batch 1 and 3) and dendrite's outputs in a .json;
# here every file must pass onnx.checker (python3-onnx, full check) and give dendrite's outputs within 1e-5 in
# onnxruntime (npm's onnxruntime-node, through tests/onnx_run.js); and the PyTorch fixtures go through dendrite
# import, info and export and must still give PyTorch's outputs in onnxruntime.  The last line sums it up.
#   ONNX=1 sh tests/test_onnx.sh BUILD_DIR
# onnxruntime-node is looked for in NODE_PATH, then in ./node_modules (npm install --ignore-scripts onnxruntime-node).
build=${1:-build}
if [ "$ONNX" != 1 ]; then
    echo "skipped: this build has no ONNX support (make test ONNX=1 runs the ONNX checks)"
    exit 0
fi
dir="$build/onnx"
rm -rf "$dir" && mkdir -p "$dir" || exit 1
# python3 with the onnx module: Debian's python3-onnx lives in /usr/bin/python3, which another python3 on PATH may hide
py=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import onnx' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "FAIL: no python3 with the onnx module (apt-get install python3-onnx)"; exit 1; }
command -v node >/dev/null || { echo "FAIL: node is not installed (apt-get install nodejs npm)"; exit 1; }
export NODE_PATH="${NODE_PATH:+$NODE_PATH:}$(pwd)/node_modules"
node -e 'require("onnxruntime-node")' 2>/dev/null ||
    { echo "FAIL: onnxruntime-node is not installed (npm install --ignore-scripts onnxruntime-node)"; exit 1; }

DN_ONNX_DIR="$dir" "$build/test_runner" onnx > "$dir/suite.log" 2>&1
rc=$?
cat "$dir/suite.log"
[ $rc -eq 0 ] || { echo "FAIL: the onnx suite of the test runner"; exit 1; }

ok=0 bad=0
for cases in "$dir"/*.json; do
    [ -e "$cases" ] || { echo "FAIL: the onnx suite wrote no models"; exit 1; }
    model="${cases%.json}.onnx"
    name=$(basename "$model")
    if "$py" -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$model"; then
        echo "ok   $name: onnx.checker"
    else
        echo "FAIL $name: onnx.checker"; bad=$((bad + 1)); continue
    fi
    if node tests/onnx_run.js "$model" "$cases" "${cases%.json}.out.json" --check 1e-5 > "$dir/run.log" 2>&1; then
        sed "s/^/     /" "$dir/run.log"
        echo "ok   $name: onnxruntime gives dendrite's outputs within 1e-5"
        ok=$((ok + 1))
    else
        sed "s/^/     /" "$dir/run.log"
        echo "FAIL $name: onnxruntime"; bad=$((bad + 1))
    fi
done
# The commands end to end, PyTorch -> ONNX -> dendrite -> ONNX -> onnxruntime: each PyTorch fixture imported as a
# checkpoint (which info reads), exported again, and run in onnxruntime against PyTorch's own outputs.
for fixture in tests/fixtures/onnx/*.onnx; do
    name=$(basename "$fixture" .onnx)
    ckpt="$dir/imported_$name.ckpt"
    again="$dir/imported_$name.onnx"
    if "$build/dendrite" import "$fixture" -o "$ckpt" > "$dir/cli.log" 2>&1 &&
        "$build/dendrite" info "$ckpt" >> "$dir/cli.log" 2>&1 &&
        "$build/dendrite" export "$ckpt" -o "$again" >> "$dir/cli.log" 2>&1 &&
        "$py" -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$again" \
            >> "$dir/cli.log" 2>&1 &&
        node -e '
            // tools/onnx_fixtures.py text ("input D...\nvalues\noutput D...\nvalues") as onnx_run.js cases
            const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
            function tensor(k, tag) {
                const head = lines[2 * k].trim().split(/\s+/);
                if (head[0] !== tag) throw new Error("expected " + tag);
                return {dims: head.slice(1).map(Number), data: lines[2 * k + 1].trim().split(/\s+/).map(Number)};
            }
            const input = tensor(0, "input"), output = tensor(1, "output");
            process.stdout.write(JSON.stringify({cases: [{inputs: {input}, expected: {output}}]}));
        ' "tests/fixtures/onnx/$name.txt" > "$dir/imported_$name.json" &&
        node tests/onnx_run.js "$again" "$dir/imported_$name.json" "$dir/imported_$name.out.json" --check 1e-5 \
            >> "$dir/cli.log" 2>&1; then
        echo "ok   $name: PyTorch's export imported, exported again, onnx.checker, within 1e-5 of PyTorch in onnxruntime"
        ok=$((ok + 1))
    else
        sed "s/^/     /" "$dir/cli.log"
        echo "FAIL $name: import, info, export, onnxruntime"; bad=$((bad + 1))
    fi
done
echo "$ok models match in onnxruntime"
# ONNX's own node test cases (Debian's libonnx-testdata): every case of an op the importer reads either passes
# (within 1e-6 + 1e-5 |expected|) or is refused with a message; the passes listed in
# tests/fixtures/onnx_conformance_pass.txt must stay passes (tools/onnx_conformance.py; docs/onnx.md, "Conformance").
skipped=0
if [ -d /usr/share/libonnx-testdata/data/node ]; then
    if "$py" tools/onnx_conformance.py --build "$build" --work "$dir/conformance" > "$dir/conformance.log" 2>&1; then
        grep -E "^(ONNX node|total)" "$dir/conformance.log" | sed "s/^/     /"
        echo "ok   conformance: ONNX's node test cases pass or are refused with a message, no listed pass regressed"
        ok=$((ok + 1))
    else
        cat "$dir/conformance.log"
        echo "FAIL conformance: tools/onnx_conformance.py"; bad=$((bad + 1))
    fi
else
    echo "skip conformance: /usr/share/libonnx-testdata is not installed (apt-get install libonnx-testdata)"
    skipped=1
fi
echo "$ok passed, $bad failed, $skipped skipped"
[ $bad -eq 0 ]
