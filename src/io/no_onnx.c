/* The ONNX entry points of a build without ONNX support (the default: no protobuf dependency).  make ONNX=1
 * replaces this file with src/io/onnx_*.c (docs/onnx.md). */
#include "internal.h"

bool dn_onnx_supported(void) { return false; }

dn_status dn_model_export_onnx(const dn_model *m, const char *path, int opset)
{
    (void)m;
    (void)path;
    (void)opset;
    return dn_error(DN_ERR_STATE, "built without ONNX support (make ONNX=1)");
}

dn_status dn_model_import_onnx(const char *path, dn_model **model, dn_train_config *train)
{
    (void)path;
    (void)train;
    if (model) *model = NULL;
    return dn_error(DN_ERR_STATE, "built without ONNX support (make ONNX=1)");
}
