/* The cfg parser and model builder: the input is cfg text (dn_model_from_cfg); a model it accepts runs a
 * small batch forward and backward.
 *     make -f fuzz/Makefile fuzz_cfg && build-fuzz/fuzz_cfg build-fuzz/corpus/cfg fuzz/corpus/cfg */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = dn_fuzz_cfg(data, size);
    if (rc) {
        fprintf(stderr, "fuzz_cfg: broken promise %d: %s\n", rc, dn_last_error());
        abort();
    }
    return 0;
}
