#!/bin/sh
# Data-parallel scaling (docs/distributed.md, "Measured"): samples/s of the CNN and MLP examples over a fixed number
# of steps as 1 process x 1 thread, 1 process x 2 threads and 2 processes x 1 thread, and the time the 2-process run
# spends waiting for gradient sums per step.  Run it alone on an idle machine with at least 2 cores:
#
#   make -j2 && make -j2 MPI=1 && sh bench/mpi_scaling.sh [BUILD_DIR] [MPI_BUILD_DIR]   (defaults: build build-mpi)
#
# Environment: STEPS (200) training steps of the cfg's batch (64) per run, REPS (3) runs of every case (the table
# shows medians), NETS ("cnn mlp"), DN_DATA (data: the folder holding mnist/), MPIRUN_FLAGS (the container flags
# below; set it empty on a host where Open MPI's defaults work).  Each run trains one epoch on the first
# STEPS x 64 MNIST training images (a truncated copy of the IDX files in a temporary folder, 64 test images), with
# validation off so every sample is a step; samples/s is the trainer's (the epoch's samples over its time).
# The CNN has batch norm: on 2 processes its statistics are synchronised (three small sums per layer and step).
set -u

BUILD=${1:-build}
MBUILD=${2:-build-mpi}
STEPS=${STEPS:-200}
REPS=${REPS:-3}
NETS=${NETS:-cnn mlp}
MNIST=${DN_DATA:-data}/mnist
MPIRUN_FLAGS=${MPIRUN_FLAGS---oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

for f in "$BUILD/dendrite" "$MBUILD/dendrite"; do [ -x "$f" ] || { echo "mpi_scaling: $f is missing"; exit 1; }; done
command -v mpirun >/dev/null 2>&1 || { echo "mpi_scaling: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
[ -r "$MNIST/train-images-idx3-ubyte" ] || { echo "mpi_scaling: no MNIST in $MNIST (scripts/fetch-mnist.sh)"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/mnist"
# be32 N: four bytes, big-endian (the IDX header's integers)
be32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"; }
# cut PREFIX N: the first N images and labels of the PREFIX files
cut_idx() {
    { be32 2051; be32 "$2"; be32 28; be32 28; tail -c +17 "$MNIST/$1-images-idx3-ubyte" | head -c $(($2 * 784)); } \
        > "$T/mnist/$1-images-idx3-ubyte"
    { be32 2049; be32 "$2"; tail -c +9 "$MNIST/$1-labels-idx1-ubyte" | head -c "$2"; } > "$T/mnist/$1-labels-idx1-ubyte"
}
N=$((STEPS * 64))
cut_idx train "$N"
cut_idx t10k 64

# field JSON KEY: a number from the run's last line
field() { printf '%s\n' "$1" | tail -1 | sed -n "s/.*\"$2\": \([0-9.e+-]*\).*/\1/p"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "| network | 1 proc x 1 thread | 1 proc x 2 threads | 2 procs x 1 thread | 2x1 / 1x1 | 2x1 / 1x2 | comm wait / step |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for net in $NETS; do
    cfg=examples/mnist_$net.cfg
    [ -f "$cfg" ] || { echo "mpi_scaling: no $cfg"; exit 1; }
    sed -e 's/^validation *=.*/validation = 0/' -e 's/^patience *=.*/patience = 0/' "$cfg" > "$T/$net.cfg"
    : > "$T/a" ; : > "$T/b" ; : > "$T/c" ; : > "$T/w"
    r=1
    while [ $r -le "$REPS" ]; do
        common="train $T/$net.cfg --data $T/mnist --epochs 1 --quiet"
        # shellcheck disable=SC2086
        out=$("$BUILD/dendrite" $common --threads 1) && field "$out" samples_per_sec >> "$T/a"
        # shellcheck disable=SC2086
        out=$("$BUILD/dendrite" $common --threads 2) && field "$out" samples_per_sec >> "$T/b"
        # shellcheck disable=SC2086
        out=$(timeout 600 mpirun $MPIRUN_FLAGS -np 2 --bind-to core "$MBUILD/dendrite" $common --threads 1) &&
            { field "$out" samples_per_sec >> "$T/c"; echo "$(field "$out" comm_seconds) $STEPS" | awk '{ print 1e3 * $1 / $2 }' >> "$T/w"; }
        r=$((r + 1))
    done
    a=$(median < "$T/a"); b=$(median < "$T/b"); c=$(median < "$T/c"); w=$(median < "$T/w")
    awk -v n="$net" -v a="$a" -v b="$b" -v c="$c" -v w="$w" 'BEGIN {
        printf "| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f ms |\n", n, a, b, c, c / a, c / b, w }'
done
