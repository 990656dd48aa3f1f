#!/bin/sh
# dendrite side by side with PyTorch (and its sgemm with OpenBLAS's): `make bench`, or
#
#   bench/run.sh [BUILD_DIR]            (default build; needs BUILD_DIR/bench/bench)
#
# Environment: REPS (3) runs of every case, THREADS ("1 2"), CASES (all of them: sgemm mlp lenet cnn
# infer-mlp infer-lenet lstm gru), DN_DATA (data: the folder holding mnist/ and fortunes.txt; or the MNIST
# folder itself), PYTHON (/usr/bin/python3, Debian's, which has torch),
# OPENBLAS_DIR (/usr/lib/x86_64-linux-gnu/openblas-openmp), BENCH_OPENBLAS_CORETYPE (unset: OpenBLAS picks
# its kernels for this CPU; an OPENBLAS_CORETYPE already in the environment is dropped, because a forced
# older kernel, e.g. Haswell on an AVX-512 machine, would make the reference look twice as slow as it is),
# ISA (unset: each side uses the best the CPU has; avx2: dendrite runs with DN_ISA=avx2 and PyTorch with
# OPENBLAS_CORETYPE=Haswell, DNNL_MAX_CPU_ISA=AVX2 and MKL_ENABLE_INSTRUCTIONS=AVX2, so both sides are AVX2 on an
# AVX-512 machine; portable:
# dendrite without SIMD, PyTorch as it is).
#
# Every figure comes from a fresh process (so each training case has its own peak memory), dendrite and the
# reference alternate within each repetition, and the table shows medians over REPS.  The machine should be
# otherwise idle: anything else running makes the figures noisy.  Raw lines go to BUILD_DIR/bench/raw.txt.
set -u
BUILD=${1:-${BUILD:-build}}
BENCH=$BUILD/bench/bench
REPS=${REPS:-3}
THREADS=${THREADS:-"1 2"}
CASES=${CASES:-"sgemm conv mlp lenet cnn infer-mlp infer-lenet lstm gru"}
DATA=${DN_DATA:-data}/mnist # DN_DATA names the folder holding mnist/, as for make test ...
[ -f "$DATA/train-images-idx3-ubyte" ] || DATA=${DN_DATA:-data/mnist} # ... or the MNIST folder itself
TEXT=${DN_DATA:-data}/fortunes.txt # the character cases' corpus (scripts/fetch-fortunes.sh); without it they skip
PYTHON=${PYTHON:-/usr/bin/python3}
OPENBLAS_DIR=${OPENBLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-openmp}
HERE=$(dirname "$0")
unset OPENBLAS_CORETYPE
[ -n "${BENCH_OPENBLAS_CORETYPE:-}" ] && export OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE"
RAW=$BUILD/bench/raw.txt
case "${ISA:-}" in
"") unset DN_ISA ;;
avx2)
    # MKL_ENABLE_INSTRUCTIONS: a PyTorch built with MKL (pip's) takes its BLAS from MKL, which the other two
    # switches do not reach
    export DN_ISA=avx2 OPENBLAS_CORETYPE=Haswell DNNL_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ;;
portable | avx512 | neon) export DN_ISA="$ISA" ;;
*) echo "run.sh: ISA=$ISA: use avx2, avx512, portable or neon" >&2; exit 1 ;;
esac

if [ ! -x "$BENCH" ]; then
    echo "run.sh: $BENCH is missing: build it with 'make bench'" >&2
    exit 1
fi
NEED_MNIST=0
for c in $CASES; do
    case $c in mlp | lenet | cnn | infer-*) NEED_MNIST=1 ;; esac
done
if [ "$NEED_MNIST" = 1 ] && [ ! -f "$DATA/train-images-idx3-ubyte" ]; then
    echo "run.sh: no MNIST in $DATA: fetch it with scripts/fetch-mnist.sh (or set DN_DATA)" >&2
    exit 1
fi
case " $CASES " in
*" lstm "* | *" gru "*)
    [ -f "$TEXT" ] || echo "run.sh: no $TEXT: the lstm and gru cases will be skipped (scripts/fetch-fortunes.sh)" >&2
    ;;
