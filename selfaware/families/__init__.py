"""The family registry: every experiment kind the suite knows, as `Family` plug-ins.

The suite's families are the modules of this package (each registers its `Family` on import); other
packages add theirs through the `selfaware.families` entry-point group, and a script or test can call
`register` directly. Nothing else in the suite lists family names.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selfaware.families.base import ChoiceFamily, Family

ENTRY_POINT_GROUP = "selfaware.families"
_NOT_FAMILIES = {"base", "scenes"}  # helper modules of this package
_REGISTRY: dict[str, "Family"] = {}
_discovered = False


def register(family: "Family", *, replace: bool = False) -> "Family":
    """Make `family` known by name (and its organisms by behavior). Returns it, for `FAMILY = register(...)`."""
    clash = _REGISTRY.get(family.name)
    if clash is not None and clash is not family and not replace:
        raise ValueError(f"a family named {family.name!r} is already registered")
    for other in _REGISTRY.values():
        if other.name != family.name and set(family.organisms) & set(other.organisms):
            raise ValueError(f"family {family.name!r}: organism names {'/'.join(family.organisms)} "
                             f"clash with family {other.name!r}")
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_FAMILIES and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def families() -> dict[str, "Family"]:
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_family(name: str) -> "Family":
    known = families()
    if name not in known:
        raise ValueError(f"unknown family {name!r}; the suite has {', '.join(known)}")
    return known[name]


def choice_family(family: "str | Family") -> "ChoiceFamily":
    """The family, which must be a two-option choice family (behavior items, generated training prompts)."""
    from selfaware.families.base import ChoiceFamily

    fam = get_family(family) if isinstance(family, str) else family
    if not isinstance(fam, ChoiceFamily):
        raise ValueError(f"family {fam.name!r} has no two-option choice items (it is a {type(fam).__name__})")
    return fam


def family_of(behavior: str) -> "Family":
    """The family whose organisms include `behavior` (e.g. "risky" -> risk)."""
    for family in families().values():
        if behavior in family.organisms:
            return family
    raise ValueError(f"unknown behavior {behavior!r}; choose from {sorted(behaviors())}")


def behaviors() -> list[str]:
    return [b for f in families().values() for b in f.organisms]
