/* Distributed training in a build without MPI (the default): a group of one process, never sharded.  make MPI=1
 * replaces this file with src/dist/mpi.c (docs/distributed.md). */
#include "dist/dist.h"

dn_status dn_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return DN_OK;
}
bool dn_dist_supported(void) { return false; }
int dn_dist_rank(void) { return 0; }
int dn_dist_size(void) { return 1; }
void dn_dist_abort(int code) { (void)code; }
void dn_dist_finalize(void) {}

bool dist_active(void) { return false; }
const dn_replica *dist_replica(void) { return NULL; }
dn_status dist_sum(double *buf, size_t n)
{
    (void)buf;
    (void)n;
    return DN_OK;
}
dn_status dist_all_equal(uint64_t v, bool *equal)
{
    (void)v;
    *equal = true;
    return DN_OK;
}
dn_status dist_isum_float(float *buf, size_t n)
{
    (void)buf;
    (void)n;
    return DN_OK;
}
void dist_progress(void) {}
dn_status dist_wait(void) { return DN_OK; }
