#!/bin/sh
# Data-parallel training on Open MPI (docs/distributed.md), end to end: `mpirun -np K build-mpi/dendrite train`
# against one process of the default build, on small synthetic CSV data (a few seconds per run).
#
#   sh tests/test_mpi.sh [BUILD_DIR] [MPI_BUILD_DIR]     (defaults: build build-mpi; `make test-mpi` builds both)
#
# Checks: -np 1 equals the build without MPI bit for bit; -np 2 and -np 3 (uneven shards, batches not divisible by
# K, a data set smaller than K) train an MLP, LeNet and an LSTM to within 1e-5 relative of one process after 100
# steps, with the same test loss; early stopping and a plateau schedule decide as one process does; a -np 2 run repeats
# bit for bit; --resume across rank counts (2 -> 3, 1 -> 2); an error on one rank (an unwritable checkpoint, bad data
# in one shard) and a rank killed with SIGKILL end the job non-zero within seconds with the last checkpoint intact,
# and the run resumes.
# A batch-norm CNN and a dropout MLP are compared the same way (synchronised statistics, masks keyed by the global
# sample index).
# Without mpirun or the MPI build everything is skipped (a failure when DN_REQUIRE lists mpi).  As root, Open MPI
# needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (exported here).  DN_KEEP=1 keeps the folder.
# The last line is "N passed, N failed, N skipped"; exit status 0 when nothing failed.
set -u

BUILD=${1:-build}
MBUILD=${2:-build-mpi}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DN=$ROOT/$BUILD/dendrite
DNM=$ROOT/$MBUILD/dendrite
. "$(dirname "$0")/tally.sh"
finish() {
    tally
    exit
}

if ! command -v mpirun >/dev/null 2>&1 || [ ! -x "$DNM" ]; then
    skip mpi "mpi: no mpirun or no $MBUILD/dendrite (install openmpi-bin libopenmpi-dev, then make test-mpi)"
    finish
fi
[ -x "$DN" ] || { bad "no $DN (make first)"; finish; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# shared memory between the processes of one machine; single-copy (CMA) is refused in containers
MPIRUN="mpirun --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
# mpi K ARGS...: `dendrite train ARGS` on K processes, one kernel thread each, at most 120 s
# shellcheck disable=SC2086
mpi() { k=$1; shift; timeout 120 $MPIRUN -np "$k" "$DNM" train "$@" --threads 1 --quiet; }
one() { "$DN" train "$@" --threads 1 --quiet; }

T=$(mktemp -d)
[ "${DN_KEEP:-0}" = 1 ] || trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

# n samples of 64 features in [0, 1) (an 8x8 grid, or 8 steps of 8) and a label: the 4x4 quadrant with the
# largest sum.  A Lehmer generator in awk, so every awk writes the same file.
gen() {
    awk -v n="$1" -v seed="$2" 'BEGIN { x = seed + 1; for (i = 0; i < n; i++) { s[0] = s[1] = s[2] = s[3] = 0; l = "";
      for (j = 0; j < 64; j++) { x = (x * 16807) % 2147483647; v = x / 2147483647;
        q = int(int(j / 8) / 4) * 2 + int((j % 8) / 4); s[q] += v; l = l sprintf("%.4f,", v) }
      b = 0; for (q = 1; q < 4; q++) if (s[q] > s[b]) b = q; print l b } }'
}
gen 300 1 > train.csv
gen 100 7 > test.csv
gen 2 3 > two.csv

# net INPUT [OPTIMIZER LR]: the [net] and [data] sections; 240 training samples (a 0.2 validation split) in
# batches of 25 (divisible by neither 2 nor 3; the last has 15): 10 epochs are 100 steps
net() {
    cat <<CFG
[net]
input = $1
batch = 25
epochs = 10
seed = 3
loss = softmax_cross_entropy
optimizer = ${2:-sgd}
lr = ${3:-0.05}
momentum = 0.9
validation = 0.2
[data]
format = csv
train = $T/train.csv
test = $T/test.csv
CFG
}
{ net 64; printf '[dense]\nunits = 32\nactivation = relu\n[dense]\nunits = 4\n'; } > mlp.cfg
{ net "1, 8, 8"; printf '[convolutional]\nfilters = 4\nsize = 3\npad = 1\nactivation = relu\n[maxpool]\nsize = 2\n'
  printf '[convolutional]\nfilters = 8\nsize = 3\nactivation = relu\n[dense]\nunits = 16\nactivation = relu\n[dense]\nunits = 4\n'; } > lenet.cfg
{ net "8, 8" adam 0.01; printf '[lstm]\nhidden = 16\nreturn_sequences = 0\n[dense]\nunits = 4\n'; } > lstm.cfg
{ net "1, 8, 8"; printf '[convolutional]\nfilters = 4\nsize = 3\npad = same\nbias = 0\n[batchnorm]\n[activation]\ntype = relu\n'
  printf '[maxpool]\nsize = 2\n[dense]\nunits = 16\n[batchnorm]\n[activation]\ntype = relu\n[dense]\nunits = 4\n'; } > bn.cfg
{ net 64; printf '[dense]\nunits = 32\nactivation = relu\n[dropout]\np = 0.3\n[dense]\nunits = 4\n'; } > dropout.cfg
# two samples, a batch of two, three processes: one of them has an empty shard at every step
sed -e 's/^batch = 25/batch = 2/' -e 's/^validation = 0.2/validation = 0/' -e 's/^epochs = 10/epochs = 30/' \
    -e "s|$T/train.csv|$T/two.csv|" -e "/^test = /d" mlp.cfg > tiny.cfg

