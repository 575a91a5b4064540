"""Which field(s) a 422 names, from the shapes servers commonly use; never a value.

The contract says only that "the body says which field". Recognised, in this order:

* FastAPI / pydantic: ``{"detail": [{"loc": ["body", "contact", "language"], ...}]}``
* RFC 9457 problem details: ``{"errors": [{"pointer": "#/contact/language", ...}]}`` (also
  ``detail``/``field`` keys inside ``errors[]``) or ``{"invalid-params": [{"name": ...}]}``
* a plain ``{"field": "contact.language"}`` / ``{"fields": [...]}``
* ``{"errors": {"contact.language": ["not a language"]}}`` (Rails / Django REST style)

Only names that look like field paths are kept (letters, digits, ``_ . - [ ]``, at most 80
characters), so a server that echoes a value in an odd place cannot make us store it.
"""

from __future__ import annotations

import re
from typing import Any

MAX_FIELDS = 5
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,79}$")


def _clean(name: object) -> str | None:
    if isinstance(name, int) and not isinstance(name, bool):
        return str(name)
    if not isinstance(name, str):
        return None
    name = name.strip()
    return name if _FIELD.match(name) else None


def _from_loc(loc: object) -> str | None:
    if not isinstance(loc, list | tuple):
        return _clean(loc)
    parts = [str(p) for p in loc if p != "body" and isinstance(p, str | int)]
    return _clean(".".join(parts)) if parts else None


def _from_pointer(pointer: object) -> str | None:
    """JSON Pointer (RFC 6901), optionally as a URI fragment: '#/contact/language'."""
    if not isinstance(pointer, str):
        return None
    path = pointer.lstrip("#")
    if not path.startswith("/"):
        return _clean(path)
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    parts = [p for p in parts if p != "body"]
    return _clean(".".join(parts)) if parts else None


def _from_item(item: Any) -> str | None:
    if isinstance(item, str):
        return _clean(item)
    if not isinstance(item, dict):
        return None
    if "loc" in item:
        return _from_loc(item["loc"])
    if "pointer" in item:
        return _from_pointer(item["pointer"])
    for key in ("name", "field", "param", "path"):
        if key in item:
            found = _from_pointer(item[key]) if str(item[key]).startswith(("#", "/")) \
                else _from_loc(item[key])
            if found:
                return found
    return None


def rejected_fields(body: Any) -> list[str]:
    """The field names a 422 body names (deduplicated, at most MAX_FIELDS)."""
    found: list[str | None] = []
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list):
            found += [_from_item(i) for i in detail]
        for key in ("invalid-params", "invalid_params"):
            if isinstance(body.get(key), list):
                found += [_from_item(i) for i in body[key]]
        errors = body.get("errors")
        if isinstance(errors, list):
            found += [_from_item(i) for i in errors]
        elif isinstance(errors, dict):
            found += [_clean(k) for k in errors]
        if "field" in body:
            found.append(_from_item({"field": body["field"]}))
        if isinstance(body.get("fields"), list):
            found += [_from_item(f) for f in body["fields"]]
    names: list[str] = []
    for name in found:
        if name and name not in names:
            names.append(name)
    return names[:MAX_FIELDS]


def describe_422(body: Any) -> str:
    names = rejected_fields(body)
    return "422 rejected field(s): " + (", ".join(names) if names else "field not named")
