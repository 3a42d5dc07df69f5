/*
 * fold.h - per-node shape inference and constant folding (fold.c), the core
 * of bgr_graph_prepare. Private to src/infer.
 */
#ifndef BGR_INFER_FOLD_H
#define BGR_INFER_FOLD_H

#include "infer/graph.h"

/* Processes one needed node whose inputs are already processed: a node whose
 * inputs are all constant (or a Shape) is evaluated and marked folded; a
 * Cast/Identity of an activation becomes an alias; any other node gets its
 * output shape, with its attributes checked against its input shapes. */
int bgr_fold_node(struct bgr_graph *g, struct bgr_node *nd, struct bgr_error *err);

#endif
