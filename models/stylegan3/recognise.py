"""Tell a StyleGAN3 generator from other networks of the same pickle format, by what it is.

The release records bare class names (`Generator`, `SynthesisNetwork`...), which StyleGAN2, StyleGAN3 and
StyleGAN-XL share, and never the module. So a StyleGAN3 generator is recognised by its module tree: a `Generator`
holding exactly `mapping` (a MappingNetwork of FullyConnectedLayer fc0..fcN, plus `embed` when conditional) and
`synthesis` (a SynthesisNetwork holding `input`, a SynthesisInput, and SynthesisLayer L0..LN named
L{index}_{size}_{channels}). Anything else is refused with what was found.
"""

from __future__ import annotations

import re
from typing import Any

from models.stylegan3.errors import NetworkFormatError
from models.stylegan3.unpickler import PersistentStub

_LAYER = re.compile(r"L(\d{1,3})_(\d{1,5})_(\d{1,5})")
_BLOCK = re.compile(r"b(\d{1,5})")
_FC = re.compile(r"fc(\d{1,3})")


def _kind(value: Any) -> str:
    return value.class_name if isinstance(value, PersistentStub) else type(value).__name__


def _names(names: list[str], limit: int = 6) -> str:
    return ", ".join(name[:60] for name in names[:limit]) + (", …" if len(names) > limit else "")


def check_generator(stub: Any, where: str) -> None:
    """NetworkFormatError unless `stub` has a StyleGAN3 generator's module tree; `where` names it ('x.pkl: G_ema')."""
    if not isinstance(stub, PersistentStub):
        raise NetworkFormatError(f"{where} is a {type(stub).__name__}, not a network")
    if stub.class_name == "SuperresGenerator":
        raise NetworkFormatError(f"{where} is a StyleGAN-XL super-resolution generator (SuperresGenerator)")
    if stub.class_name != "Generator":
        raise NetworkFormatError(f"{where} is a {stub.class_name}, not a generator")  # class names are ≤ 100 long
    children = stub.children()
    synthesis, mapping = children.get("synthesis"), children.get("mapping")
    if set(children) != {"synthesis", "mapping"} or not isinstance(synthesis, PersistentStub):
        raise NetworkFormatError(f"{where} is a Generator of modules {_names(sorted(children))}, not StyleGAN3's")
    _check_synthesis(synthesis, where)
    _check_mapping(mapping, where)


def _check_synthesis(synthesis: PersistentStub, where: str) -> None:
    children = synthesis.children()
    blocks = [k for k in children if _BLOCK.fullmatch(k)]
    if blocks and "input" not in children:
        kind = _kind(children[blocks[0]])
        raise NetworkFormatError(
            f"{where} is a StyleGAN2 generator (synthesis blocks {blocks[0]}…{blocks[-1]} of class {kind}, no "
            "Fourier-feature input), not a StyleGAN3 generator"
        )
    if synthesis.class_name != "SynthesisNetwork" or _kind(children.get("input")) != "SynthesisInput":
        found = f"{synthesis.class_name} of modules {_names(list(children))}"
        raise NetworkFormatError(f"{where}: synthesis is a {found}, not StyleGAN3's (input: SynthesisInput, L0…)")
    layers = [k for k in children if k != "input"]
    indices = []
    for name in layers:
        match = _LAYER.fullmatch(name)
        if match is None or _kind(children[name]) != "SynthesisLayer":
            raise NetworkFormatError(
                f"{where}: synthesis.{name[:60]} ({_kind(children[name])}) is not a StyleGAN3 layer"
            )
        indices.append(int(match[1]))
    if not layers or indices != list(range(len(layers))):
        raise NetworkFormatError(f"{where}: synthesis layers {_names(layers)} are not L0…LN in order")


def _check_mapping(mapping: Any, where: str) -> None:
    if _kind(mapping) != "MappingNetwork":
        raise NetworkFormatError(f"{where}: mapping is a {_kind(mapping)}, not a MappingNetwork")
    children = mapping.children()
    extra = [k for k in children if k != "embed" and not _FC.fullmatch(k)]
    if extra:
        hint = " (StyleGAN-XL's class embedding)" if "embed_proj" in extra else ""
        raise NetworkFormatError(f"{where}: mapping has modules {_names(extra)}{hint}, not a StyleGAN3 mapping")
    for name, child in children.items():
        if child is not None and _kind(child) != "FullyConnectedLayer":
            raise NetworkFormatError(f"{where}: mapping.{name[:60]} is a {_kind(child)}, not a FullyConnectedLayer")
