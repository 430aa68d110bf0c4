"""Deterministic fuzz inputs: `fuzz_case(seed)` is the same bytes on every machine.

Even seeds mutate a valid input (release-layout network pickles as the 2021 files and numpy 2 re-saves are, value
pickles of every protocol, the short hostile payloads): mostly at opcode boundaries, of the outer pickle and of the
torch storage blobs inside it, where a change alters structure rather than weights. Odd seeds are random opcode
streams whose arguments are drawn to be plausible, and whose globals include every allowed name.
"""

from __future__ import annotations

import functools
import pickle
import pickletools
import random
import struct
from collections import OrderedDict

import numpy as np
import torch

INTERESTING_INTS = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1)
ALLOWED_GLOBALS = (
    ("torch_utils.persistence", "_reconstruct_persistent_obj"),
    ("dnnlib.util", "EasyDict"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("_codecs", "encode"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("torch.storage", "_load_from_bytes"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("builtins", "eval"),
    ("os", "system"),
)


@functools.cache
def corpus() -> list[tuple[bytes, list[int]]]:
    """Valid inputs, each with the offsets where an opcode starts (in the outer pickle and in storage blobs)."""
    from models.stylegan3.release_pickle import dumps
    from models.stylegan3.testing import release_snapshot, tiny_generator
    from tests.models.stylegan3.hostile import CASES

    torch.manual_seed(0)
    values = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "s": np.float64(2.5),
        "b": np.bool_(True),
        "t": torch.arange(4.0)[1:],
        "p": torch.nn.Parameter(torch.randn(2, 2), requires_grad=False),
        "set": {1, "x"},
        "od": OrderedDict(k=(1, 2.0, None)),
    }
    inputs = [
        dumps(release_snapshot(tiny_generator("t", channels=4, seed=3)), 4, "numpy1"),
        dumps(release_snapshot(tiny_generator("r", c_dim=2, channels=4, seed=4)), 2, "numpy2"),
        *(pickle.dumps(values, protocol=p) for p in range(6)),
        *(fn() for name, fn in CASES.items() if "nested" not in name and "large" not in name),
    ]
    return [(data, _opcode_offsets(data)) for data in inputs]


def _opcode_offsets(data: bytes, base: int = 0) -> list[int]:
    offsets: list[int] = []
    pos = 0
    while pos < len(data):
        try:
            ops = list(pickletools.genops(data[pos:]))
        except Exception:
            break
        for op, arg, at in ops:
            offsets.append(base + pos + at)
            if op.name in ("BINBYTES", "SHORT_BINBYTES") and isinstance(arg, bytes) and arg[:2] == b"\x80\x02":
                start = pos + at + (5 if op.name == "BINBYTES" else 2)  # past the opcode and its length
                offsets.extend(_opcode_offsets(arg, base + start))
        pos += ops[-1][2] + 1 if ops else len(data)
    return offsets


def _mutate(rng: random.Random, data: bytearray, offsets: list[int], other: bytes) -> None:
    if not data:
        data += _random_ops(rng, 1)
    near = [o for o in offsets if o < len(data)] or [0]
    pos = rng.choice(near) if rng.random() < 0.85 else rng.randrange(len(data))
    kind = rng.randrange(8)
    if kind == 0:  # flip a bit
        data[pos] ^= 1 << rng.randrange(8)
    elif kind == 1:  # another byte, often an opcode
        data[pos] = rng.choice([*range(0x80, 0x98), *b"()tlLIJKMNRbcdghjpqrsu.]}ae01234\x85\x86\x87SXBCUVF"])
    elif kind == 2:  # an interesting number in the opcode's argument
        width = rng.choice((1, 2, 4, 8))
        value = rng.choice(INTERESTING_INTS) % (1 << (8 * width))
        data[pos + 1 : pos + 1 + width] = value.to_bytes(width, "little")
    elif kind == 3:
        del data[pos : pos + rng.randrange(1, 17)]
    elif kind == 4:  # repeat a stretch elsewhere
        stretch = bytes(data[pos : pos + rng.randrange(1, 64)])
        at = rng.choice(near)
        data[at:at] = stretch * rng.randrange(1, 4)
    elif kind == 5:
        data[pos:pos] = _random_ops(rng, rng.randrange(1, 6))
    elif kind == 6:
        del data[pos:]
    else:  # the head of this input, the tail of another
        cut = rng.randrange(max(1, len(other)))
        data[pos:] = other[cut:]


def _random_ops(rng: random.Random, count: int) -> bytes:
    out = bytearray()
    for _ in range(count):
        op = rng.randrange(10)
        if op == 0:
            module, name = rng.choice(ALLOWED_GLOBALS)
            out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        elif op == 1:
            out += b"J" + struct.pack("<i", rng.choice(INTERESTING_INTS) % 2**31 * rng.choice((1, -1)))
        elif op == 2:
            text = rng.choice(("f8", "<", "b", "O", "class", "storage", "cpu", "G_ema", "Generator", "i8", "V8"))
            out += b"X" + struct.pack("<I", len(text)) + text.encode()
        elif op == 3:
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 24)))
            out += b"C" + bytes([len(blob)]) + blob
        elif op == 4:
            out += bytes([rng.choice(b"h\x94q")]) + bytes([rng.randrange(8)])
        else:
            out += bytes([rng.choice(b"()tlNRbsua]}e2\x85\x86\x87\x88\x89\x8f\x90\x91\x81\x930.")])
    return bytes(out)