# close A B [TOL]: the parameters of checkpoints A and B agree within TOL relative (default 1e-5)
close() {
    r=$("$DN" compare "$1" "$2" 2>&1) || { echo "  $r"; return 1; }
    echo "  $1 vs $2: $r"
    echo "$r" | awk -v tol="${3:-1e-5}" -F'[:,]' '{ exit !($2 + 0 <= tol + 0) }'
}
# same_test_loss A.out B.out: the test losses two runs printed agree within 1e-5 relative (evaluation reads the
# batch-norm running statistics, which compare does not)
same_test_loss() {
    a=$(sed -n 's/.*"test_loss": \([^,]*\),.*/\1/p' "$1")
    b=$(sed -n 's/.*"test_loss": \([^,]*\),.*/\1/p' "$2")
    echo "  test_loss $a vs $b"
    awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; d = d < 0 ? -d : d; m = a < 0 ? -a : a
        exit !(a != "" && b != "" && d <= 1e-5 * m + 1e-6) }'
}
identical() {
    r=$("$DN" compare "$1" "$2" 2>&1) || { echo "  $r"; return 1; }
    echo "  $1 vs $2: $r"
    case $r in *'"identical": true'*) return 0 ;; *) return 1 ;; esac
}

# -np 1 is the one-process run, bit for bit (the whole checkpoint file)
one mlp.cfg --save mlp.1.ckpt > mlp.1.out || bad "mlp: one process"
if mpi 1 mlp.cfg --save mlp.np1.ckpt > /dev/null && cmp -s mlp.1.ckpt mlp.np1.ckpt && identical mlp.1.ckpt mlp.np1.ckpt
then ok "-np 1 writes the same checkpoint as the build without MPI"; else bad "-np 1 differs from the build without MPI"; fi

# equivalence with one process: every network on 2 and 3 processes (small buckets: many all-reduces per step,
# started during backward)
for n in mlp lenet lstm; do
    [ -f $n.1.ckpt ] || one $n.cfg --save $n.1.ckpt > $n.1.out || bad "$n: one process"
    for k in 2 3; do
        if DN_BUCKET_KB=1 mpi $k $n.cfg --save $n.$k.ckpt > $n.$k.out 2> $n.$k.err && close $n.1.ckpt $n.$k.ckpt &&
            same_test_loss $n.1.out $n.$k.out
        then ok "$n: -np $k trains the one-process weights (1e-5 after 100 steps)"
        else bad "$n: -np $k"; tail -3 $n.$k.err; fi
    done
done
if grep -q '"processes": 3' lenet.3.out 2>/dev/null && grep -q comm_seconds lenet.3.out; then ok "the run's figures name the processes and the all-reduce wait"
else bad "the run's JSON lacks processes / comm_seconds"; fi

# batch norm and dropout need the ops to see the global batch (synchronised statistics, masks by global index)
for n in bn dropout; do
    one $n.cfg --save $n.1.ckpt > $n.1.out || bad "$n: one process"
    for k in 2 3; do
        if mpi $k $n.cfg --save $n.$k.ckpt > $n.$k.out 2> $n.$k.err && close $n.1.ckpt $n.$k.ckpt &&
            same_test_loss $n.1.out $n.$k.out
        then ok "$n: -np $k trains the one-process weights"; else bad "$n: -np $k"; tail -3 $n.$k.err; fi
    done
done

# early stopping and a plateau schedule decide on the summed validation figures: the same epochs and rates on 3
# processes as on one (and rank 0 writes the log)
sed -e 's/^epochs = 10/epochs = 40\npatience = 3\nschedule = plateau\nplateau_patience = 1\nfactor = 0.5/' \
    -e 's/^lr = 0.05/lr = 0.2/' mlp.cfg > es.cfg
rates() { sed -n 's/.*"lr": \([^,]*\),.*/\1/p' "$1" | tr '\n' ' '; }
if one es.cfg --save es.1.ckpt --log es.1.log > es.1.out && mpi 3 es.cfg --save es.3.ckpt --log es.3.log > es.3.out &&
    e1=$(grep -o '"epochs": [0-9]*' es.1.out) && [ "$e1" = "$(grep -o '"epochs": [0-9]*' es.3.out)" ] &&
    [ "$e1" != '"epochs": 40' ] && [ "$(rates es.1.log)" = "$(rates es.3.log)" ] && close es.1.ckpt es.3.ckpt
