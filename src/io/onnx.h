/* ONNX export and import (docs/onnx.md), internal: what the tests ask of the exporters' table. */
#ifndef DN_IO_ONNX_H
#define DN_IO_ONNX_H

/* The ONNX ops that layer kind `kind` (a dn_layer_kind) is exported as, or NULL when the kind has no exporter. */
const char *dn_onnx_layer_ops(int kind);

#endif
