"""XMP sidecars that photo software reads: ``xmp:Rating``, ``xmp:Label`` and digiKam's pick label.

The specification of what is written is ``docs/formats/xmp.md``. An existing sidecar is edited as text,
not re-serialised: only the value of each property piaa sets (or the one attribute it adds, with its
namespace declaration when the file lacks it) changes, so every other byte (a darktable edit history,
keywords, another tool's properties, comments, the xpacket padding) survives as it was. The result is
checked to be well-formed XML before it atomically replaces the old file; a sidecar piaa cannot parse is
refused with a one-line error naming it, never overwritten. The photo itself is never opened for writing.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Collection, Sequence
from pathlib import Path

from piaa.data.files import IMAGE_EXTENSIONS, RAW_EXTENSIONS, FailureLog
from piaa.errors import SidecarError, UsageError
from piaa.io import atomic_write_bytes

NS_XMP = "http://ns.adobe.com/xap/1.0/"
NS_DIGIKAM = "http://www.digikam.org/ns/1.0/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NAMINGS = ("darktable", "adobe")
# digiKam's PickLabel values (digiKam's own meaning)
PICK_NONE, PICK_REJECTED, PICK_PENDING, PICK_ACCEPTED = 0, 1, 2, 3
MANAGED_LABELS = ("Green", "Red")  # labels piaa may remove again when a photo's status changes

_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="piaa">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"/>
 </rdf:RDF>
</x:xmpmeta>
"""

_DESC_START = re.compile(r"<rdf:Description\b[^>]*?(/?)>", re.S)
_FIRST_ATTR = re.compile(r"<rdf:Description\s+[\w.:-]+\s*=\s*(\"[^\"]*\"|'[^']*')", re.S)


def sidecar_path(photo: Path, naming: str = "darktable") -> Path:
    """Where ``photo``'s sidecar goes.

    ``darktable`` (also digiKam, Immich): ``photo.ext.xmp``. ``adobe`` (Lightroom, Capture One):
    ``photo.xmp``, except where another photo in the same folder shares the base name (a RAW + JPEG
    pair): then ``photo.xmp`` belongs to the one RAW among them, as in Lightroom, and every other file of
    the set gets ``photo.ext.xmp``, so two photos never share (and overwrite) one sidecar. Raises
    ValueError for an unknown ``naming``."""
    photo = Path(photo)
    if naming == "darktable":
        return photo.with_name(photo.name + ".xmp")
    if naming != "adobe":
        raise UsageError(f"unknown sidecar naming {naming!r}; choose one of {', '.join(NAMINGS)}")
    siblings = shared_base_name(photo)
    if siblings:
        raws = [p for p in [photo, *siblings] if p.suffix.lower() in RAW_EXTENSIONS]
        if len(raws) != 1 or raws[0] != photo:
            return photo.with_name(photo.name + ".xmp")
    return photo.with_suffix(".xmp")


