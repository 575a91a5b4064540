"""Many small files in one COPY (history batches): each record tagged with its file_id.

A per-file COPY costs about 1 ms whatever the file's size (a savepoint, a setting, a COPY
statement): 3,650 daily files of 55 rows spent 3.8 s there against 0.55 s for one raw COPY
of the same rows (benchmarks/README.md, "History import"). So consecutive files with the same
header and line ends go into one COPY stream, every record prefixed with `file_id,`.

Only files that can be tagged exactly take this path: RFC 4180 records are found by quote
parity (a line starts a record when the quotes before it are balanced), and the count must
equal the manifest's. Anything else (a quote left open, a count that differs, a large file) is
left to the per-file COPY, and so is a whole group whose COPY fails: that path gives the
nightly load's exact refusal for the file at fault.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from upstream.ingest.header import Header
from upstream.ingest.manifest import Delivery

# Larger files stream through the per-file COPY in 1 MiB blocks instead of being held here.
MAX_TAGGED_FILE_BYTES = 8 << 20


def tag_records(body: bytes, file_id: int, *, crlf: bool = False) -> tuple[bytes, int] | None:
    """`body` (the records after the header) with `<file_id>,` before every record, and the
    number of records; None when the records cannot be told apart for sure.

    `crlf`: the header's line end. The per-file COPY takes its line end from the header and
    refuses a file that mixes them; a tagged stream has no header, so a file is tagged only
    when every line ends as its header does (else the per-file COPY refuses it)."""
    if not body:
        return b"", 0
    carriage_returns = body.count(b"\r")
    if crlf:
        if carriage_returns != body.count(b"\r\n") or carriage_returns != body.count(b"\n"):
            return None
    elif carriage_returns:
        return None
    tag = b"%d," % file_id
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    elif lines[-1].endswith(b"\r"):
        return None  # a lone CR at the very end: leave it to the per-file COPY
    if b'"' not in body:
        return tag + (b"\n" + tag).join(lines) + b"\n", len(lines)
    out: list[bytes] = []
    in_quote = False
    records = 0
    for line in lines:
        if in_quote:
            out.append(line)
        else:
            out.append(tag + line)
            records += 1
        if line.count(b'"') & 1:
            in_quote = not in_quote
    if in_quote:
        return None  # ends inside a quoted field: the per-file COPY names the line
    return b"\n".join(out) + b"\n", records


@dataclass
class Group:
    """Consecutive files with the same columns and line ends: one COPY."""
    columns: tuple[str, ...]
    crlf: bool
    members: list = field(default_factory=list)  # (file, tagged bytes, records)

    def accepts(self, columns: tuple[str, ...], crlf: bool) -> bool:
        return self.columns == columns and self.crlf == crlf


def tagged_file(delivery: Delivery, header: Header, file_id: int) -> tuple[bytes, int, bool] | None:
    """The file's records tagged with file_id, their number and whether its lines end in
    CRLF; None when the file must take the per-file COPY."""
    if delivery.csv_path.stat().st_size > MAX_TAGGED_FILE_BYTES:
        return None
    data = delivery.csv_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != delivery.sha256:
        return None  # changed since the manifest check: the per-file COPY refuses it
    head = data[:header.header_bytes]
    if b'"' in head:
        return None
    crlf = head.endswith(b"\r\n")
    tagged = tag_records(data[header.header_bytes:], file_id, crlf=crlf)
    if tagged is None or tagged[1] != delivery.rows:
        return None
    return tagged[0], tagged[1], crlf
