/* The IDX reader: the first byte picks an images file alone (labels NULL) or an images + labels pair
 * split out of the input (dn_fuzz_idx in fuzz_common.h says how).
 *     make -f fuzz/Makefile fuzz_idx && build-fuzz/fuzz_idx build-fuzz/corpus/idx fuzz/corpus/idx */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = dn_fuzz_idx(data, size);
    if (rc) {
        fprintf(stderr, "fuzz_idx: broken promise %d: %s\n", rc, dn_last_error());
        abort();
    }
    return 0;
}
