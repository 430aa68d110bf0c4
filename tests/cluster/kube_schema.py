"""A CRD's OpenAPI v3 schema checked the way the Kubernetes API server checks a custom resource.

A CRD's `openAPIV3Schema` is a Kubernetes *structural schema*: OpenAPI 3.0 schema objects (JSON Schema draft 4 with
`nullable`) plus `x-kubernetes-*` extensions. Translated here for `jsonschema`'s Draft4Validator, following
"Specifying a structural schema" in
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/ :

- unknown fields: the API server prunes fields a schema does not declare, and `kubectl apply` (strict field validation,
  its default) refuses them, so an object with `properties` takes no others unless it says
  `x-kubernetes-preserve-unknown-fields: true` (a typo like `rayStartParam` is an error, not a silent no-op);
- `x-kubernetes-int-or-string: true`: an integer or a string;
- `x-kubernetes-list-type: set` (unique items) and `map` (items unique by their `x-kubernetes-list-map-keys`, with
  the keys' defaults applied);
- `nullable: true`: null is allowed;
- `format: int32 | int64`: the value fits.

Not checked: CEL rules (`x-kubernetes-validations` need a CEL engine; KubeRay's guard `managedBy` and immutability on
update), `x-kubernetes-map-type` (merge behaviour only), and ObjectMeta beyond the name and label/annotation maps (the
API server checks it for every kind). A keyword this module does not know is an error, so a newer CRD cannot be
half-checked without anyone noticing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema import Draft4Validator, FormatChecker, ValidationError

# Keywords passed through to Draft 4 unchanged: every one the vendored CRD uses, plus the rest of OpenAPI 3.0's subset.
_PLAIN = {
    "type", "properties", "required", "items", "additionalProperties", "enum", "default", "format", "pattern",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "uniqueItems", "minProperties", "maxProperties", "multipleOf", "anyOf", "allOf", "oneOf", "not", "description",
    "title", "example",
}  # fmt: skip
_HANDLED = {
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}
_IGNORED = {"x-kubernetes-validations", "x-kubernetes-map-type"}

# ObjectMeta as far as a manifest in this repository uses it: a DNS-1123 subdomain name, string maps.
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}


def to_json_schema(node: dict[str, Any], where: str = "") -> dict[str, Any]:
    """One structural-schema node (and everything under it) as a Draft 4 schema with the API server's rules."""
    unknown = set(node) - _PLAIN - _HANDLED - _IGNORED
    if unknown:
        raise ValueError(f"{where or '<root>'}: schema keyword(s) {sorted(unknown)} not understood by this checker")
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _PLAIN or k.startswith("x-kubernetes-list-")}
    if "properties" in node:
        out["properties"] = {k: to_json_schema(v, f"{where}.{k}") for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = to_json_schema(node["items"], f"{where}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(node["additionalProperties"], f"{where}.*")
    for key in ("anyOf", "allOf", "oneOf"):
        if key in node:
            out[key] = [to_json_schema(s, f"{where}({key})") for s in node[key]]
    if "not" in node:
        out["not"] = to_json_schema(node["not"], f"{where}(not)")
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if node.get("type") == "object" and not preserve and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def _list_type(validator: Any, list_type: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "array"):
        return
    if list_type == "set":
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                yield ValidationError(f"duplicate item {item!r} in a list of type set")
            seen.append(item)
    elif list_type == "map":
        names = schema.get("x-kubernetes-list-map-keys", [])
        fields = schema.get("items", {}).get("properties", {})
        keys: list[tuple[Any, ...]] = []
        for item in instance:
            if not isinstance(item, dict):
                continue  # the items schema reports the type
            key = tuple(item.get(n, fields.get(n, {}).get("default")) for n in names)
            if key in keys:
                named = dict(zip(names, key, strict=True))
                yield ValidationError(f"duplicate entry for key {named} in a list of type map")
            keys.append(key)


KubeValidator = jsonschema.validators.extend(Draft4Validator, {"x-kubernetes-list-type": _list_type})

_FORMATS = FormatChecker()


def _fits(value: object, bits: int) -> bool:
    if not isinstance(value, int) or isinstance(value, bool):
        return True  # `type` reports a non-integer
    return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)


@_FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return _fits(value, 32)


@_FORMATS.checks("int64")
def _int64(value: object) -> bool:
    return _fits(value, 64)


def crd_validator(crd: dict[str, Any], api_version: str) -> Any:
    """A validator for objects of `api_version` (`group/version`), from the CRD version that serves it."""
    group, _, version = api_version.partition("/")
    if group != crd["spec"]["group"]:
        raise ValueError(f"apiVersion {api_version} is not in the CRD's group {crd['spec']['group']}")
    served = [v for v in crd["spec"]["versions"] if v["name"] == version and v.get("served")]
    if not served:
        raise ValueError(f"the CRD serves no version {version!r}")
    schema = to_json_schema(served[0]["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = OBJECT_META
    schema["properties"]["kind"] = {"enum": [crd["spec"]["names"]["kind"]]}
    schema["properties"]["apiVersion"] = {"enum": [api_version]}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return KubeValidator(schema, format_checker=_FORMATS)


def errors(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Every schema violation in `obj`, as `path: message`, sorted; empty when the API server would accept it."""
    validator = crd_validator(crd, str(obj.get("apiVersion", "")))
    found = [f"{_path(e)}: {e.message}" for e in validator.iter_errors(obj)]
    return sorted(found)


def _path(error: ValidationError) -> str:
    parts = ""
    for part in error.absolute_path:
        parts += f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part))
    return parts or "<root>"
