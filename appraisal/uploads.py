"""Reading a unit's file of encounters: Excel (.xlsx) or CSV, told apart by content, not name.

The first row names the columns (Chinese or English, in any order): 手机号 / phone,
就诊日期 / date, 科室 / department, and optionally 工作人员 / staff_name, 工号 / staff_number.
Rows are numbered as the spreadsheet shows them (the header is row 1). A whole file is refused
(422) when it is not .xlsx or CSV, lacks a required column or holds too many rows; otherwise each
row is accepted or refused on its own (appraisal.services.register)."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from flask import current_app

from core.errors import ValidationFailed

# Header text (lower case, spaces dropped) → field.
HEADERS = {
    "phone": "phone",
    "mobile": "phone",
    "手机": "phone",
    "手机号": "phone",
    "手机号码": "phone",
    "联系电话": "phone",
    "电话": "phone",
    "date": "date",
    "日期": "date",
    "就诊日期": "date",
    "就诊时间": "date",
    "department": "department",
    "科室": "department",
    "就诊科室": "department",
    "staff_name": "staff_name",
    "staff": "staff_name",
    "工作人员": "staff_name",
    "医生": "staff_name",
    "医务人员": "staff_name",
    "接诊医生": "staff_name",
    "staff_number": "staff_number",
    "工号": "staff_number",
    "工作人员工号": "staff_number",
}
REQUIRED = ("phone", "date", "department")
# An .xlsx is a zip: refuse one that would unpack past this (a zip bomb).
MAX_UNPACKED = 64 * 1024 * 1024


def _wrong_type() -> ValidationFailed:
    return ValidationFailed(
        "文件格式不正确：请上传 Excel（.xlsx）或 CSV 文件", code="wrong_file_type"
    )


def sniff(data: bytes) -> str:
    """``xlsx`` or ``csv`` from the bytes themselves; 422 wrong_file_type for anything else."""
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
                unpacked = sum(info.file_size for info in archive.infolist())
        except zipfile.BadZipFile as exc:
            raise _wrong_type() from exc
        if "xl/workbook.xml" not in names:
            raise _wrong_type()
        if unpacked > MAX_UNPACKED:
            raise ValidationFailed("Excel 文件解压后过大", code="file_too_large")
        return "xlsx"
    if not data.strip() or b"\x00" in data[:4096]:
        raise _wrong_type()
    try:
        _decode(data)
    except UnicodeDecodeError as exc:
        raise _wrong_type() from exc
    return "csv"


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else GB18030 — what Excel saves a CSV as in China."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def _rows_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise _wrong_type() from exc
    try:
        sheet = book.worksheets[0]
        limit = _max_rows() + 2
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append(list(row))
            if len(rows) > limit:
                break
        return rows
    finally:
        book.close()


def _rows_csv(data: bytes) -> list[list[Any]]:
    text = _decode(data)
    limit = _max_rows() + 2
    rows = []
    for row in csv.reader(io.StringIO(text)):
        rows.append(row)
        if len(rows) > limit:
            break
    return rows


def _max_rows() -> int:
    return int(current_app.config.get("APPRAISAL_UPLOAD_MAX_ROWS") or 20000)


def read(data: bytes) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
    """(kind, [(row number, {field: value})]) of a file; blank rows skipped."""
    kind = sniff(data)
    rows = _rows_xlsx(data) if kind == "xlsx" else _rows_csv(data)
    if not rows:
        raise ValidationFailed("文件是空的", code="empty_file")
    columns: dict[int, str] = {}
    for index, title in enumerate(rows[0]):
        name = HEADERS.get(str(title or "").strip().lower().replace(" ", ""))
        if name and name not in columns.values():
            columns[index] = name
    missing = [name for name in REQUIRED if name not in columns.values()]
    if missing:
        raise ValidationFailed(
            "第一行须为列名，且包含：手机号、就诊日期、科室",
            code="missing_columns",
            details={"missing": missing},
        )
    body = [
        (number, row)
        for number, row in enumerate(rows[1:], start=2)
        if any(str(v).strip() for v in row if v is not None)
    ]
    if len(body) > _max_rows():
        raise ValidationFailed(
            f"一个文件最多 {_max_rows()} 行，请拆分后上传",
            code="too_many_rows",
            details={"max_rows": _max_rows()},
        )
    parsed = []
    for number, row in body:
        fields = {name: (row[i] if i < len(row) else None) for i, name in columns.items()}
        parsed.append((number, fields))
    return kind, parsed