then ok "early stopping and the plateau schedule stop and decay at the same epochs on 3 processes ($e1; lr $(rates es.3.log))"
else bad "early stopping / plateau on 3 processes"; fi

# a data set smaller than the group: one process has no samples at all
one tiny.cfg --save tiny.1.ckpt > /dev/null || bad "tiny: one process"
if mpi 3 tiny.cfg --save tiny.3.ckpt > /dev/null 2> tiny.err && close tiny.1.ckpt tiny.3.ckpt
then ok "two samples on three processes (an empty shard) train the one-process weights"; else bad "tiny: -np 3"; tail -3 tiny.err; fi

# a K-process run repeats bit for bit
if DN_BUCKET_KB=1 mpi 2 lenet.cfg --save lenet.2b.ckpt > /dev/null && identical lenet.2.ckpt lenet.2b.ckpt
then ok "a -np 2 run repeats bit for bit"; else bad "-np 2 does not repeat bit for bit"; fi

# resume across process counts: 4 epochs on 2, the rest on 3; 4 epochs on 1, the rest on 2
if mpi 2 mlp.cfg --epochs 4 --save r23.ckpt > /dev/null && mpi 3 mlp.cfg --resume r23.ckpt --save r23.ckpt > /dev/null &&
    close mlp.1.ckpt r23.ckpt
then ok "resume: 2 processes, then 3, end at the uninterrupted weights"; else bad "resume 2 -> 3"; fi
if one mlp.cfg --epochs 4 --save r12.ckpt > /dev/null && mpi 2 mlp.cfg --resume r12.ckpt --save r12.ckpt > /dev/null &&
    close mlp.1.ckpt r12.ckpt
then ok "resume: 1 process, then 2, end at the uninterrupted weights"; else bad "resume 1 -> 2"; fi

# an error on one rank (rank 0 cannot write its checkpoint) ends the whole job, non-zero, within seconds
start=$(date +%s)
mpi 2 mlp.cfg --save "$T/no/such/dir/x.ckpt" > /dev/null 2> err.txt
rc=$?
el=$(($(date +%s) - start))
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $el -le 20 ] && grep -q 'rank 0 of 2' err.txt
then ok "an unwritable checkpoint on rank 0 ends the job (status $rc, ${el}s) with rank 0's message"
else bad "error on one rank: status $rc after ${el}s"; cat err.txt; fi

# bad data in one shard only (a sample of 3e38s overflows to a non-finite output on the process that has it): that
# process reports it and the job ends
awk -F, 'NR == 7 { l = ""; for (i = 1; i < NF; i++) l = l "3e38,"; print l $NF; next } { print }' train.csv > huge.csv
sed "s|$T/train.csv|$T/huge.csv|" mlp.cfg > huge.cfg
start=$(date +%s)
mpi 3 huge.cfg > /dev/null 2> err.txt
rc=$?
el=$(($(date +%s) - start))
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $el -le 20 ] && [ "$(grep -c 'rank [0-9] of 3.*non-finite' err.txt)" = 1 ]
then ok "a non-finite value in one process's shard ends the job (status $rc, ${el}s) with that process's message"
else bad "bad data on one rank: status $rc after ${el}s"; cat err.txt; fi

# kill -9 one process mid-run: mpirun ends the job non-zero, the checkpoint stays whole, the run resumes
gen 3000 11 > big.csv
sed -e "s|$T/train.csv|$T/big.csv|" -e 's/^epochs = 10/epochs = 100000/' -e 's/^batch = 25/batch = 5/' mlp.cfg > long.cfg
timeout 120 $MPIRUN -np 2 "$DNM" train long.cfg --threads 1 --quiet --save kill.ckpt > /dev/null 2> kill.err &
job=$!
i=0
while [ ! -f kill.ckpt ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.3
victim=""
for p in $(pgrep -P $job 2>/dev/null) $(pgrep -f "$DNM train long.cfg" 2>/dev/null); do
    tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && { victim=$p; break; }
done
start=$(date +%s)
[ -n "$victim" ] && kill -9 "$victim"
wait $job
rc=$?
el=$(($(date +%s) - start))
if [ -n "$victim" ] && [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $el -le 10 ]
then ok "kill -9 of rank 1 ends the job (status $rc, ${el}s)"; else bad "kill test: victim '$victim', status $rc, ${el}s"; fi
done_epochs=$(grep -ao '"epochs_done":"[0-9]*"' kill.ckpt | tr -dc 0-9)
if [ -n "$done_epochs" ] && "$DN" info kill.ckpt > /dev/null &&
    mpi 2 long.cfg --resume kill.ckpt --epochs $((done_epochs + 1)) --save kill.ckpt > /dev/null &&
    [ "$(grep -ao '"epochs_done":"[0-9]*"' kill.ckpt | tr -dc 0-9)" = $((done_epochs + 1)) ]
then ok "the checkpoint survives the kill (epoch $done_epochs) and the run resumes from it"
else bad "kill test: checkpoint or resume"; fi

finish
