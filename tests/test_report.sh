#!/bin/sh
# `dendrite report` and `dendrite visualize`, end to end: train a tiny CNN for 2 epochs on a slice of MNIST,
# write the report and the filter pictures, and check what came out.  Builds nothing.
#
#   sh tests/test_report.sh [BUILD_DIR]        (default: build; run from the repository root)
#
# DN_DATA: the folder holding mnist/ (default: data).  When chromium is installed the page is also rendered
# headless and the screenshot checked; DN_REPORT_SCREENSHOT=FILE keeps that screenshot (docs/report.png is
# made this way).  DN_KEEP=1 keeps the temporary folder.  Without MNIST the whole test is skipped, without
# chromium the rendering check is ("skip NAME: reason"); DN_REQUIRE (comma-separated, e.g. mnist,chromium) turns
# the skip of a listed requirement into a failure.  Exit status 0 when every check passes; the last line is
# "N passed, N failed, N skipped".
# DN_RUN_PREFIX runs the binary through a wrapper (a cross build under qemu-aarch64: `make test-aarch64`).
set -u

BUILD=${1:-build}
DN=$BUILD/dendrite
RUN_PREFIX=${DN_RUN_PREFIX:-}
# dn ARGS...: the dendrite binary, through the wrapper if one is set
# shellcheck disable=SC2086 # the prefix is a command and its arguments
dn() { $RUN_PREFIX "$DN" "$@"; }
MNIST=${DN_DATA:-data}/mnist
. "$(dirname "$0")/tally.sh"
check() { # check NAME COMMAND...: passes when the command succeeds (no redirections here: they would swallow the verdict)
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
finish() {
    tally
    exit $?
}

if [ ! -x "$DN" ]; then
    bad "no dendrite binary at $DN (build first: make)"
    finish
fi
if [ ! -r "$MNIST/train-images-idx3-ubyte" ] || [ ! -r "$MNIST/t10k-images-idx3-ubyte" ]; then
    skip mnist "report: no MNIST in $MNIST (scripts/fetch-mnist.sh, or set DN_DATA)"
    finish
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/dn_report.XXXXXX") || exit 1
if [ "${DN_KEEP:-0}" = 1 ]; then echo "keeping $T"; else trap 'rm -rf "$T"' EXIT; fi

# --- a slice of MNIST (6000 training and 1000 test images) keeps the run to a few seconds -----------------
# IDX: magic, count (4 bytes big-endian) and, for images, rows and columns; then one byte a pixel or label.
# shellcheck disable=SC2059 # the format is built from octal escapes on purpose
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
idx_slice() { # SRC DST COUNT images|labels
    if [ "$4" = images ]; then
        { printf '\000\000\010\003'; be32 "$3"; printf '\000\000\000\034\000\000\000\034'
          tail -c +17 "$1" | head -c $(($3 * 784)); } > "$2"
    else
        { printf '\000\000\010\001'; be32 "$3"; tail -c +9 "$1" | head -c "$3"; } > "$2"
    fi
}
mkdir -p "$T/mnist"
idx_slice "$MNIST/train-images-idx3-ubyte" "$T/mnist/train-images-idx3-ubyte" 6000 images
idx_slice "$MNIST/train-labels-idx1-ubyte" "$T/mnist/train-labels-idx1-ubyte" 6000 labels
idx_slice "$MNIST/t10k-images-idx3-ubyte" "$T/mnist/t10k-images-idx3-ubyte" 1000 images
idx_slice "$MNIST/t10k-labels-idx1-ubyte" "$T/mnist/t10k-labels-idx1-ubyte" 1000 labels

cat > "$T/tiny.cfg" <<EOF
# a small LeNet-like network: two conv/pool blocks and a dense head
[net]
input = 1, 28, 28
batch = 64
epochs = 2
seed = 1
optimizer = adam
lr = 0.003
validation = 0.1
schedule = cosine

[data]
format = mnist
train = $T/mnist

[convolutional]
filters = 8
size = 5
pad = 2
activation = relu

[maxpool]
size = 2

[convolutional]
filters = 8
size = 3
activation = relu

[maxpool]
size = 2

[dense]
units = 10
EOF
cat > "$T/mlp.cfg" <<EOF
[net]
input = 784
[data]
train = $T/mnist
[dense]
units = 10
EOF

# --- train -----------------------------------------------------------------------------------------------
dn train "$T/tiny.cfg" --epochs 2 --threads 1 --quiet --log "$T/log.jsonl" --save "$T/tiny.safetensors" \
    > "$T/train.out" 2> "$T/train.err"
check "train: 2 epochs with --log and --save" test $? -eq 0
check "train: the log has one line per epoch" test "$(wc -l < "$T/log.jsonl" 2> /dev/null)" -eq 2

# --- report ----------------------------------------------------------------------------------------------
H=$T/out/report.html
mkdir -p "$T/out"
dn report "$T/log.jsonl" "$T/tiny.safetensors" -o "$H" > "$T/report.out" 2> "$T/report.err"
rc=$?
check "report: exit status 0 (got $rc)" test "$rc" -eq 0
check "report: the page exists and is HTML" grep -qs '^<!DOCTYPE html>' "$H"
count() { grep -o "$1" "$H" 2> /dev/null | wc -l; }
check "report: three SVG line charts" test "$(count '<figure class="chart"><svg')" -eq 3
for title in '<title>Loss</title>' '<title>Accuracy</title>' '<title>Learning rate</title>'; do
    check "report: chart $title" grep -qs "$title" "$H"
done
check "report: training and validation series in the legend" test "$(count 'class="lg">validation<')" -eq 2
check "report: axes with tick labels and titles" test "$(count 'class="tick"')" -gt 20
check "report: epoch axis title" test "$(count '>epoch</text>')" -eq 3
check "report: confusion heat map (an SVG)" grep -qs '<svg[^>]*class="panel heatmap"' "$H"
check "report: heat map has 10x10 cells, rows true class" test "$(count '<title>true [0-9], predicted [0-9]:')" -eq 100
check "report: heat map counts add up to the 1000 test samples" \
    test "$(grep -os '<title>true [0-9], predicted [0-9]: [0-9]*' "$H" | sed 's/.*: //' | awk '{s += $1} END {print s + 0}')" -eq 1000
check "report: the layer table" grep -qs '<td>conv2d</td>' "$H"
nimg=$(count 'src="data:image/png;base64,iVBORw0KGgo')
check "report: 1..32 misclassified images as PNG data URIs ($nimg)" test "$nimg" -ge 1 -a "$nimg" -le 32
check "report: 'true → predicted' captions" test "$(count '<figcaption>[0-9] &rarr; [0-9]')" -eq "$nimg"
check "report: first-layer filters" grep -qs 'layers.0.weight: 8 filters of 5×5' "$H"
check "report: self-contained (no scripts, links or remote URLs)" \
    test "$(grep -o -i -s '<script\|<link\|<iframe\|url(\|https\?://[^"]*' "$H" | grep -v -c '^http://www.w3.org/2000/svg$')" -eq 0
