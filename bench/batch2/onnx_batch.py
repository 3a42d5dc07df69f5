#!/usr/bin/env python3
"""Copy an ONNX model with its graph input's batch dimension set to N.

Usage: onnx_batch.py IN.onnx N OUT.onnx

bgremover's engine builds every primitive for the input shape the model
file declares, so a copy declaring N x 3 x H x W makes the unchanged engine
run the whole network at batch N (bench/batch2/run times it against batch 1).
Only the one varint holding the input's first dim_value is rewritten
(protobuf wire format, no onnx package needed); the rest of the file is
copied byte for byte, so N must encode to as many bytes as the old value
(1..127 when the file says 1).
"""
import sys


def varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def fields(buf, start, end):
    """(field, wire type, value start, value end or int value) of a message."""
    i = start
    while i < end:
        key, i = varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            j = i
            v, i = varint(buf, i)
            yield f, wt, j, i
        elif wt == 2:
            n, i = varint(buf, i)
            yield f, wt, i, i + n
            i += n
        elif wt == 1:
            yield f, wt, i, i + 8
            i += 8
        elif wt == 5:
            yield f, wt, i, i + 4
            i += 4
        else:
            raise ValueError(f"wire type {wt} at byte {i}")


def sub(buf, s, e, field):
    return [(a, b) for f, wt, a, b in fields(buf, s, e) if f == field and wt == 2]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, n, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    buf = bytearray(open(src, "rb").read())
    (gs, ge), = sub(buf, 0, len(buf), 7)  # ModelProto.graph
    inits = set()
    for a, b in sub(buf, gs, ge, 5):  # GraphProto.initializer
        for c, d in sub(buf, a, b, 8):  # TensorProto.name
            inits.add(bytes(buf[c:d]))
    inputs = []
    for a, b in sub(buf, gs, ge, 11):  # GraphProto.input: ValueInfoProto
        (c, d), = sub(buf, a, b, 1)  # name
        if bytes(buf[c:d]) not in inits:
            inputs.append((bytes(buf[c:d]).decode(), a, b))
    if len(inputs) != 1:
        sys.exit(f"expected one graph input, found {len(inputs)}")
    name, a, b = inputs[0]
    (ts, te), = sub(buf, a, b, 2)  # type: TypeProto
    (tt, tte), = sub(buf, ts, te, 1)  # tensor_type
    (ss, se), = sub(buf, tt, tte, 2)  # shape
    (d0, d0e), = sub(buf, ss, se, 1)[:1]  # first dim
    hits = [(f, wt, p, q) for f, wt, p, q in fields(buf, d0, d0e) if f == 1 and wt == 0]
    if not hits:
        sys.exit(f"input '{name}': the batch dimension is not a fixed value")
    _, _, p, q = hits[0]
    old, _ = varint(buf, p)
    enc = bytearray()
    v = n
    while True:
        enc.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            break
    if n < 1 or len(enc) != q - p:
        sys.exit(f"N={n} does not fit the {q - p} byte(s) of the old value {old}")
    buf[p:q] = enc
    open(dst, "wb").write(buf)
    print(f"{dst}: input '{name}' batch {old} -> {n}")


if __name__ == "__main__":
    main()
