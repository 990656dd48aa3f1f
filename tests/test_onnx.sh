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

. "$(dirname "$0")/tally.sh"
for cases in "$dir"/*.json; do
    [ -e "$cases" ] || { echo "FAIL: the onnx suite wrote no models"; exit 1; }
    model="${cases%.json}.onnx"
    name=$(basename "$model")
    if "$py" -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$model"; then
        echo "ok   $name: onnx.checker"
    else
        bad "$name: onnx.checker"; continue
    fi
    if node tests/onnx_run.js "$model" "$cases" "${cases%.json}.out.json" --check 1e-5 > "$dir/run.log" 2>&1; then
        sed "s/^/     /" "$dir/run.log"
        ok "$name: onnxruntime gives dendrite's outputs within 1e-5"
    else
        sed "s/^/     /" "$dir/run.log"
        bad "$name: onnxruntime"
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
        ok "$name: PyTorch's export imported, exported again, onnx.checker, within 1e-5 of PyTorch in onnxruntime"
    else
        sed "s/^/     /" "$dir/cli.log"
        bad "$name: import, info, export, onnxruntime"
    fi
done
echo "$passed models match in onnxruntime"
# ONNX's own node test cases (Debian's libonnx-testdata): every case of an op the importer reads either passes
# (within 1e-6 + 1e-5 |expected|) or is refused with a message; the passes listed in
# tests/fixtures/onnx_conformance_pass.txt must stay passes (tools/onnx_conformance.py; docs/onnx.md, "Conformance").
if [ -d /usr/share/libonnx-testdata/data/node ]; then
    if "$py" tools/onnx_conformance.py --build "$build" --work "$dir/conformance" > "$dir/conformance.log" 2>&1; then
        grep -E "^(ONNX node|total)" "$dir/conformance.log" | sed "s/^/     /"
        ok "conformance: ONNX's node test cases pass or are refused with a message, no listed pass regressed"
    else
        cat "$dir/conformance.log"
        bad "conformance: tools/onnx_conformance.py"
    fi
else
    skip onnx-testdata "conformance: /usr/share/libonnx-testdata is not installed (apt-get install libonnx-testdata)"
fi
# Fine-tuning an imported model through the commands (docs/onnx.md, "Fine-tuning an imported model"): PyTorch's
# MLP imported (with its cfg), then info, eval and predict on the checkpoint; `train CKPT`, `train MODEL.onnx` and
# `train CFG --init MODEL.onnx` on 6000 MNIST images for 2 epochs: the weights change, the three runs save the same
# weights, and the fine-tuned model reaches the floor on the 10000 test images (about 0.82; floor 0.75).
mnist="${DN_DATA:-data}/mnist"
if [ -r "$mnist/train-images-idx3-ubyte" ] && [ -r "$mnist/t10k-labels-idx1-ubyte" ]; then
    ft="$dir/finetune"
    mkdir -p "$ft/sub"
    "$py" -c '
import struct, sys
src, dst, n = sys.argv[1], sys.argv[2], 6000
for name, head, per in (("train-images-idx3-ubyte", 16, 784), ("train-labels-idx1-ubyte", 8, 1)):
    b = open(src + "/" + name, "rb").read()
    open(dst + "/" + name, "wb").write(b[:4] + struct.pack(">I", n) + b[8:head] + b[head:head + n * per])
' "$mnist" "$ft/sub" && cp "$mnist/t10k-images-idx3-ubyte" "$mnist/t10k-labels-idx1-ubyte" "$ft/sub/"
    d="$build/dendrite"
    opts="--data $ft/sub --epochs 2 --lr 0.1 --quiet"
    # the first line of eval's JSON: {"loss": L, "accuracy": A, ...}
    accuracy() { sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p' "$1"; }
    if "$d" import tests/fixtures/onnx/mlp.onnx -o "$ft/mlp.ckpt" --cfg "$ft/mlp.cfg" > "$ft/log" 2>&1 &&
        "$d" info "$ft/mlp.ckpt" > "$ft/info" 2>&1 && grep -q "25818 parameters" "$ft/info" &&
        "$d" eval "$ft/mlp.ckpt" --data "$ft/sub" > "$ft/eval0" 2>&1 &&
        "$d" predict "$ft/mlp.ckpt" "$ft/sub/t10k-images-idx3-ubyte" > "$ft/predict" 2>&1 &&
        [ "$(wc -l < "$ft/predict")" -eq 10000 ] &&
        "$d" train "$ft/mlp.ckpt" $opts --save "$ft/a.ckpt" >> "$ft/log" 2>&1 &&
        "$d" train tests/fixtures/onnx/mlp.onnx $opts --save "$ft/b.ckpt" >> "$ft/log" 2>&1 &&
        "$d" train "$ft/mlp.cfg" --init tests/fixtures/onnx/mlp.onnx $opts --save "$ft/c.ckpt" >> "$ft/log" 2>&1 &&
        "$d" eval "$ft/a.ckpt" --data "$ft/sub" > "$ft/eval1" 2>&1 &&
        "$d" export "$ft/a.ckpt" -o "$ft/a.onnx" >> "$ft/log" 2>&1 && "$d" export "$ft/b.ckpt" -o "$ft/b.onnx" >> "$ft/log" 2>&1 &&
        "$d" export "$ft/c.ckpt" -o "$ft/c.onnx" >> "$ft/log" 2>&1 && "$d" export "$ft/mlp.ckpt" -o "$ft/0.onnx" >> "$ft/log" 2>&1 &&
        cmp -s "$ft/a.onnx" "$ft/b.onnx" && cmp -s "$ft/a.onnx" "$ft/c.onnx" && ! cmp -s "$ft/a.onnx" "$ft/0.onnx" &&
        awk -v a="$(accuracy "$ft/eval0")" -v b="$(accuracy "$ft/eval1")" 'BEGIN { exit !(a < 0.3 && b >= 0.75) }'; then
        ok "fine-tuning: PyTorch's MLP imported, info, eval, predict; train CKPT, MODEL.onnx and CFG --init give the same weights, test accuracy $(accuracy "$ft/eval0") -> $(accuracy "$ft/eval1")"
    else
        cat "$ft/log" "$ft/info" "$ft/eval0" "$ft/eval1" 2>/dev/null | sed "s/^/     /"
        bad "fine-tuning an imported model through the commands"
    fi
else
    skip mnist "fine-tuning: no MNIST in $mnist (scripts/fetch-mnist.sh)"
fi
tally