check "report: no temporary file left behind" test "$(find "$T/out" -type f | wc -l)" -eq 1

# the log alone (no checkpoint) is a page with the curves only
dn report "$T/log.jsonl" -o "$T/curves.html" > /dev/null 2>&1
check "report: log only" test $? -eq 0
check "report: log only has the charts and no heat map" \
    sh -c "grep -qs '<title>Loss</title>' '$T/curves.html' && ! grep -qs 'heatmap' '$T/curves.html'"

# --- bad logs: clear errors naming the line, never a crash ------------------------------------------------
head -n 2 "$T/log.jsonl" > "$T/bad.jsonl"
echo '[1, 2, 3]' >> "$T/bad.jsonl"
dn report "$T/bad.jsonl" -o "$T/bad.html" > /dev/null 2> "$T/bad.err"
rc=$?
check "bad log: exit status 1 (got $rc)" test "$rc" -eq 1
check "bad log: the message names the line" grep -qs 'bad.jsonl:3: expected a JSON object' "$T/bad.err"
check "bad log: no page written" test ! -e "$T/bad.html"
printf '{"epoch": 1, "train_loss": 0.5}\n{"epoch": 2, "train_loss": "low"}\n' > "$T/bad2.jsonl"
dn report "$T/bad2.jsonl" -o "$T/bad2.html" > /dev/null 2> "$T/bad2.err"
check "bad log: a string where a number belongs" grep -qs 'bad2.jsonl:2: "train_loss" should be a number' "$T/bad2.err"
printf '{"epoch": 1, "train_loss": 0.5\n' > "$T/bad3.jsonl"
dn report "$T/bad3.jsonl" -o "$T/bad3.html" > /dev/null 2> "$T/bad3.err"
check "bad log: an unclosed object" grep -qs "bad3.jsonl:1: expected ',' or '}'" "$T/bad3.err"
: > "$T/empty.jsonl"
dn report "$T/empty.jsonl" -o "$T/empty.html" > /dev/null 2> "$T/empty.err"
rc=$?
check "empty log: an error (got $rc)" sh -c "[ $rc -eq 1 ] && grep -qs 'empty' '$T/empty.err'"
head -c 4096 "$DN" > "$T/binary.jsonl"
dn report "$T/binary.jsonl" -o "$T/binary.html" > /dev/null 2>&1
rc=$?
check "binary file as log: an error, not a crash (got $rc)" test "$rc" -eq 1
printf '{"epoch": 1, "train_loss": 0.5, "note": "x\\"y", "extra": {"a": [1, {"b": null}]}, "ok": true}\n' > "$T/extra.jsonl"
dn report "$T/extra.jsonl" -o "$T/extra.html" > /dev/null 2>&1
check "unknown keys are ignored" test $? -eq 0
dn report > /dev/null 2>&1
rc=$?
check "report without arguments: usage error (got $rc)" test "$rc" -eq 2