esac

# PyTorch, if Debian's python has it.  Debian's torch calls whatever libblas.so.3 the system selected; the
# reference BLAS would make it ~15x slower, so its runs get OpenBLAS put first on the library path.
HAVE_TORCH=0
if [ -x "$PYTHON" ] && "$PYTHON" -c "import torch" 2>/dev/null; then HAVE_TORCH=1; fi
if [ "$HAVE_TORCH" = 1 ] && [ ! -d "$OPENBLAS_DIR" ]; then
    echo "run.sh: warning: no OpenBLAS at $OPENBLAS_DIR (apt-get install libopenblas0-openmp): PyTorch will use the" \
        "reference BLAS and look ~15x slower than it is" >&2
fi
torch_run() { # case threads
    OMP_NUM_THREADS=$2 LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$PYTHON" "$HERE/bench_torch.py" --data "$DATA" --text "$TEXT" "$1" "$2"
}

: > "$RAW"
echo "== machine"
if command -v lscpu > /dev/null; then
    lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|L2 cache|L3 cache)'
    printf 'SIMD: '
    for f in avx2 fma avx512f avx512vl; do lscpu | grep -qw "$f" && printf '%s ' "$f"; done
    echo
fi
uptime 2>/dev/null | sed 's/^/load: /'
echo "ISA: dendrite ${DN_ISA:-best available}; OpenBLAS ${OPENBLAS_CORETYPE:-its own choice}; oneDNN ${DNNL_MAX_CPU_ISA:-its own choice}"
echo "== reference"
if [ "$HAVE_TORCH" = 1 ]; then torch_run info 1 | sed 's/^info //'; else echo "no PyTorch for $PYTHON: dendrite only"; fi
"$BENCH" fma-peak 1 | tee -a "$RAW" | sed 's/^result /measured /'
cores_now() { "$BENCH" cores 2 | awk '{print $5}'; }
echo "CPU available to 2 busy threads now: $(cores_now) cores (2.00 = both cores free)"

echo "== running (REPS=$REPS, THREADS='$THREADS'; each figure is a fresh process)"
for c in $CASES; do
    echo "cores $c $(cores_now)" >> "$RAW"
    for t in $THREADS; do
        r=1
        while [ "$r" -le "$REPS" ]; do
            printf '%s, %s thread(s), run %s/%s\n' "$c" "$t" "$r" "$REPS" >&2
            "$BENCH" --data "$DATA" --text "$TEXT" "$c" "$t" >> "$RAW" || echo "run.sh: dendrite $c $t failed" >&2
            if [ "$c" = sgemm ]; then
                OMP_NUM_THREADS=$t "$BENCH" sgemm-openblas "$t" >> "$RAW"
            elif [ "$c" = conv ]; then
                : # dendrite's layers against the FMA peak; PyTorch's whole networks are the cnn and lenet cases
            elif [ "$HAVE_TORCH" = 1 ]; then
                torch_run "$c" "$t" >> "$RAW" || echo "run.sh: torch $c $t failed" >&2
            fi
            r=$((r + 1))
        done
    done
done
grep -E '^(info openblas|skip)' "$RAW" | sort -u
uptime 2>/dev/null | sed 's/^/load after: /'
printf 'CPU available to 2 busy threads before each case (cores):'
awk '$1 == "cores" { printf " %s %s", $2, $3 }' "$RAW"
echo

