/* Row-by-row iteration over strided, broadcast operands (shared by elementwise ops and their backward). */
#include "internal.h"

void dn_iter_init(dn_iter *it, int ndim, const int64_t *shape, int nops, const int64_t *const *strides)
{
    memset(it, 0, sizeof *it);
    it->nops = nops;
    it->empty = dn_shape_numel(ndim, shape) == 0;
    if (ndim == 0) {
        it->ndim = 0;
        it->inner = 1;
        return;
    }
    /* the last axis is the row; the others form the odometer */
    it->ndim = ndim - 1;
    it->inner = shape[ndim - 1];
    for (int i = 0; i < ndim - 1; i++) it->shape[i] = shape[i];
    for (int k = 0; k < nops; k++) {
        for (int i = 0; i < ndim - 1; i++) it->stride[k][i] = strides[k][i];
        it->step[k] = strides[k][ndim - 1];
    }
}

bool dn_iter_next(dn_iter *it)
{
    for (int i = it->ndim - 1; i >= 0; i--) {
        if (++it->idx[i] < it->shape[i]) {
            for (int k = 0; k < it->nops; k++) it->off[k] += it->stride[k][i];
            return true;
        }
        for (int k = 0; k < it->nops; k++) it->off[k] -= (it->idx[i] - 1) * it->stride[k][i];
        it->idx[i] = 0;
    }
    return false;
}

void dn_broadcast_strides(int ndim, const int64_t *shape, int ndim_in, const int64_t *shape_in,
                          const int64_t *base, int64_t *out)
{
    int lead = ndim - ndim_in;
    for (int i = 0; i < ndim; i++) {
        int j = i - lead;
        out[i] = (j < 0 || shape_in[j] == 1) ? 0 : base[j];
        (void)shape;
    }
}

dn_status dn_broadcast_shape(const char *op, const dn_tensor *a, const dn_tensor *b, int *ndim, int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return dn_error(DN_ERR_SHAPE, "%s: shapes %s and %s do not broadcast (axis %d: %lld vs %lld)", op,
                            dn_tshape(a), dn_tshape(b), i, (long long)da, (long long)db);
        shape[i] = da == 1 ? db : da;
    }
    *ndim = n;
    return DN_OK;
}
