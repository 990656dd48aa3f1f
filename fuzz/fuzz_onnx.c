/* The ONNX importer (docs/onnx.md): the input is a file given to dn_model_import_onnx; a model it accepts must run
 * forward and backward (the importer builds it with the same checked constructors as the cfg parser).  The library
 * is built with ONNX support for this target alone (protoc-c and libprotobuf-c; fuzz/Makefile).
 *     make -f fuzz/Makefile fuzz_onnx
 *     build-fuzz/fuzz_onnx build-fuzz/corpus/onnx fuzz/corpus/onnx */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    if (dn_fuzz_write("onnx", data, size, path, sizeof path)) return 0;
    dn_fuzz_begin(DN_FUZZ_FILE_CAP);
    dn_model *m = NULL;
    dn_status s = dn_model_import_onnx(path, &m, NULL);
    int rc = dn_fuzz_said_why(s);
    if (!s && !rc) rc = dn_fuzz_run_model(m);
    dn_model_free(m);
    dn_fuzz_end();
    remove(path);
    if (rc) {
        fprintf(stderr, "fuzz_onnx: broken promise %d: %s\n", rc, dn_last_error());
        abort();
    }
    return 0;
}
