#!/bin/sh
# Every example network trains for one short epoch under valgrind memcheck, and the example programs run a few
# steps: any invalid read or write, use of uninitialised memory in a branch, or leaked block fails the run.
#   sh tests/valgrind.sh [BUILD_DIR]     (make valgrind; needs valgrind, python3 and MNIST in $DN_DATA/mnist)
# The data are cut small (valgrind runs code ~50x slower, and has no AVX-512, so the AVX2 kernels run): 64 MNIST
# images (32 for the two larger CNNs), the first 2.5 KB of README.md as text.  About 13 minutes on 2 cores.
B=${1:-build}
DATA=${DN_DATA:-data}
VG="valgrind -q --error-exitcode=9 --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all"
if ! command -v valgrind > /dev/null; then
    echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the first N images and labels of each MNIST file, as IDX files of their own
python3 - "$DATA/mnist" "$tmp" << 'PY' || exit 1
import struct, sys
src, dst = sys.argv[1], sys.argv[2]
for n, sub in ((64, "m64"), (32, "m32")):
    for name, item in (("train-images-idx3-ubyte", 784), ("t10k-images-idx3-ubyte", 784),
                       ("train-labels-idx1-ubyte", 1), ("t10k-labels-idx1-ubyte", 1)):
        with open(f"{src}/{name}", "rb") as f:
            raw = f.read()
        head = 16 if item == 784 else 8
        import os
        os.makedirs(f"{dst}/{sub}", exist_ok=True)
        with open(f"{dst}/{sub}/{name}", "wb") as f:
            f.write(raw[:4] + struct.pack(">I", n) + raw[8:head] + raw[head:head + n * item])
PY
head -c 2500 README.md > "$tmp/text.txt"

passed=0
failed=0
run() { # name command...   (passes when the command succeeds under memcheck)
    name=$1
    shift
    start=$(date +%s)
    $VG "$@" > "$tmp/out" 2> "$tmp/err"
    rc=$?
    # adding's 20 steps cannot solve the problem, so that program exits 1 by design: for it only memcheck's own
    # verdict (exit 9) or a signal counts
    if [ "$rc" = 0 ] || { [ "$name" = adding ] && [ "$rc" = 1 ]; }; then
        echo "ok   valgrind $name ($(($(date +%s) - start)) s)"
        passed=$((passed + 1))
    else
        echo "FAIL valgrind $name (exit $rc):"
        tail -n 30 "$tmp/err" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}
train() { # cfg data
    run "$1" "$B/dendrite" train "examples/$1.cfg" --data "$2" --epochs 1 --threads 2 --quiet
}
train mnist_mlp "$tmp/m64"
train mnist_lenet "$tmp/m64"
train mnist_rows_lstm "$tmp/m64"
train mnist_rows_gru "$tmp/m64"
train mnist_cnn "$tmp/m32"
train mnist_resnet "$tmp/m32"
train char_lstm "$tmp/text.txt"
run xor "$B/examples/xor"
run fit_sine "$B/examples/fit_sine"
run adding "$B/examples/adding" 20
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
