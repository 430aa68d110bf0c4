"""A pickle interpreter of our own: it reads opcodes, builds plain data, and calls only the handlers it is given.

Why not `pickle.Unpickler` with an allowlisting `find_class`: the C unpickler applies BUILD to whatever an allowed
call returned (numpy's `dtype.__setstate__` / `ndarray.__setstate__` then read and write outside memory; a
function's `__dict__`/`__defaults__` can be set), hashes dict keys and set members of any depth in C (10^6 nested
tuples overflow the C stack: a segfault, not an exception), and offers no hook to bound nesting, element counts or
bytes before it allocates. Here every opcode is a few lines of Python that check what they may touch.

Values are *data* (None, bool, int, float, str, bytes, bytearray, tuple, list, dict, set, frozenset and what the
handlers return: OrderedDict, EasyDict, persistent records, numpy arrays and scalars, torch tensors) or *internal*
(`Internal`: a global's token, a numpy dtype spec, an array being built, a torch storage). Internal values may only
sit directly in a tuple that is then a call's arguments, a BUILD's state or a persistent id; anywhere else (a list,
a dict, a set, a nested tuple, the result) they are refused.

Opcodes (pickletools names), protocols 0-5:
- PROTO (≤ 5), FRAME (length ≤ what is left; the bytes are read in order anyway), STOP (exactly one data value on
  the stack and no open MARK; bytes after it are refused).
- INT, BININT, BININT1, BININT2, LONG, LONG1, LONG4: ints of at most `max_int_bytes` bytes (text: that many digits
  ×2.5). NONE, NEWTRUE, NEWFALSE. FLOAT, BINFLOAT.
- STRING, BINSTRING, SHORT_BINSTRING (Python 2 str): ASCII only. UNICODE, BINUNICODE, SHORT_BINUNICODE, BINUNICODE8.
  BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8. Every length is checked against the bytes left in the input, and
  counted in the byte budget, before anything is read or allocated. NEXT_BUFFER, READONLY_BUFFER: refused.
- EMPTY_TUPLE, TUPLE, TUPLE1-3; EMPTY_LIST, LIST, APPEND, APPENDS; EMPTY_DICT, DICT, SETITEM, SETITEMS; EMPTY_SET,
  ADDITEMS, FROZENSET. Dict keys and set members must be plain scalars (None, bool, int, float, str and bytes of at
  most 4096) or flat tuples of at most `max_key_tuple` of them. APPEND(S) only on lists, SETITEM(S) only on dicts
  (OrderedDict and EasyDict included), ADDITEMS only on sets, and only before the container is *sealed* (see below).
- MARK, POP, POP_MARK, DUP; GET, BINGET, LONG_BINGET, PUT, BINPUT, LONG_BINPUT, MEMOIZE (an entry counts as an
  element; a missing key is refused).
- GLOBAL, STACK_GLOBAL: looked up in the caller's table (module, name) → `Global` token; any other name is refused,
  naming it. Nothing is imported.
- REDUCE: only on a `Global` with a `reduce` handler, arguments a tuple. NEWOBJ: only on a `Global` with a `newobj`
  handler. BUILD: only on an internal value with a `build` method (the handlers decide; each builds once).
- PERSID, BINPERSID: only when the caller gives a `persistent_load`.
- INST, OBJ, NEWOBJ_EX, EXT1, EXT2, EXT4 and unknown opcodes: refused.

A list, dict or set is sealed once it is put inside something else (an element, a call's argument, a BUILD's
state); changing it afterwards is refused, so the result has no cycles and each container's depth and tree size
("weight": a shared object counts at every place it appears) are final when sealed. Both are capped, as are
opcodes, elements and bytes, so any walk of the result is bounded. Every refusal is an `UnsafePickleError` (a cap:
`PickleLimitError`) naming the byte offset.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from models.stylegan3.errors import PickleLimitError, UnsafePickleError
from models.stylegan3.pickle_io import FileReader, Reader

__all__ = ["Budget", "FileReader", "Global", "Internal", "Limits", "Machine", "Reader", "Record", "hashable"]

_SCALARS = (type(None), bool, int, float, str, bytes)


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 3 << 30
    max_bytes: int = 4 << 30  # str/bytes payloads, arrays and tensors, in total
    max_ops: int = 4_000_000
    max_items: int = 2_000_000  # container elements and memo entries, in total
    max_depth: int = 64
    max_weight: int = 5_000_000
    max_int_bytes: int = 32
    max_line: int = 1 << 20  # text opcodes (protocol 0)
    max_key_tuple: int = 8


_MAX_KEY_TEXT = 4096  # a name, not a document: names get joined into messages and dotted paths


def _scalar_key(value: Any) -> bool:
    return type(value) in _SCALARS and not (type(value) in (str, bytes) and len(value) > _MAX_KEY_TEXT)


def hashable(value: Any, max_tuple: int = 8) -> bool:
    """A plain scalar (text at most 4096 long), or a flat tuple of at most `max_tuple` of them: what may be a dict
    key or a set member."""
    if _scalar_key(value):
        return True
    return type(value) is tuple and len(value) <= max_tuple and all(_scalar_key(v) for v in value)


class Budget:
    """What one file may still spend; shared by the pickles nested inside it (torch storage blobs)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bytes = self.items = self.ops = 0

    def take_bytes(self, n: int, what: str) -> None:
        self.bytes += n
        if n < 0 or self.bytes > self.limits.max_bytes:
            raise PickleLimitError(f"{what}: over the {self.limits.max_bytes}-byte budget")

    def take_items(self, n: int) -> None:
        self.items += n
        if self.items > self.limits.max_items:
            raise PickleLimitError(f"over {self.limits.max_items} elements")