# --- visualize -------------------------------------------------------------------------------------------
dn visualize "$T/tiny.safetensors" -o "$T/filters.svg" > "$T/vis.out" 2>&1
check "visualize: SVG" test $? -eq 0
check "visualize: the SVG has 8 tiles of 5x5 with a caption" \
    sh -c "grep -qs '^<svg' '$T/filters.svg' && [ \$(grep -o '<g><title>filter' '$T/filters.svg' | wc -l) -eq 8 ] &&
           [ \$(grep -o '<rect x=' '$T/filters.svg' | wc -l) -ge 200 ] && grep -qs 'each filter scaled' '$T/filters.svg'"
dn visualize "$T/tiny.safetensors" -o "$T/filters.png" > /dev/null 2>&1
check "visualize: PNG" test $? -eq 0
# bytes 0-7: the signature; 8-15: IHDR's length (13) and type; 16-23: width, height; 24: depth 8; 25: greyscale
head_hex=$(od -An -tx1 -N 26 "$T/filters.png" 2> /dev/null | tr -d ' \n')
check "visualize: PNG signature" test "$(echo "$head_hex" | cut -c1-16)" = 89504e470d0a1a0a
check "visualize: PNG starts with IHDR (length 13)" test "$(echo "$head_hex" | cut -c17-32)" = 0000000d49484452
check "visualize: PNG IHDR: nonzero size, 8-bit greyscale" \
    sh -c "[ '$(echo "$head_hex" | cut -c33-40)' != 00000000 ] && [ '$(echo "$head_hex" | cut -c41-48)' != 00000000 ] &&
           [ '$(echo "$head_hex" | cut -c49-52)' = 0800 ]"
check "visualize: PNG ends with IEND" test "$(tail -c 12 "$T/filters.png" 2> /dev/null | od -An -tx1 | tr -d ' \n')" = 0000000049454e44ae426082
if [ -x /usr/bin/python3 ] && [ -s "$T/filters.png" ]; then
    # every chunk's CRC, and the zlib stream (stored blocks, Adler-32) inflates to h rows of 1 + w bytes
    check "visualize: PNG chunks and zlib stream verify (python3)" /usr/bin/python3 - "$T/filters.png" <<'EOF'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
i, idat, size = 8, b"", None
while i < len(d):
    n, = struct.unpack(">I", d[i:i + 4])
    kind, body = d[i + 4:i + 8], d[i + 8:i + 8 + n]
    assert struct.unpack(">I", d[i + 8 + n:i + 12 + n])[0] == zlib.crc32(kind + body) & 0xffffffff, kind
    if kind == b"IHDR": size = struct.unpack(">II", body[:8])
    if kind == b"IDAT": idat += body
    i += 12 + n
w, h = size
assert len(zlib.decompress(idat)) == h * (w + 1)
EOF
fi
dn train "$T/mlp.cfg" --epochs 0 --quiet --save "$T/mlp.safetensors" > /dev/null 2>&1
dn visualize "$T/mlp.safetensors" -o "$T/mlp.svg" > /dev/null 2> "$T/mlp.err"
rc=$?
check "visualize: a model without conv layers is an error (got $rc)" \
    sh -c "[ $rc -eq 1 ] && grep -qs 'no convolutional layer' '$T/mlp.err' && [ ! -e '$T/mlp.svg' ]"
dn visualize "$T/tiny.safetensors" -o "$T/filters.gif" > /dev/null 2>&1
rc=$?
check "visualize: an unknown extension is a usage error (got $rc)" test "$rc" -eq 2

# --- render the page in a headless browser, when there is one --------------------------------------------
BROWSER=
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" > /dev/null 2>&1; then BROWSER=$b; break; fi
done
if [ -n "$BROWSER" ]; then
    timeout 120 "$BROWSER" --headless --disable-gpu --no-sandbox --hide-scrollbars --user-data-dir="$T/chrome" \
        --screenshot="$T/shot.png" --window-size=1200,2000 "file://$H" > "$T/chrome.log" 2>&1
    size=0
    if [ -f "$T/shot.png" ]; then size=$(wc -c < "$T/shot.png"); fi
    check "browser: $BROWSER rendered a screenshot that is not blank ($size bytes)" test "$size" -gt 10240
    if [ -n "${DN_REPORT_SCREENSHOT:-}" ] && [ "$size" -gt 10240 ]; then cp "$T/shot.png" "$DN_REPORT_SCREENSHOT"; fi
else
    skip chromium "browser rendering: no chromium installed"
fi

finish
