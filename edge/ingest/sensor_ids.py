"""Names from the shop floor made into sensor ids, deterministically.

Sensor ids are `[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}` (they are keys, topic levels and URL
parts). Sparkplug metric names and JSON keys are free text ("Motor Temp (°C)",
"Node Info/Serial #"), so `sensor_id` turns a name into an id by one fixed rule:

1. letters are decomposed and stripped of accents (NFKD): "Temp °C" -> "Temp C";
2. every character outside the id alphabet becomes `_`, runs of `_` become one, and
   leading characters that are not a letter or digit are dropped (edge `_` too);
3. an id longer than 128 characters keeps its first 119 and ends in `-` plus 8 hex digits
   of the name's SHA-1, as does a name with nothing left (`m-` plus the digest); where a
   mapping's template puts a name together (`{asset}/{key}`), each part with nothing left
   (a Cyrillic or CJK key, an empty key) becomes `m-` plus that part's digest first, so
   `pump-3/Давление` is `pump-3/m-<digest>`, not `pump-3/`;
4. names that rule 2 changed and that then collide within one scope (one birth, one
   message of a mapping) all get the digest suffix, so the same set of names gives the
   same ids in any order;
5. a Sparkplug device metric whose id is one of its node's metric ids (node metric `D9/T`,
   device `D9`'s metric `T`) gets the digest suffix, so node and device never share a
   series (decided at the device's birth, against its node's current birth).

Sparkplug ids are made level by level (`level_id` for group, node and device, rules 1-4
for the metric names of one birth), so two devices whose names differ only in letters the
alphabet cannot hold (two pumps named in Cyrillic) stay two assets: a level that lost letters
(or everything) in rule 1 ends in `-` plus its digest.

The original name stays visible: it is kept with the id in the sensor catalogue.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

MAX_LEN = 128
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")
_OUTSIDE = re.compile(r"[^A-Za-z0-9_.:/-]+")
_UNDERSCORES = re.compile(r"_{2,}")
_LEADING = re.compile(r"^[^A-Za-z0-9]+")


def _digest(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]


def _cleaned(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = _UNDERSCORES.sub("_", _OUTSIDE.sub("_", ascii_name))
    return _LEADING.sub("", text).rstrip("_")


def sensor_id(name: str, *, suffix: bool = False) -> str:
    """The id for `name` (rules 1-3; `suffix` forces the digest, rule 4)."""
    if ID_RE.fullmatch(name) and not suffix:
        return name
    cleaned = _cleaned(name)
    if not cleaned:
        return f"m-{_digest(name)}"
    if suffix or len(cleaned) > MAX_LEN:
        return f"{cleaned[:MAX_LEN - 9]}-{_digest(name)}"
    return cleaned


def id_part(text: str) -> str:
    """One part of a name a template puts together, as it goes into the id: itself, or
    `m-` plus its digest when rules 1-2 leave nothing of it (rule 3)."""
    return text if _cleaned(text) else f"m-{_digest(text)}"


def sensor_ids(names: Iterable[str]) -> dict[str, str]:
    """Ids for a scope's names, with colliding changed names suffixed (rule 4)."""
    return suffix_collisions({name: sensor_id(name) for name in names})


def suffix_collisions(plain: Mapping[str, str]) -> dict[str, str]:
    """Rule 4 over one scope: `plain` maps each of its names to its id by rules 1-3; a
    changed name whose id another name of the scope also has gets the digest suffix."""
    used = Counter(plain.values())
    return {name: f"{ident[:MAX_LEN - 9]}-{_digest(name)}"
            if used[ident] > 1 and ident != name else ident
            for name, ident in plain.items()}


def level_id(name: str) -> str:
    """One level of a Sparkplug id (group, node, device): rules 1-2, plus the digest when
    rule 1 dropped letters or digits (non-Latin scripts), so distinct names stay distinct."""
    if ID_RE.fullmatch(name) and "/" not in name:
        return name
    cleaned = _cleaned(name.replace("/", "_"))
    if not cleaned:
        return f"x-{_digest(name)}"
    return f"{cleaned}-{_digest(name)}" if _lost_letters(name) else cleaned


def _lost_letters(name: str) -> bool:
    return any(ord(c) > 127 and unicodedata.category(c)[0] in "LN"
               for c in unicodedata.normalize("NFKD", name))
