"""The opcode bodies of `pickle_vm.Machine`, one small function each (the rules are in pickle_vm's docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from models.stylegan3.errors import PickleLimitError, UnsafePickleError
from models.stylegan3.pickle_vm import Global, Internal

if TYPE_CHECKING:
    from models.stylegan3.pickle_vm import Machine

OPCODES: dict[int, Callable[[Machine], None]] = {}


def _op(code: bytes) -> Callable[[Callable[[Machine], None]], Callable[[Machine], None]]:
    def register(fn: Callable[[Machine], None]) -> Callable[[Machine], None]:
        OPCODES[code[0]] = fn
        return fn

    return register


def _refuse(message: str) -> UnsafePickleError:
    return UnsafePickleError(message)


# --- framing ------------------------------------------------------------------------------------------------------


@_op(b"\x80")
def proto(vm: Machine) -> None:
    if vm.r.read(1)[0] > 5:
        raise _refuse("unknown pickle protocol")


@_op(b"\x95")
def frame(vm: Machine) -> None:
    if vm.r.unpack("<Q") > vm.r.left:
        raise _refuse("frame longer than the input")


# --- scalars ------------------------------------------------------------------------------------------------------


def _int_text(vm: Machine, line: bytes) -> int:
    if len(line) > vm.limits.max_int_bytes * 5 // 2 + 2:
        raise PickleLimitError("integer literal too long")
    try:
        return int(line)
    except ValueError:
        raise _refuse("malformed integer literal") from None


def _long_bytes(vm: Machine, n: int) -> int:
    if not 0 <= n <= vm.limits.max_int_bytes:
        raise PickleLimitError(f"integer of {n} bytes")
    return int.from_bytes(vm.r.read(n), "little", signed=True)


@_op(b"I")
def int_(vm: Machine) -> None:
    line = vm.r.readline(vm.limits.max_line)
    vm.push(line == b"01" if line in (b"00", b"01") else _int_text(vm, line))  # protocol 0 spells bools I00/I01


@_op(b"L")
def long(vm: Machine) -> None:
    line = vm.r.readline(vm.limits.max_line)
    vm.push(_int_text(vm, line[:-1] if line.endswith(b"L") else line))


@_op(b"J")
def binint(vm: Machine) -> None:
    vm.push(vm.r.unpack("<i"))


@_op(b"K")
def binint1(vm: Machine) -> None:
    vm.push(vm.r.read(1)[0])


@_op(b"M")
def binint2(vm: Machine) -> None:
    vm.push(vm.r.unpack("<H"))


@_op(b"\x8a")
def long1(vm: Machine) -> None:
    vm.push(_long_bytes(vm, vm.r.read(1)[0]))


@_op(b"\x8b")
def long4(vm: Machine) -> None:
    vm.push(_long_bytes(vm, vm.r.unpack("<i")))


@_op(b"N")
def none(vm: Machine) -> None:
    vm.push(None)


@_op(b"\x88")
def newtrue(vm: Machine) -> None:
    vm.push(True)


@_op(b"\x89")
def newfalse(vm: Machine) -> None:
    vm.push(False)


@_op(b"F")
def float_(vm: Machine) -> None:
    line = vm.r.readline(64)
    try:
        vm.push(float(line))
    except ValueError:
        raise _refuse("malformed float literal") from None


@_op(b"G")
def binfloat(vm: Machine) -> None:
    vm.push(vm.r.unpack(">d"))


# --- strings and bytes --------------------------------------------------------------------------------------------


def _payload(vm: Machine, n: int, what: str) -> bytes:
    if n < 0 or n > vm.r.left:
        raise _refuse(f"{what} of {n} bytes, {vm.r.left} left in the input")
    vm.budget.take_bytes(n, what)
    return vm.r.read(n)


@_op(b"S")
def string(vm: Machine) -> None:
    line = vm.r.readline(vm.limits.max_line)
    if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
        raise _refuse("malformed STRING literal")
    vm.budget.take_bytes(len(line), "string")
    vm.push(vm.text(vm.escaped(line[1:-1]), "ascii"))


@_op(b"T")
def binstring(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.unpack("<i"), "string"), "ascii"))


@_op(b"U")
def short_binstring(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.read(1)[0], "string"), "ascii"))


@_op(b"V")
def unicode(vm: Machine) -> None:
    line = vm.r.readline(vm.limits.max_line)
    vm.budget.take_bytes(len(line), "string")
    vm.push(vm.text(line, "raw-unicode-escape"))


@_op(b"X")
def binunicode(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.unpack("<I"), "string")))


@_op(b"\x8c")
def short_binunicode(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.read(1)[0], "string")))


@_op(b"\x8d")
def binunicode8(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.unpack("<Q"), "string")))


@_op(b"B")
def binbytes(vm: Machine) -> None:
    vm.push(_payload(vm, vm.r.unpack("<I"), "bytes"))


@_op(b"C")
def short_binbytes(vm: Machine) -> None:
    vm.push(_payload(vm, vm.r.read(1)[0], "bytes"))


@_op(b"\x8e")
def binbytes8(vm: Machine) -> None:
    vm.push(_payload(vm, vm.r.unpack("<Q"), "bytes"))


@_op(b"\x96")
def bytearray8(vm: Machine) -> None:
    vm.push(bytearray(_payload(vm, vm.r.unpack("<Q"), "bytearray")))


# --- containers ---------------------------------------------------------------------------------------------------


@_op(b")")
def empty_tuple(vm: Machine) -> None:
    vm.push(vm.make_tuple([]))


@_op(b"t")
def tuple_(vm: Machine) -> None:
    vm.push(vm.make_tuple(vm.pop_mark()))


def _tuple_n(n: int) -> Callable[[Machine], None]:
    def op(vm: Machine) -> None:
        if len(vm.stack) < n:
            raise _refuse("stack underflow")
        items = vm.stack[len(vm.stack) - n :]
        del vm.stack[len(vm.stack) - n :]
        vm.push(vm.make_tuple(items))

    return op


OPCODES[0x85], OPCODES[0x86], OPCODES[0x87] = _tuple_n(1), _tuple_n(2), _tuple_n(3)


@_op(b"]")
def empty_list(vm: Machine) -> None:
    vm.push(vm.track([], 1, 1))


@_op(b"l")
def list_(vm: Machine) -> None:
    target = vm.track([], 1, 1)
    _extend(vm, target, vm.pop_mark())
    vm.push(target)


def _extend(vm: Machine, target: Any, items: list[Any]) -> None:
    sizes = [vm.member(item)[:2] for item in items]  # sealing first: a list appended to itself is then sealed
    node = vm.mutable(target, list)
    vm.budget.take_items(len(items))
    for item, size in zip(items, sizes, strict=True):
        vm.grow(node, *size)
        target.append(item)


@_op(b"a")
def append(vm: Machine) -> None:
    item = vm.pop()
    _extend(vm, vm.top(), [item])


@_op(b"e")
def appends(vm: Machine) -> None:
    items = vm.pop_mark()
    _extend(vm, vm.top(), items)


@_op(b"}")
def empty_dict(vm: Machine) -> None:
    vm.push(vm.track({}, 1, 1))


@_op(b"d")
def dict_(vm: Machine) -> None:
    target = vm.track({}, 1, 1)
    _set_items(vm, target, vm.pop_mark())
    vm.push(target)


def _set_items(vm: Machine, target: Any, items: list[Any]) -> None:
    if len(items) % 2:
        raise _refuse("odd number of items for a dict")
    sizes = [vm.member(value)[:2] for value in items[1::2]]  # sealing first, as in _extend
    node = vm.mutable(target, dict)
    vm.budget.take_items(len(items) // 2)
    for key, value, size in zip(items[::2], items[1::2], sizes, strict=True):
        vm.grow(node, *size)
        target[vm.key(key)] = value


@_op(b"s")
def setitem(vm: Machine) -> None:
    value, key = vm.pop(), vm.pop()
    _set_items(vm, vm.top(), [key, value])


@_op(b"u")
def setitems(vm: Machine) -> None:
    items = vm.pop_mark()
    _set_items(vm, vm.top(), items)


@_op(b"\x8f")
def empty_set(vm: Machine) -> None:
    vm.push(vm.track(set(), 1, 1))


@_op(b"\x90")
def additems(vm: Machine) -> None:
    items = vm.pop_mark()
    target = vm.top()
    node = vm.mutable(target, set)
    vm.budget.take_items(len(items))
    for item in items:
        target.add(vm.key(item))
        node.weight += 1


@_op(b"\x91")
def frozenset_(vm: Machine) -> None:
    items = [vm.key(item) for item in vm.pop_mark()]
    vm.budget.take_items(len(items))
    vm.push(vm.track(frozenset(items), 1, 1 + len(items), sealed=True))


# --- stack and memo -----------------------------------------------------------------------------------------------


@_op(b"(")
def mark(vm: Machine) -> None:
    vm.mark()


@_op(b"0")
def pop(vm: Machine) -> None:
    if vm.stack:
        vm.stack.pop()
    else:
        vm.pop_mark()


@_op(b"1")
def pop_mark(vm: Machine) -> None:
    vm.pop_mark()


@_op(b"2")
def dup(vm: Machine) -> None:
    vm.push(vm.top())


def _get(vm: Machine, index: int) -> None:
    try:
        vm.push(vm.memo[index])
    except KeyError:
        raise _refuse(f"memo entry {index} does not exist") from None


def _put(vm: Machine, index: int) -> None:
    if index < 0:
        raise _refuse("negative memo index")
    value = vm.top()
    vm.budget.take_items(1)
    vm.memo[index] = value
    if isinstance(value, Internal) and hasattr(value, "memo_keys"):
        value.memo_keys.append(index)  # an array being built: its memo entries become the array once built


@_op(b"g")
def get(vm: Machine) -> None:
    _get(vm, _int_text(vm, vm.r.readline(64)))


@_op(b"h")
def binget(vm: Machine) -> None:
    _get(vm, vm.r.read(1)[0])


@_op(b"j")
def long_binget(vm: Machine) -> None:
    _get(vm, vm.r.unpack("<I"))


@_op(b"p")
def put(vm: Machine) -> None:
    _put(vm, _int_text(vm, vm.r.readline(64)))


@_op(b"q")
def binput(vm: Machine) -> None:
    _put(vm, vm.r.read(1)[0])


@_op(b"r")
def long_binput(vm: Machine) -> None:
    _put(vm, vm.r.unpack("<I"))


@_op(b"\x94")
def memoize(vm: Machine) -> None:
    _put(vm, len(vm.memo))


# --- globals, calls, state ----------------------------------------------------------------------------------------


@_op(b"c")
def global_(vm: Machine) -> None:
    module = vm.text(vm.r.readline(256))
    name = vm.text(vm.r.readline(256))
    vm.push(vm.global_(module, name))


@_op(b"\x93")
def stack_global(vm: Machine) -> None:
    name, module = vm.pop(), vm.pop()
    if type(module) is not str or type(name) is not str:
        raise _refuse("STACK_GLOBAL needs two strings")
    vm.push(vm.global_(module, name))


def _call(vm: Machine, kind: str) -> None:
    args, func = vm.pop(), vm.pop()
    handler = getattr(func, kind, None) if isinstance(func, Global) else None
    if handler is None:
        what = func.describe() if isinstance(func, Global) else f"a {type(func).__name__}"
        raise _refuse(f"{'calling' if kind == 'reduce' else 'instantiating'} {what} is not allowed")
    if type(args) is not tuple:
        raise _refuse(f"{func.describe()} needs a tuple of arguments")
    vm.push(vm.adopt(handler(args), args))


@_op(b"R")
def reduce(vm: Machine) -> None:
    _call(vm, "reduce")


@_op(b"\x81")
def newobj(vm: Machine) -> None:
    _call(vm, "newobj")


@_op(b"b")
def build(vm: Machine) -> None:
    state, target = vm.pop(), vm.top()
    builder = getattr(target, "build", None) if isinstance(target, Internal) else None
    if builder is None:
        raise _refuse(f"BUILD (setting state) on a {type(target).__name__} is not allowed")
    if type(state) is not tuple:
        vm.member(state)
    result = vm.stack[-1] = builder(state)
    for index in getattr(target, "memo_keys", ()):
        if vm.memo.get(index) is target:
            vm.memo[index] = result


@_op(b"P")
def persid(vm: Machine) -> None:
    _persistent(vm, vm.text(vm.r.readline(256), "ascii"))


@_op(b"Q")
def binpersid(vm: Machine) -> None:
    _persistent(vm, vm.pop())


def _persistent(vm: Machine, pid: Any) -> None:
    if vm.persistent_load is None:
        raise _refuse("persistent ids are not allowed here")
    vm.push(vm.persistent_load(pid))
