/* The checkpoint loader: the input is a file given to dn_model_load (cfg from the metadata, then the
 * parameters) and to dn_model_load_params into a fixed small model.
 *     make -f fuzz/Makefile fuzz_checkpoint
 *     build-fuzz/fuzz_checkpoint build-fuzz/corpus/checkpoint fuzz/corpus/checkpoint */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = dn_fuzz_checkpoint(data, size);
    if (rc) {
        fprintf(stderr, "fuzz_checkpoint: broken promise %d: %s\n", rc, dn_last_error());
        abort();
    }
    return 0;
}
