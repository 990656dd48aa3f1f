/* Distributed training on Open MPI (make MPI=1; docs/distributed.md): MPI_COMM_WORLD is the group.
 *
 * Determinism.  Every sum here is an MPI_Allreduce / MPI_Iallreduce with MPI_SUM over the same counts on every
 * process, in the same order.  Open MPI picks the algorithm (coll/tuned for the blocking calls, libnbc for the
 * non-blocking ones) from the communicator size and the message size only, never from timing, so for a fixed number
 * of processes and a fixed bucket layout the same additions happen in the same order on every step and every run:
 * a K-process run repeats bit for bit.  Each algorithm it may choose ends with every process holding the same bits
 * (ring and reduce-scatter/allgather: each segment is reduced on one process and then copied to the others; binomial
 * reduce + broadcast: copied; recursive doubling: the two partners add the same two values, and IEEE addition is
 * commutative).  The trainer does not take this on trust: it compares a fingerprint of the weights on every
 * process after each epoch (dist_all_equal).
 *
 * Errors.  MPI_COMM_WORLD keeps MPI's default handler (MPI_ERRORS_ARE_FATAL): a collective that fails because a peer
 * died ends the whole job rather than returning into code that would wait for the dead process. */
#include "dist/dist.h"

#include <mpi.h>

#define MAX_REQUESTS 1024 /* sums in flight; the gradient buckets are sized to stay below it */

static bool g_init, g_we_init;
static int g_rank, g_size = 1;
static dn_replica g_replica;
static MPI_Request g_req[MAX_REQUESTS];
static int g_n_req;

static dn_status replica_sum(void *user, double *buf, size_t n)
{
    (void)user;
    return dist_sum(buf, n);
}

dn_status dn_dist_init(int *argc, char ***argv)
{
    if (g_init) return DN_OK;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        /* the kernels' thread pool never calls MPI: only the main thread does (FUNNELED) */
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return dn_error(DN_ERR_STATE, "MPI_Init_thread failed (is this run under mpirun?)");
        g_we_init = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_replica = (dn_replica){.rank = g_rank, .size = g_size, .sum = replica_sum, .user = NULL};
    g_init = true;
    return DN_OK;
}

bool dn_dist_supported(void) { return true; }
int dn_dist_rank(void) { return g_init ? g_rank : 0; }
int dn_dist_size(void) { return g_init ? g_size : 1; }

void dn_dist_abort(int code)
{
    if (g_init && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void dn_dist_finalize(void)
{
    if (!g_init) return;
    g_init = false;
    if (g_we_init) MPI_Finalize();
}

bool dist_active(void) { return g_init && g_size > 1; }
const dn_replica *dist_replica(void) { return dist_active() ? &g_replica : NULL; }

dn_status dist_sum(double *buf, size_t n)
{
    if (!dist_active() || n == 0) return DN_OK;
    if (n > (size_t)INT32_MAX) return dn_error(DN_ERR_ARG, "dist_sum: %zu values are too many for one MPI call", n);
    if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
        return dn_error(DN_ERR_STATE, "MPI_Allreduce of %zu doubles failed", n);
    return DN_OK;
}

dn_status dist_all_equal(uint64_t v, bool *equal)
{
    *equal = true;
    if (!dist_active()) return DN_OK;
    /* one call: max(v) and max(~v) = ~min(v); all equal when max == min */
    uint64_t m[2] = {v, ~v};
    if (MPI_Allreduce(MPI_IN_PLACE, m, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return dn_error(DN_ERR_STATE, "MPI_Allreduce of the weights' fingerprint failed");
    *equal = m[0] == ~m[1];
    return DN_OK;
}

dn_status dist_isum_float(float *buf, size_t n)
{
    if (!dist_active() || n == 0) return DN_OK;
    if (n > (size_t)INT32_MAX) return dn_error(DN_ERR_ARG, "dist_isum_float: %zu values are too many for one MPI call", n);
    if (g_n_req == MAX_REQUESTS) {
        dn_status s = dist_wait();
        if (s) return s;
    }
    if (MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &g_req[g_n_req]) != MPI_SUCCESS)
        return dn_error(DN_ERR_STATE, "MPI_Iallreduce of %zu floats failed", n);
    g_n_req++;
    return DN_OK;
}

void dist_progress(void)
{
    int done = 0;
    if (g_n_req) MPI_Testall(g_n_req, g_req, &done, MPI_STATUSES_IGNORE);
}

dn_status dist_wait(void)
{
    if (!g_n_req) return DN_OK;
    int rc = MPI_Waitall(g_n_req, g_req, MPI_STATUSES_IGNORE);
    g_n_req = 0;
    return rc == MPI_SUCCESS ? DN_OK : dn_error(DN_ERR_STATE, "MPI_Waitall on the gradient sums failed");
}
