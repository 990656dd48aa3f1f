/* The CSV reader: the input as a file, loaded with the last column as label (header detected) and with
 * DN_CSV_NO_LABEL.
 *     make -f fuzz/Makefile fuzz_csv && build-fuzz/fuzz_csv build-fuzz/corpus/csv fuzz/corpus/csv */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = dn_fuzz_csv(data, size);
    if (rc) {
        fprintf(stderr, "fuzz_csv: broken promise %d: %s\n", rc, dn_last_error());
        abort();
    }
    return 0;
}
