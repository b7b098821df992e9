"""Parse one SEC Form 4 `ownershipDocument` (the raw XML, not the XSL-rendered copy) into
insider transactions. Pure functions, no I/O.

Real filings vary: booleans are `0/1` (schema X0306) or `true/false` (X0508) and omitted when
false; any `<value>` may be replaced by a `<footnoteId/>` only; prices may be missing; numbers
may be decimals. Holdings (`nonDerivativeHolding`, `derivativeHolding`) are positions, not
transactions, and are skipped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date

TRANSACTION_CODES: dict[str, str] = {
    "P": "open-market purchase",
    "S": "open-market sale",
    "A": "grant or award",
    "D": "disposition to the issuer",
    "F": "tax withholding",
    "I": "discretionary transaction",
    "M": "option exercise or conversion",
    "C": "conversion of a derivative",
    "E": "expiration of a short derivative position",
    "H": "expiration of a long derivative position",
    "O": "exercise of an out-of-the-money derivative",
    "X": "exercise of an in- or at-the-money derivative",
    "G": "gift",
    "L": "small acquisition",
    "W": "acquisition or disposition by will or laws of descent",
    "Z": "deposit into or withdrawal from a voting trust",
    "J": "other acquisition or disposition",
    "K": "equity swap",
    "U": "disposition from a tender of shares",
}

# Two plain searches, not one `<XML>(.*?)</XML>` pattern: that one backtracks over the rest of
# the document for every unclosed `<XML>`, quadratic on a garbled multi-megabyte body.
_XML_OPEN = re.compile(r"<XML>", re.IGNORECASE)
_XML_CLOSE = re.compile(r"</XML>", re.IGNORECASE)


@dataclass(frozen=True)
class ReportingOwner:
    name: str
    cik: str | None
    is_director: bool
    is_officer: bool
    officer_title: str | None
    is_ten_percent_owner: bool
    is_other: bool


@dataclass(frozen=True)
class InsiderTransaction:
    """One row of a Form 4 table, with the filing's (first) reporting owner."""

    transaction_date: date | None
    code: str | None
    shares: float | None
    price_per_share: float | None
    acquired_disposed: str | None  # "A" acquired / "D" disposed
    shares_owned_after: float | None
    direct_indirect: str | None  # "D" direct / "I" indirect
    nature_of_ownership: str | None
    is_derivative: bool
    security_title: str | None
    owner_name: str
    owner_cik: str | None
    is_director: bool
    is_officer: bool
    officer_title: str | None
    is_ten_percent_owner: bool
    issuer_cik: str | None = None
    issuer_name: str | None = None
    issuer_ticker: str | None = None
    other_owner_names: tuple[str, ...] = ()
    accession_number: str | None = None
    filing_date: date | None = None

    @property
    def code_description(self) -> str:
        return TRANSACTION_CODES.get(self.code or "", "unknown")

    @property
    def value_usd(self) -> float | None:
        if self.shares is None or self.price_per_share is None:
            return None
        return self.shares * self.price_per_share


def _text(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    text = found.text.strip()
    return text or None


def _value(node: ET.Element | None, path: str) -> str | None:
    """`<path><value>x</value></path>`; None when only a footnote stands in for the value."""
    return _text(node, f"{path}/value")


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _bool(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "y")


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def extract_ownership_xml(document: str) -> str:
    """The `ownershipDocument` XML of a raw Form 4 file or of a full `.txt` submission."""
    if "<ownershipDocument" not in document:
        raise ValueError("no <ownershipDocument> in the document")
    if (opened := _XML_OPEN.search(document)) and (
        closed := _XML_CLOSE.search(document, opened.end())
    ):
        return document[opened.end() : closed.start()].strip()
    return document.strip()


def parse_owners(root: ET.Element) -> list[ReportingOwner]:
    owners = []
    for node in root.findall("reportingOwner"):
        rel = node.find("reportingOwnerRelationship")
        owners.append(
            ReportingOwner(
                name=_text(node, "reportingOwnerId/rptOwnerName") or "",
                cik=_text(node, "reportingOwnerId/rptOwnerCik"),
                is_director=_bool(_text(rel, "isDirector")),
                is_officer=_bool(_text(rel, "isOfficer")),
                officer_title=_text(rel, "officerTitle"),
                is_ten_percent_owner=_bool(_text(rel, "isTenPercentOwner")),
                is_other=_bool(_text(rel, "isOther")),
            )
        )
    return owners


def parse_form4(xml: str) -> list[InsiderTransaction]:
    """The transactions of one Form 4 (non-derivative first, then derivative, file order).

    Raises `ValueError` when the text is not an `ownershipDocument`.
    """
    try:
        root = ET.fromstring(extract_ownership_xml(xml).encode())
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc
    if root.tag != "ownershipDocument":
        raise ValueError(f"expected <ownershipDocument>, got <{root.tag}>")
    owners = parse_owners(root) or [ReportingOwner("", None, False, False, None, False, False)]
    owner = owners[0]
    issuer = root.find("issuer")
    rows: list[InsiderTransaction] = []
    for table, tag, derivative in (
        ("nonDerivativeTable", "nonDerivativeTransaction", False),
        ("derivativeTable", "derivativeTransaction", True),
    ):
        for node in root.findall(f"{table}/{tag}"):
            rows.append(
                InsiderTransaction(
                    transaction_date=_date(_value(node, "transactionDate")),
                    code=_text(node, "transactionCoding/transactionCode"),
                    shares=_number(_value(node, "transactionAmounts/transactionShares")),
                    price_per_share=_number(
                        _value(node, "transactionAmounts/transactionPricePerShare")
                    ),
                    acquired_disposed=_value(
                        node, "transactionAmounts/transactionAcquiredDisposedCode"
                    ),
                    shares_owned_after=_number(
                        _value(node, "postTransactionAmounts/sharesOwnedFollowingTransaction")
                    ),
                    direct_indirect=_value(node, "ownershipNature/directOrIndirectOwnership"),
                    nature_of_ownership=_value(node, "ownershipNature/natureOfOwnership"),
                    is_derivative=derivative,
                    security_title=_value(node, "securityTitle"),
                    owner_name=owner.name,
                    owner_cik=owner.cik,
                    is_director=owner.is_director,
                    is_officer=owner.is_officer,
                    officer_title=owner.officer_title,
                    is_ten_percent_owner=owner.is_ten_percent_owner,
                    issuer_cik=_text(issuer, "issuerCik"),
                    issuer_name=_text(issuer, "issuerName"),
                    issuer_ticker=_text(issuer, "issuerTradingSymbol"),
                    other_owner_names=tuple(o.name for o in owners[1:]),
                )
            )
    return rows


def _name_tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", name.lower()) if len(t) > 1}


def owner_matches(owner_name: str, wanted: str) -> bool:
    """SEC writes owners as "LAST FIRST MIDDLE"; prospects are "First Last". Match when every
    name part of the shorter one appears in the other, ignoring order, case and punctuation."""
    a, b = _name_tokens(owner_name), _name_tokens(wanted)
    if not a or not b:
        return False
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    return small <= big