# The table: medians per (case, threads, implementation).  "vs" is how many times better dendrite is:
# its rate over the reference's for rates, the reference's over dendrite's for latency and memory.  Rows
# named "... per-cpu-s" give one-thread rates per CPU second instead of per second of wall time.
echo "== results (medians of $REPS runs)"
awk '
function med(list,   n, v, i, j, x) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function add(key, val) { if (!(key in vals)) { order[++nkeys] = key } vals[key] = vals[key] " " val }
$1 == "result" { add($2 SUBSEP $4 SUBSEP $6, ""); impl[$2 SUBSEP $4 SUBSEP $3] = impl[$2 SUBSEP $4 SUBSEP $3] " " $5 }
# one thread: the rate per CPU second as well, which other work on the machine disturbs much less
$1 == "cpuresult" && $4 == 1 {
    k = $2 " per-cpu-s"; add(k SUBSEP $4 SUBSEP $6, ""); impl[k SUBSEP $4 SUBSEP $3] = impl[k SUBSEP $4 SUBSEP $3] " " $5
}
$1 == "memory" {
    k = "peak MiB " $2; add(k SUBSEP $4 SUBSEP "MiB", ""); impl[k SUBSEP $4 SUBSEP $3] = impl[k SUBSEP $4 SUBSEP $3] " " $5 / 1024
    k = "above data MiB " $2; add(k SUBSEP $4 SUBSEP "MiB", ""); impl[k SUBSEP $4 SUBSEP $3] = impl[k SUBSEP $4 SUBSEP $3] " " ($5 - $6) / 1024
}
END {
    printf "%-26s %-10s %7s %12s %12s %-9s %7s\n", "case", "unit", "threads", "dendrite", "reference", "(which)", "vs"
    for (i = 1; i <= nkeys; i++) {
        split(order[i], p, SUBSEP)
        c = p[1]; t = p[2]; u = p[3]
        d = (c SUBSEP t SUBSEP "dendrite") in impl ? med(impl[c SUBSEP t SUBSEP "dendrite"]) : ""
        ref = ""; which = ""
        if ((c SUBSEP t SUBSEP "torch") in impl) { ref = med(impl[c SUBSEP t SUBSEP "torch"]); which = "torch" }
        if ((c SUBSEP t SUBSEP "openblas") in impl) { ref = med(impl[c SUBSEP t SUBSEP "openblas"]); which = "openblas" }
        vs = ""
        if (d != "" && ref != "" && d > 0 && ref > 0) vs = sprintf("%.2fx", (u == "us" || u == "MiB") ? ref / d : d / ref)
        printf "%-26s %-10s %7s %12s %12s %-9s %7s\n", c, u, t, d == "" ? "-" : sprintf("%.1f", d),
               ref == "" ? "-" : sprintf("%.1f", ref), which, vs
    }
    # thread scaling: the 2-thread rate over the 1-thread rate, per case and implementation
    printf "\n%-26s %-10s %12s %12s\n", "scaling (2 threads / 1)", "", "dendrite", "reference"
    for (i = 1; i <= nkeys; i++) {
        split(order[i], p, SUBSEP)
        c = p[1]; u = p[3]
        if (p[2] != 2 || u == "MiB") continue
        out = ""
        for (k = 1; k <= 3; k++) {
            w = k == 1 ? "dendrite" : k == 2 ? "torch" : "openblas"
            if (!((c SUBSEP 1 SUBSEP w) in impl) || !((c SUBSEP 2 SUBSEP w) in impl)) continue
            one = med(impl[c SUBSEP 1 SUBSEP w]); two = med(impl[c SUBSEP 2 SUBSEP w])
            out = out sprintf(" %12s", sprintf("%.2fx", u == "us" ? one / two : two / one))
        }
        if (out != "") printf "%-26s %-10s%s\n", c, u, out
    }
}' "$RAW"
if grep -q '^share ' "$RAW"; then
    echo
    echo "== convolution layers: share of the FMA peak (median over runs; fwd = forward, train = forward + backward)"
    awk '$1 == "peak" { peak = $0 }
         $1 == "share" { k = $2 " " $3; v[k] = v[k] " " $4 + 0; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
         END {
             print peak
             for (i = 1; i <= n; i++) {
                 m = split(v[order[i]], a, " ")
                 for (x = 2; x <= m; x++) { y = a[x]; for (j = x - 1; j >= 1 && a[j] > y; j--) a[j + 1] = a[j]; a[j + 1] = y }
                 printf "%-40s %3d%%\n", order[i] " thread(s)", m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
             }
         }' "$RAW"
fi
echo "(raw figures: $RAW)"
