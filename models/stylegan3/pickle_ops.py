"""Opcode bodies for containers, the stack, the memo, globals, calls and state (the rules are in pickle_vm's
docstring), added to `pickle_scalars`' table: `OPCODES` here is the whole instruction set."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from models.stylegan3.pickle_scalars import OPCODES, int_text, refuse
from models.stylegan3.pickle_scalars import op as _op
from models.stylegan3.pickle_vm import Global, Internal

if TYPE_CHECKING:
    from models.stylegan3.pickle_vm import Machine

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
            raise refuse("stack underflow")
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
        raise refuse("odd number of items for a dict")
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
        raise refuse(f"memo entry {index} does not exist") from None


def _put(vm: Machine, index: int) -> None:
    if index < 0:
        raise refuse("negative memo index")
    value = vm.top()
    vm.budget.take_items(1)
    vm.memo[index] = value
    if isinstance(value, Internal) and hasattr(value, "memo_keys"):
        value.memo_keys.append(index)  # an array being built: its memo entries become the array once built


@_op(b"g")
def get(vm: Machine) -> None:
    _get(vm, int_text(vm, vm.r.readline(64)))


@_op(b"h")
def binget(vm: Machine) -> None:
    _get(vm, vm.r.read(1)[0])


@_op(b"j")
def long_binget(vm: Machine) -> None:
    _get(vm, vm.r.unpack("<I"))


@_op(b"p")
def put(vm: Machine) -> None:
    _put(vm, int_text(vm, vm.r.readline(64)))


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
        raise refuse("STACK_GLOBAL needs two strings")
    vm.push(vm.global_(module, name))


def _call(vm: Machine, kind: str) -> None:
    args, func = vm.pop(), vm.pop()
    handler = getattr(func, kind, None) if isinstance(func, Global) else None
    if handler is None:
        what = func.describe() if isinstance(func, Global) else f"a {type(func).__name__}"
        raise refuse(f"{'calling' if kind == 'reduce' else 'instantiating'} {what} is not allowed")
    if type(args) is not tuple:
        raise refuse(f"{func.describe()} needs a tuple of arguments")
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
        raise refuse(f"BUILD (setting state) on a {type(target).__name__} is not allowed")
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
        raise refuse("persistent ids are not allowed here")
    vm.push(vm.persistent_load(pid))
