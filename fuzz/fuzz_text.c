/* The text reader: the input as a text file in windows of 8 characters (dn_dataset_load_text), reloaded
 * with its own vocabulary and regrouped into streams.
 *     make -f fuzz/Makefile fuzz_text && build-fuzz/fuzz_text build-fuzz/corpus/text fuzz/corpus/text */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = dn_fuzz_text(data, size);
    if (rc) {
        fprintf(stderr, "fuzz_text: broken promise %d: %s\n", rc, dn_last_error());
        abort();
    }
    return 0;
}