class Internal:
    """A value that exists only while reading (see the module docstring for where it may appear)."""

    __slots__ = ()

    def describe(self) -> str:
        return type(self).__name__


class Global(Internal):
    """What GLOBAL pushes for an allowed name: never the real object, only the handlers we wrote for it."""

    __slots__ = ("module", "name", "newobj", "reduce")

    def __init__(
        self,
        module: str,
        name: str,
        reduce: Callable[[tuple[Any, ...]], Any] | None = None,
        newobj: Callable[[tuple[Any, ...]], Any] | None = None,
    ) -> None:
        self.module, self.name, self.reduce, self.newobj = module, name, reduce, newobj

    def describe(self) -> str:
        return f"{self.module}.{self.name}"


class Record:
    """Base of immutable data a handler builds from sealed arguments (its depth and weight are its arguments')."""

    __slots__ = ()


class _Node:
    __slots__ = ("depth", "sealed", "tainted", "weight")

    def __init__(self, depth: int, weight: int, sealed: bool, tainted: bool) -> None:
        self.depth, self.weight, self.sealed, self.tainted = depth, weight, sealed, tainted


Handlers = Mapping[tuple[str, str], Global]


def refuse(message: str) -> UnsafePickleError:
    return UnsafePickleError(message)


class Machine:
    """One pickle: `Machine(reader, globals_, budget).load()`."""

    def __init__(
        self,
        reader: Reader,
        globals_: Handlers,
        budget: Budget,
        persistent_load: Callable[[Any], Any] | None = None,
        hint: Callable[[str, str], str] = lambda module, name: "",
        internal_result: bool = False,
    ) -> None:
        self.r, self.globals, self.budget, self.limits = reader, globals_, budget, budget.limits
        self.persistent_load, self.hint, self.internal_result = persistent_load, hint, internal_result
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self._nodes: dict[int, _Node] = {}
        self._keep: list[Any] = []  # tracked objects stay alive, so their ids are never reused while reading
        from models.stylegan3.pickle_ops import OPCODES  # the opcode bodies live beside this file (they import us)

        self._ops = OPCODES

    # --- the loop -----------------------------------------------------------------------------------------------

    def load(self) -> Any:
        while True:
            start = self.r.pos
            self.budget.ops += 1
            if self.budget.ops > self.limits.max_ops:
                raise PickleLimitError(f"over {self.limits.max_ops} opcodes")
            code = self.r.byte()
            if code == 0x2E:  # STOP
                return self._stop()
            op = self._ops.get(code)
            if op is None:
                raise refuse(f"opcode {bytes([code])!r} is not allowed (at byte {start})")
            try:
                op(self)
            except UnsafePickleError as exc:
                if "(at byte" in str(exc):
                    raise
                raise type(exc)(f"{exc} (at byte {start})") from None

    def _stop(self) -> Any:
        if self.marks or len(self.stack) != 1:
            raise refuse("STOP with a malformed stack")
        value = self.stack.pop()
        if not self.internal_result:
            self.member(value)
        return value

    # --- stack ----------------------------------------------------------------------------------------------------

    def push(self, value: Any) -> None:
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise refuse("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise refuse("stack underflow")
        return self.stack[-1]

    def mark(self) -> None:
        if len(self.marks) >= 4 * self.limits.max_depth:
            raise PickleLimitError("too many open MARKs")
        self.marks.append(self.stack)
        self.stack = []

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise refuse("no MARK to pop")
        items, self.stack = self.stack, self.marks.pop()
        return items

    # --- tracking: sealing, depth, weight -----------------------------------------------------------------------

    def track(self, obj: Any, depth: int, weight: int, *, sealed: bool = False, tainted: bool = False) -> Any:
        if depth > self.limits.max_depth:
            raise PickleLimitError(f"nesting deeper than {self.limits.max_depth}")
        if weight > self.limits.max_weight:
            raise PickleLimitError(f"more than {self.limits.max_weight} values once shared ones are counted")
        self._nodes[id(obj)] = _Node(depth, weight, sealed, tainted)
        self._keep.append(obj)
        return obj

    def node(self, obj: Any) -> _Node | None:
        if isinstance(obj, tuple | list | dict | set | frozenset | Record):
            return self._nodes.get(id(obj))
        return None

    def member(self, value: Any, *, in_tuple: bool = False) -> tuple[int, int, bool]:
        """`value` goes inside something: check it may, seal it; its (depth, weight, internal?)."""
        if isinstance(value, Internal):
            if not in_tuple:
                raise refuse(f"{value.describe()} cannot be stored as data")
            return 0, 1, True
        node = self.node(value)
        if node is None:
            return 0, 1, False
        if node.tainted:
            raise refuse("a tuple holding internal values can only be a call's arguments")
        node.sealed = True
        return node.depth, node.weight, False

    def mutable(self, target: Any, kind: type) -> _Node:
        node = self.node(target)
        if not isinstance(target, kind) or node is None:
            raise refuse(f"cannot add items to a {type(target).__name__}")
        if node.sealed:
            raise refuse(f"a {type(target).__name__} cannot change once it is inside another value")
        return node

    def grow(self, node: _Node, depth: int, weight: int) -> None:
        node.depth, node.weight = max(node.depth, depth + 1), node.weight + weight
        if node.depth > self.limits.max_depth:
            raise PickleLimitError(f"nesting deeper than {self.limits.max_depth}")
        if node.weight > self.limits.max_weight:
            raise PickleLimitError(f"more than {self.limits.max_weight} values once shared ones are counted")

    def key(self, value: Any) -> Any:
        """Dict keys and set members: hashing them can neither recurse deeply nor run code."""
        if not hashable(value, self.limits.max_key_tuple):
            raise refuse(f"a {type(value).__name__} cannot be a dict key or set member")
        return value

    def make_tuple(self, items: list[Any]) -> tuple[Any, ...]:
        depth, weight, tainted = 1, 1, False
        for item in items:
            d, w, t = self.member(item, in_tuple=True)
            depth, weight, tainted = max(depth, d + 1), weight + w, tainted or t
        self.budget.take_items(len(items))
        return self.track(tuple(items), depth, weight, sealed=True, tainted=tainted)

    def adopt(self, result: Any, args: tuple[Any, ...]) -> Any:
        """Track what a handler returned: new containers start unsealed, records carry their arguments' size."""
        if isinstance(result, Record):
            node = self.node(args)
            depth, weight = (node.depth, node.weight) if node else (1, 1)
            return self.track(result, depth + 1, weight + 1, sealed=True)
        if isinstance(result, list | dict | set | frozenset):
            self.budget.take_items(len(result))
            # Handlers fill containers only with scalars (set members), so one level deep.
            return self.track(result, 1, 1 + len(result), sealed=isinstance(result, frozenset))
        return result

    def global_(self, module: str, name: str) -> Global:
        if module == "__builtin__":  # protocol 0-2 spelling of builtins
            module = "builtins"
        found = self.globals.get((module, name))
        if found is None:
            raise refuse(f"refused global {module}.{name}{self.hint(module, name)}")
        return found

    def text(self, data: bytes, encoding: str = "utf-8") -> str:
        try:
            return data.decode(encoding, "surrogatepass" if encoding == "utf-8" else "strict")
        except UnicodeDecodeError:
            raise refuse(f"text that is not {encoding}") from None

    def escaped(self, data: bytes) -> bytes:
        try:
            return codecs.escape_decode(data)[0]  # type: ignore[attr-defined,no-any-return]
        except ValueError:
            raise refuse("malformed STRING literal") from None
