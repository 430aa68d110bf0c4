"""Opcode bodies for framing, numbers, text and bytes (the rules are in pickle_vm's docstring); `pickle_ops` adds
the structural ones to the same table."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from models.stylegan3.errors import PickleLimitError, UnsafePickleError

if TYPE_CHECKING:
    from models.stylegan3.pickle_vm import Machine

OPCODES: dict[int, Callable[[Machine], None]] = {}


def op(code: bytes) -> Callable[[Callable[[Machine], None]], Callable[[Machine], None]]:
    def register(fn: Callable[[Machine], None]) -> Callable[[Machine], None]:
        OPCODES[code[0]] = fn
        return fn

    return register


def refuse(message: str) -> UnsafePickleError:
    return UnsafePickleError(message)


# --- framing ------------------------------------------------------------------------------------------------------


@op(b"\x80")
def proto(vm: Machine) -> None:
    if vm.r.read(1)[0] > 5:
        raise refuse("unknown pickle protocol")


@op(b"\x95")
def frame(vm: Machine) -> None:
    if vm.r.unpack("<Q") > vm.r.left:
        raise refuse("frame longer than the input")


# --- scalars ------------------------------------------------------------------------------------------------------


def int_text(vm: Machine, line: bytes) -> int:
    if len(line) > vm.limits.max_int_bytes * 5 // 2 + 2:
        raise PickleLimitError("integer literal too long")
    try:
        return int(line)
    except ValueError:
        raise refuse("malformed integer literal") from None


def _long_bytes(vm: Machine, n: int) -> int:
    if not 0 <= n <= vm.limits.max_int_bytes:
        raise PickleLimitError(f"integer of {n} bytes")
    return int.from_bytes(vm.r.read(n), "little", signed=True)


@op(b"I")
def int_(vm: Machine) -> None:
    line = vm.r.readline(vm.limits.max_line)
    vm.push(line == b"01" if line in (b"00", b"01") else int_text(vm, line))  # protocol 0 spells bools I00/I01


@op(b"L")
def long(vm: Machine) -> None:
    line = vm.r.readline(vm.limits.max_line)
    vm.push(int_text(vm, line[:-1] if line.endswith(b"L") else line))


@op(b"J")
def binint(vm: Machine) -> None:
    vm.push(vm.r.unpack("<i"))


@op(b"K")
def binint1(vm: Machine) -> None:
    vm.push(vm.r.read(1)[0])


@op(b"M")
def binint2(vm: Machine) -> None:
    vm.push(vm.r.unpack("<H"))


@op(b"\x8a")
def long1(vm: Machine) -> None:
    vm.push(_long_bytes(vm, vm.r.read(1)[0]))


@op(b"\x8b")
def long4(vm: Machine) -> None:
    vm.push(_long_bytes(vm, vm.r.unpack("<i")))


@op(b"N")
def none(vm: Machine) -> None:
    vm.push(None)


@op(b"\x88")
def newtrue(vm: Machine) -> None:
    vm.push(True)


@op(b"\x89")
def newfalse(vm: Machine) -> None:
    vm.push(False)


@op(b"F")
def float_(vm: Machine) -> None:
    line = vm.r.readline(64)
    try:
        vm.push(float(line))
    except ValueError:
        raise refuse("malformed float literal") from None


@op(b"G")
def binfloat(vm: Machine) -> None:
    vm.push(vm.r.unpack(">d"))


# --- strings and bytes --------------------------------------------------------------------------------------------


def _payload(vm: Machine, n: int, what: str) -> bytes:
    if n < 0 or n > vm.r.left:
        raise refuse(f"{what} of {n} bytes, {vm.r.left} left in the input")
    vm.budget.take_bytes(n, what)
    return vm.r.read(n)


@op(b"S")
def string(vm: Machine) -> None:
    line = vm.r.readline(vm.limits.max_line)
    if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
        raise refuse("malformed STRING literal")
    vm.budget.take_bytes(len(line), "string")
    vm.push(vm.text(vm.escaped(line[1:-1]), "ascii"))


@op(b"T")
def binstring(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.unpack("<i"), "string"), "ascii"))


@op(b"U")
def short_binstring(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.read(1)[0], "string"), "ascii"))


@op(b"V")
def unicode(vm: Machine) -> None:
    line = vm.r.readline(vm.limits.max_line)
    vm.budget.take_bytes(len(line), "string")
    vm.push(vm.text(line, "raw-unicode-escape"))


@op(b"X")
def binunicode(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.unpack("<I"), "string")))


@op(b"\x8c")
def short_binunicode(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.read(1)[0], "string")))


@op(b"\x8d")
def binunicode8(vm: Machine) -> None:
    vm.push(vm.text(_payload(vm, vm.r.unpack("<Q"), "string")))


@op(b"B")
def binbytes(vm: Machine) -> None:
    vm.push(_payload(vm, vm.r.unpack("<I"), "bytes"))


@op(b"C")
def short_binbytes(vm: Machine) -> None:
    vm.push(_payload(vm, vm.r.read(1)[0], "bytes"))


@op(b"\x8e")
def binbytes8(vm: Machine) -> None:
    vm.push(_payload(vm, vm.r.unpack("<Q"), "bytes"))


@op(b"\x96")
def bytearray8(vm: Machine) -> None:
    vm.push(bytearray(_payload(vm, vm.r.unpack("<Q"), "bytearray")))
