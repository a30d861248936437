"""CSV catalog files: parsing of an uploaded file into catalog records.

Store owners export these from Excel or Google Sheets, so the parser takes
what those produce: UTF-8 with or without a BOM, or Windows-1251 (Excel in
Russia); `;` or `,` between cells; an optional `sep=;` first line (Excel's
hint); prices as "1 290", "1290,50" or "1290.00". Column names are matched
case-insensitively; unknown columns are ignored.

A bad row is skipped with a reason and its line number, never failing the
file; only a file that cannot be read at all raises CsvFormatError. Line
numbers are physical lines of the file (the header is line 1), which are the
spreadsheet's row numbers unless a quoted cell holds a line break.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _

from catalog.importers.records import ProductRecord, SkippedRow
from catalog.importers.tilda import parse_price

REQUIRED_COLUMNS = ("sku", "title")
OPTIONAL_COLUMNS = ("category", "price", "quantity", "description", "url", "image")
# The ProductRecord field each optional column fills.
_COLUMN_FIELDS = {
    "category": "category_titles",
    "price": "price",
    "quantity": "quantity",
    "description": "description",
    "url": "url",
    "image": "image_url",
}
_DELIMITERS = ";,"
_QUANTITY_RE = re.compile(r"(\d{1,18})(?:[.,]0*)?", re.ASCII)
_SNIFF_LINES = 20
# Zip (.xlsx) and OLE (.xls) signatures: a workbook uploaded instead of its CSV.
_WORKBOOK_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
# Same schemes the admin form of a product accepts, so imported links stay editable there.
_validate_url = URLValidator(schemes=["http", "https"])


class CsvFormatError(ValueError):
    """The file as a whole cannot be imported (not text, no required columns)."""


@dataclass
class CsvRow:
    line: int
    record: ProductRecord
    # ProductRecord fields the row has a value for; the others were empty or
    # had no column, and an update leaves them alone.
    filled: frozenset[str]


@dataclass
class CsvCatalog:
    rows: list[CsvRow] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)


def sku_key(sku: str) -> str:
    """The form in which two SKUs are the same product ("mr-1" is "MR-1")."""
    return sku.strip().casefold()


def decode(data: bytes) -> str:
    """Text of the file: UTF-8 (BOM or not) when it decodes as such, else Windows-1251
    (line by line, so a file mixing the two reads right).

    Cyrillic in Windows-1251 is almost never valid UTF-8, so a strict UTF-8
    attempt tells the two apart. Undefined Windows-1251 bytes become "�"
    rather than rejecting a whole file for one odd character.
    """
    if not data.strip():
        raise CsvFormatError(_("The file is empty."))
    if data.startswith(_WORKBOOK_SIGNATURES):
        raise CsvFormatError(_("This is an Excel workbook, not a CSV file. Save it from Excel as “CSV”."))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Files pasted together from two sources mix encodings line by line:
        # each line is read as UTF-8 when it is valid UTF-8, else as Windows-1251.
        lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
        text = "\n".join(_decode_line(line) for line in lines)
    # NUL means UTF-16 or a binary file, and PostgreSQL cannot store it in text.
    if "\x00" in text:
        raise CsvFormatError(_("The file is not CSV text in UTF-8 or Windows-1251."))
    return text


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("cp1251", errors="replace")


class _LineFeed:
    """Physical lines for csv.reader, with a position that can be moved back.

    csv.reader pulls only the lines of one record per call, so the position
    tells where each record starts, and a record that swallowed many lines
    (an unclosed quote) can be re-read from its second line.
    """

    def __init__(self, lines: list[str], position: int = 0):
        self.lines = lines
        self.position = position

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def _header(line: str, delimiter: str) -> list[str]:
    cells = next(csv.reader([line], delimiter=delimiter), [])
    return [cell.strip().lower() for cell in cells]


def _delimiter(lines: list[str], header_index: int) -> str:
    """`;` or `,`: the sniffer's guess, checked against the header line.

    The sniffer weighs all sample lines, and commas inside titles and prices
    ("Икра кеты, 100 г", "1290,50") can outvote the real delimiter; the header
    has no such cells, so the delimiter that gives the required columns wins.
    """
    header = lines[header_index]
    try:
        sample = "".join(lines[header_index : header_index + _SNIFF_LINES])
        guess = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        guess = ";" if header.count(";") >= header.count(",") else ","
    other = "," if guess == ";" else ";"
    for delimiter in (guess, other):
        if set(REQUIRED_COLUMNS) <= set(_header(header, delimiter)):
            return delimiter
    return guess


def _check_header(columns: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CsvFormatError(
            _("The header line has no column %(missing)s. Expected columns: %(expected)s.")
            % {
                "missing": ", ".join(missing),
                "expected": ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS),
            }
        )
    known = [c for c in columns if c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    for column in known:
        if known.count(column) > 1:
            raise CsvFormatError(_("The column %(column)s appears twice.") % {"column": column})


def _read_header(lines: list[str]) -> tuple[int, str, list[str]]:
    """Index of the header line, the delimiter and the column names."""
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    delimiter = None
    first = lines[index].strip().lower() if index < len(lines) else ""
    if len(first) == 5 and first.startswith("sep=") and first[4] in _DELIMITERS:
        delimiter = first[4]
        index += 1
    if index >= len(lines):
        raise CsvFormatError(_("The file is empty."))
    delimiter = delimiter or _delimiter(lines, index)
    columns = _header(lines[index], delimiter)
    _check_header(columns)
    return index, delimiter, columns


def parse_csv(data: bytes) -> CsvCatalog:
    """Products of a CSV file, and the rows skipped with their reasons."""
    lines = list(io.StringIO(decode(data), newline=""))
    header_index, delimiter, columns = _read_header(lines)
    catalog = CsvCatalog()
    first_line_of_sku: dict[str, int] = {}
    feed = _LineFeed(lines, header_index + 1)
    # strict: a quote left open to the end of the file is an error, not one
    # huge last cell that silently eats the rows after it.
    reader = csv.reader(feed, delimiter=delimiter, strict=True)
    while feed.position < len(lines):
        line = feed.position + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problem = _("unreadable row, check the quotation marks (%(error)s)") % {"error": exc}
        else:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines and Excel's rows of bare delimiters
            problem = _shape_problem(cells, columns)
        if problem:
            if feed.position > line:
                # The row took in the lines after it (a quote left open): read them again.
                feed.position = line
                problem = _("a quoted cell starting here runs over several lines and breaks the row; check the quotes")
            catalog.skipped.append(SkippedRow(ref=str(line), reason=problem))
            continue
        values = {column: cell.strip() for column, cell in zip(columns, cells, strict=False) if column}
        # A SKU counts from its first row even when that row is bad, so the
        # owner learns about both rows at once.
        key = sku_key(values.get("sku", ""))
        if key and key in first_line_of_sku:
            earlier = first_line_of_sku[key]
            reason = _("SKU %(sku)s is already on line %(line)s") % {"sku": values["sku"], "line": earlier}
            catalog.skipped.append(SkippedRow(ref=str(line), reason=reason))
            continue
        if key:
            first_line_of_sku[key] = line
        try:
            catalog.rows.append(_row(line, values))
        except ValueError as exc:
            catalog.skipped.append(SkippedRow(ref=str(line), reason=str(exc)))
    return catalog


def _shape_problem(cells: list[str], columns: list[str]) -> str | None:
    """Why a row's cells do not line up with the header, if they do not.

    An extra cell, even an empty one, means a value split in two (typically
    "1290,50" unquoted in a comma file) and the values after it shifted into
    the wrong columns. Missing cells are fine only under unnamed columns.
    """
    if len(cells) > len(columns) or any(columns[len(cells) :]):
        return _("%(found)s cells instead of %(expected)s") % {"found": len(cells), "expected": len(columns)}
    return None


def _quoted(value: str, limit: int = 60) -> str:
    return f"«{value if len(value) <= limit else value[: limit - 1] + '…'}»"


def _row(line: int, values: dict[str, str]) -> CsvRow:
    """One data row as a record; ValueError with the reason when it is unusable."""
    sku, title = values.get("sku", ""), values.get("title", "")
    if not sku:
        raise ValueError(_("no SKU"))
    if not title:
        raise ValueError(_("no title"))
    record = ProductRecord(external_id=sku, sku=sku, title=title)
    filled = set()
    for column, name in _COLUMN_FIELDS.items():
        value = values.get(column, "")
        if not value:
            continue
        filled.add(name)
        if column == "price":
            record.price = _price(value)
        elif column == "quantity":
            record.quantity = _quantity(value)
        elif column in ("url", "image"):
            setattr(record, name, _url(column, value))
        elif column == "category":
            record.category_titles = [value]
        else:
            setattr(record, name, value)
    return CsvRow(line=line, record=record, filled=frozenset(filled))


def _price(value: str) -> Decimal:
    if value.startswith("-"):
        raise ValueError(_("negative price %(value)s") % {"value": _quoted(value)})
    try:
        price = parse_price(value)
    except (ValueError, ArithmeticError):  # ArithmeticError: "NaN", "Infinity"
        price = None
    if price is None:
        raise ValueError(_("unreadable price %(value)s") % {"value": _quoted(value)})
    return price


def _quantity(value: str) -> int:
    # "5,00" is what Excel writes for a cell formatted with decimals.
    match = _QUANTITY_RE.fullmatch(value.replace("\u00a0", "").replace(" ", ""))
    if not match:
        raise ValueError(_("quantity must be a whole number, 0 or more, not %(value)s") % {"value": _quoted(value)})
    return int(match[1])


def _url(column: str, value: str) -> str:
    try:
        _validate_url(value)
    except ValidationError:
        raise ValueError(
            _("%(column)s is not an http(s) link: %(value)s") % {"column": column, "value": _quoted(value)}
        ) from None
    return value
