#!/usr/bin/env python3
"""Writes the Redis adapter seeds from the captured Node traffic (shared/vectors/redis-adapter/)
into fuzz/seeds/redis_classic_decode/ (classic adapter and emitter PUBLISH payloads) and
fuzz/seeds/redis_sharded_decode/ (SPUBLISH payloads), plus the hand-made seeds of
sio_connect_auth. Run from anywhere: python3 fuzz/extract-seeds.py [VECTORS_DIR]"""
import json
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
vectors = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "shared", "vectors", "redis-adapter")


def write(target, name, data):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")), "wb") as f:
        f.write(data)


seen = set()
for kind in ("classic", "emitter", "sharded"):
    with open(os.path.join(vectors, kind + ".json")) as f:
        doc = json.load(f)
    for v in doc["vectors"]:
        payload = bytes.fromhex(v.get("payload_hex") or "")
        if not payload or payload in seen or v["command"] not in ("PUBLISH", "SPUBLISH"):
            continue
        seen.add(payload)
        target = "redis_sharded_decode" if v["command"] == "SPUBLISH" else "redis_classic_decode"
        write(target, f"{kind}-{v['scenario']}-{v['seq']}-{v['operation']}", payload)

# sio_connect_auth: first byte = mode (see the target), then the packet or `header 0x1f claims`.
far = 4102444800  # 2100-01-01
auth_seeds = {
    "raw-json-token": b"\x00" + b'0{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig"}',
    "raw-json-nsp-token-number": b"\x00" + b'0/admin,{"token":123}',
    "raw-json-no-auth": b"\x00" + b"0",
    "raw-json-pid-offset": b"\x00" + b'0{"token":"","pid":"x","offset":"y"}',
    # msgpack {type: 0, nsp: "/", data: {token: "a.b.c"}}
    "raw-msgpack-token": b"\x02\x83\xa4type\x00\xa3nsp\xa1/\xa4data\x81\xa5token\xa5a.b.c",
    "signed-valid": b"\x01" + b'{"alg":"HS256","typ":"JWT"}\x1f{"sub":"alice","exp":%d}' % far,
    "signed-header-bearer": b"\x03" + b'{"alg":"HS256"}\x1f{"sub":"bob","exp":%d,"nbf":0}' % far,
    "signed-alg-none": b"\x01" + b'{"alg":"none"}\x1f{"sub":"alice","exp":%d}' % far,
    "signed-alg-rs256": b"\x01" + b'{"alg":"RS256"}\x1f{"sub":"alice","exp":%d}' % far,
    "signed-expired": b"\x01" + b'{"alg":"HS256"}\x1f{"sub":"alice","exp":1}',
    "signed-nbf-future": b"\x01" + b'{"alg":"HS256"}\x1f{"sub":"alice","exp":%d,"nbf":%d}' % (far, far),
    "signed-sub-number": b"\x01" + b'{"alg":"HS256"}\x1f{"sub":42,"exp":%d}' % far,
    "signed-exp-float": b"\x01" + b'{"alg":"HS256"}\x1f{"sub":"a","exp":%d.5}' % far,
    # Found by the long run: accepted (serde skips the unknown claim without checking its UTF-8).
    "signed-invalid-utf8-unknown-claim": b"\x01" + b'{"Aalg":"\xb3S256","sub":"alice","exp":%d}' % far,
    "signed-sub-long": b"\x01" + b'{"alg":"HS256"}\x1f{"sub":"%s","exp":%d}' % (b"x" * 300, far),
}
for name, data in auth_seeds.items():
    write("sio_connect_auth", name, data)