def fuzz_case(seed: int) -> bytes:
    rng = random.Random(seed)
    if seed % 2:
        return b"\x80" + bytes([rng.randrange(6)]) + _random_ops(rng, rng.randrange(1, 300)) + b"."
    entries = corpus()
    data, offsets = entries[rng.randrange(len(entries))]
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        _mutate(rng, buf, offsets, entries[rng.randrange(len(entries))][0])
    return bytes(buf)


# --- semantic cases: valid pickles whose parsed values are then changed -----------------------------------------


@functools.cache
def parsed_corpus() -> tuple[dict, ...]:
    """The release-layout corpus entries as the reader returns them (values it could return from some file)."""
    from models.stylegan3.unpickler import safe_loads

    return tuple(safe_loads(data) for data, _ in corpus()[:2])


def _stubs(stub: object) -> list:
    from models.stylegan3.unpickler import PersistentStub

    found = [stub]
    for child in getattr(stub, "children", dict)().values():
        if isinstance(child, PersistentStub):
            found += _stubs(child)
    return found


def _value(rng: random.Random, stubs: list) -> object:
    from models.stylegan3.unpickler import EasyDict

    pool = [
        None,
        True,
        0,
        -1,
        7,
        2**31,
        2**70,
        1e308,
        float("nan"),
        float("inf"),
        "x",
        "L0_36_8",
        b"x",
        np.float64("nan"),
        np.int64(-3),
        np.zeros(3),
        np.zeros(100),
        np.array([True]),
        [],
        [1, 2],
        {},
        {"num_layers": 99},
        (),
        (1, "a"),
        EasyDict(lr_multiplier=-1),
        OrderedDict(),
        torch.zeros([]),
        torch.zeros(rng.randrange(1, 5), rng.randrange(1, 5)),
        torch.ones(3, dtype=torch.int64),
        torch.zeros(2, dtype=torch.bool),
    ]
    if rng.random() < 0.2:
        import copy

        return copy.deepcopy(rng.choice(stubs))  # a module where something else belongs (never an ancestor: no cycle)
    return rng.choice(pool)


def semantic_case(seed: int) -> dict:
    import copy

    rng = random.Random(seed)
    snapshot = copy.deepcopy(rng.choice(parsed_corpus()))
    stubs = _stubs(snapshot["G_ema"])
    for _ in range(rng.choice((1, 1, 2, 3))):
        stub = rng.choice(stubs)
        place = rng.choice(("state", "_init_kwargs", "_modules", "_parameters", "_buffers"))
        target = stub.state if place == "state" else stub.state.get(place)
        if not isinstance(target, dict):
            continue
        keys = list(target)
        key = rng.choice(keys) if keys and rng.random() < 0.8 else rng.choice(("new", 3, ("a", 1), "L99_1_1"))
        if rng.random() < 0.15:
            target.pop(key, None)
        else:
            target[key] = _value(rng, stubs)
    return snapshot