def shared_base_name(photo: Path) -> list[Path]:
    """The other photos in ``photo``'s folder with the same base name (``IMG_1.CR2`` for ``IMG_1.JPG``)."""
    try:
        entries = list(photo.parent.iterdir())
    except OSError:
        return []
    stem = photo.stem.lower()
    return sorted(
        p
        for p in entries
        if p.name != photo.name and p.stem.lower() == stem and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def write_sidecar(
    photo: Path,
    rating: int,
    label: str | None,
    pick: int | None,
    naming: str = "darktable",
    *,
    clear_labels: Collection[str] = MANAGED_LABELS,
) -> Path:
    """Write (or merge into) ``photo``'s XMP sidecar; returns its path (see :func:`sidecar_path`).

    ``rating``: ``xmp:Rating``, -1 (rejected) to 5. ``label``: ``xmp:Label`` (a colour name such as
    ``Green``); None removes a label only when it is one of ``clear_labels`` (piaa's own, so a user's
    other labels stay). ``pick``: ``digiKam:PickLabel`` (0 none, 1 rejected, 2 pending, 3 accepted);
    None leaves it as it is. Written atomically; raises :class:`SidecarError` (naming the file) for a
    sidecar that is not well-formed XMP, ``OSError`` when it cannot be written, ValueError for values out
    of range."""
    if not -1 <= int(rating) <= 5:
        raise UsageError(f"{photo}: rating {rating} outside -1..5")
    if pick is not None and pick not in (0, 1, 2, 3):
        raise UsageError(f"{photo}: digiKam pick label {pick} outside 0..3")
    path = sidecar_path(Path(photo), naming)
    old = path.read_bytes() if path.exists() else None
    text = _decode(path, old) if old is not None else _TEMPLATE
    text = set_property(text, NS_XMP, "xmp", "Rating", str(int(rating)))
    if label is not None:
        text = set_property(text, NS_XMP, "xmp", "Label", label)
    elif get_property(text, NS_XMP, "Label") in set(clear_labels):
        text = remove_property(text, NS_XMP, "Label")
    if pick is not None:
        text = set_property(text, NS_DIGIKAM, "digiKam", "PickLabel", str(pick))
    _check(path, text)
    data = text.encode("utf-8")
    if data != old:
        atomic_write_bytes(path, data)
    return path


def status_properties(
    status: str, pick_label: str | None = "Green", reject_label: str | None = "Red"
) -> tuple[str | None, int]:
    """(``xmp:Label``, ``digiKam:PickLabel``) for a cull status: a pick gets ``pick_label`` and 3
    (accepted), an alternate no label and 2 (pending), a reject ``reject_label`` and 1 (rejected)."""
    table = {
        "pick": (pick_label, PICK_ACCEPTED),
        "alternate": (None, PICK_PENDING),
        "reject": (reject_label, PICK_REJECTED),
    }
    if status not in table:
        raise UsageError(f"unknown status {status!r}; expected pick, alternate or reject")
    return table[status]


def write_sidecars(
    items: Sequence[tuple[Path, int, str | None, int | None]],
    naming: str = "darktable",
    *,
    failures: FailureLog | None = None,
    clear_labels: Collection[str] = MANAGED_LABELS,
) -> list[Path]:
    """:func:`write_sidecar` for each ``(photo, rating, label, pick)``; a sidecar that cannot be
    merged or written goes to ``failures`` (raised when None) and the batch goes on. Two photos whose
    sidecars would be the same file are refused (ValueError) before anything is written."""
    targets: dict[Path, Path] = {}
    for photo, *_ in items:
        target = sidecar_path(Path(photo), naming)
        if target in targets and targets[target] != Path(photo):
            raise UsageError(f"{photo} and {targets[target]} would share the sidecar {target}")
        targets[target] = Path(photo)
    written = []
    for photo, rating, label, pick in items:
        try:
            written.append(write_sidecar(Path(photo), rating, label, pick, naming, clear_labels=clear_labels))
        except (SidecarError, OSError) as e:
            if failures is None:
                raise
            failures.add(photo, f"sidecar not written: {e}")
    return written


def write_score_ratings(
    paths: Sequence[Path],
    scores: Sequence[float],
    naming: str = "darktable",
    *,
    failures: FailureLog | None = None,
) -> list[Path]:
    """``piaa score --xmp``: ``xmp:Rating`` 1-5 by each photo's score rank within the run (as picks get
    it in ``piaa cull``), nothing else changed."""
    from piaa.cull.core import star_ratings

    stars = star_ratings(scores)
    items = [(Path(p), s, None, None) for p, s in zip(paths, stars, strict=True)]
    return write_sidecars(items, naming, failures=failures, clear_labels=())


def read_sidecar(path: Path) -> dict[str, str]:
    """The properties piaa writes, as found in a sidecar (``Rating``, ``Label``, ``PickLabel``), by
    piaa's own parser; missing ones are absent."""
    text = _decode(path, path.read_bytes())
    out = {}
    for ns, name in ((NS_XMP, "Rating"), (NS_XMP, "Label"), (NS_DIGIKAM, "PickLabel")):
        value = get_property(text, ns, name)
        if value is not None:
            out[name] = value
    return out


# ------------------------------------------------------------------------------------------ text edits


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError:
        raise SidecarError(f"{path}: existing sidecar is not UTF-8 text; left as it is") from None
    if data.startswith(b"\xef\xbb\xbf"):
        text = "\ufeff" + text  # keep the byte-order mark
    _check(path, text)
    if not _DESC_START.search(text):
        raise SidecarError(f"{path}: existing sidecar has no rdf:Description; left as it is")
    return text


def _check(path: Path, text: str) -> None:
    try:
        ET.fromstring(text.lstrip("\ufeff").encode("utf-8"))
    except ET.ParseError as e:
        raise SidecarError(f"{path}: existing sidecar is not well-formed XML ({e}); left as it is") from None


def _prefixes(text: str, uri: str) -> list[str]:
    """Prefixes the text binds to ``uri``."""
    return re.findall(r"xmlns:([\w.-]+)\s*=\s*[\"']" + re.escape(uri) + r"[\"']", text)


def _attr_re(prefix: str, name: str) -> re.Pattern[str]:
    return re.compile(r"(\s)" + re.escape(f"{prefix}:{name}") + r"(\s*=\s*)([\"'])(.*?)\3", re.S)


def _elem_re(prefix: str, name: str) -> re.Pattern[str]:
    tag = re.escape(f"{prefix}:{name}")
    return re.compile(r"(<" + tag + r"(?:\s[^>]*)?>)([^<]*)(</" + tag + r"\s*>)")


def _find(text: str, uri: str, name: str) -> tuple[str, re.Match[str], tuple[int, int]] | None:
    """("attr" | "elem", the match, the span of the rdf:Description tag it is in (attributes only))."""
    for prefix in _prefixes(text, uri):
        for desc in _DESC_START.finditer(text):
            m = _attr_re(prefix, name).search(text, desc.start(), desc.end())
            if m:
                return "attr", m, desc.span()
        m = _elem_re(prefix, name).search(text)
        if m:
            return "elem", m, m.span()
    return None


def get_property(text: str, uri: str, name: str) -> str | None:
    """The value of a simple property (attribute or element form) in any rdf:Description, else None."""
    found = _find(text, uri, name)
    if found is None:
        return None
    kind, m, _ = found
    return _unescape(m.group(4) if kind == "attr" else m.group(2))


def set_property(text: str, uri: str, prefix: str, name: str, value: str) -> str:
    """``text`` with the property set: its value replaced in place where it exists, else one attribute
    added at the end of the first rdf:Description start tag (and ``xmlns:prefix`` declared there when no
    prefix in the file is bound to ``uri``)."""
    found = _find(text, uri, name)
    escaped = _escape(value)
    if found is not None:
        kind, m, _ = found
        if kind == "attr":
            return text[: m.start(4)] + escaped + text[m.end(4) :]
        return text[: m.start(2)] + escaped + text[m.end(2) :]
    desc = _DESC_START.search(text)
    assert desc is not None  # checked by _decode / the template
    bound = _prefixes(text, uri)
    insert = ""
    if bound:
        prefix = bound[0]
    else:
        taken = set(re.findall(r"xmlns:([\w.-]+)\s*=", text))
        base, n = prefix, 1
        while prefix in taken:
            prefix, n = f"{base}{n}", n + 1
        insert += f'\n    xmlns:{prefix}="{uri}"'
    insert += f'\n    {prefix}:{name}="{escaped}"'
    # after the tag's first attribute (rdf:about, usually): every existing line stays as it was
    first = _FIRST_ATTR.match(text, desc.start())
    at = first.end() if first else (desc.start(1) if desc.group(1) else desc.end() - 1)
    return text[:at] + insert + text[at:]


def remove_property(text: str, uri: str, name: str) -> str:
    """``text`` without the property (attribute with its leading space, or the whole element)."""
    found = _find(text, uri, name)
    if found is None:
        return text
    kind, m, _ = found
    if kind == "attr":
        start = m.start()
        while start > 0 and text[start - 1] in " \t\r\n":
            start -= 1
        return text[:start] + text[m.end() :]
    start, end = m.span()
    line_start = text.rfind("\n", 0, start)
    if text[line_start + 1 : start].strip() == "" and text[end : end + 1] == "\n":
        start = line_start  # the element's line goes with it
    return text[:start] + text[end:]


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _unescape(value: str) -> str:
    return value.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


__all__ = [
    "MANAGED_LABELS",
    "NAMINGS",
    "PICK_ACCEPTED",
    "PICK_NONE",
    "PICK_PENDING",
    "PICK_REJECTED",
    "SidecarError",
    "read_sidecar",
    "shared_base_name",
    "sidecar_path",
    "status_properties",
    "write_score_ratings",
    "write_sidecar",
    "write_sidecars",
]
