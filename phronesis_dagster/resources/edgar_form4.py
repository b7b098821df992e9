"""Parse one SEC Form 3/4/5 `ownershipDocument` (the raw XML, not the XSL-rendered copy) into
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

# code -> (the short label the UI shows, its meaning), after Form 4 General Instruction 8
# "Transaction Codes" (https://www.sec.gov/about/forms/form4data.pdf; wording shortened here).
TRANSACTION_CODES: dict[str, tuple[str, str]] = {
    "P": ("Purchase", "open market or private purchase"),
    "S": ("Sale", "open market or private sale"),
    "V": ("Voluntary report", "transaction voluntarily reported earlier than required"),
    "A": ("Grant", "grant, award or other acquisition from the issuer (Rule 16b-3(d))"),
    "D": ("Disposition to issuer", "disposition to the issuer (Rule 16b-3(e))"),
    "F": ("Tax withholding", "exercise price or tax paid by delivering or withholding shares"),
    "I": ("Discretionary", "discretionary transaction (Rule 16b-3(f))"),
    "M": ("Option exercise", "exercise or conversion of a derivative exempted by Rule 16b-3"),
    "C": ("Conversion", "conversion of a derivative security"),
    "E": ("Expiration (short)", "expiration of a short derivative position"),
    "H": ("Expiration (long)", "expiration or cancellation of a long derivative position"),
    "O": ("Exercise (out of the money)", "exercise of an out-of-the-money derivative"),
    "X": ("Exercise (in the money)", "exercise of an in- or at-the-money derivative"),
    "G": ("Gift", "bona fide gift"),
    "L": ("Small acquisition", "small acquisition under Rule 16a-6"),
    "W": ("Inheritance", "acquisition or disposition by will or the laws of descent"),
    "Z": ("Voting trust", "deposit into or withdrawal from a voting trust"),
    "J": ("Other", "other acquisition or disposition (described in a footnote)"),
    "K": ("Equity swap", "transaction in an equity swap or similar instrument"),
    "U": ("Tender of shares", "disposition in a tender of shares in a change of control"),
}
OWNERSHIP_FORMS = ("3", "3/A", "4", "4/A", "5", "5/A")
# "made pursuant to a Rule 10b5-1 trading plan" in a transaction's footnote: how filings before
# the April 2023 checkbox (`aff10b5One`, schema X0508) flag a planned trade.
_RULE_10B5_1 = re.compile(r"10b5-1", re.IGNORECASE)
_NOT_10B5_1 = re.compile(r"\bnot\b[^.]{0,40}10b5-1", re.IGNORECASE)
_WEIGHTED = re.compile(r"weighted[- ]average", re.IGNORECASE)

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
class OwnershipDocument:
    """What one Form 3/4/5 says: issuer, reporting owners and the transactions."""

    form_type: str | None  # documentType: "3", "4", "4/A", "5"...
    period_of_report: date | None
    issuer_cik: str | None
    issuer_name: str | None
    issuer_ticker: str | None
    owners: tuple[ReportingOwner, ...]
    rule_10b5_1_checkbox: bool | None  # `aff10b5One` (X0508 and later); None when absent
    transactions: tuple[InsiderTransaction, ...]


@dataclass(frozen=True)
class InsiderTransaction:
    """One row of a Form 3/4/5 transaction table, with the filing's (first) reporting owner.

    `rule_10b5_1` is True when the filing ticks the Rule 10b5-1 box or a footnote of the row says
    the trade was made under a 10b5-1 plan, False when the box is present and unticked, None when
    the filing predates the box and says nothing. `footnotes` are the texts of every footnote the
    row refers to (in file order); `price_footnote` is the one on the price, which for sales in
    several trades gives the weighted-average price range."""

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
    form_type: str | None = None
    code_label: str | None = None  # "Purchase", "Sale", "Grant"...
    code_meaning: str | None = None
    value_usd: float | None = None  # shares x price, None without a price
    rule_10b5_1: bool | None = None
    footnotes: tuple[str, ...] = ()
    price_footnote: str | None = None
    price_is_weighted_average: bool = False
    # derivative rows only
    exercise_price: float | None = None
    exercise_date: date | None = None
    expiration_date: date | None = None
    underlying_security_title: str | None = None
    underlying_shares: float | None = None

    @property
    def code_description(self) -> str:
        return self.code_meaning or "unknown"

    @property
    def acquired(self) -> bool | None:
        if self.acquired_disposed not in ("A", "D"):
            return None
        return self.acquired_disposed == "A"


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


def _optional_bool(text: str | None) -> bool | None:
    return None if text is None else _bool(text)


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _clean(text: str) -> str:
    return " ".join(text.split())


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


def _footnote_ids(node: ET.Element | None) -> list[str]:
    if node is None:
        return []
    ids: list[str] = []
    for ref in node.iter("footnoteId"):
        ref_id = ref.get("id")
        if ref_id and ref_id not in ids:
            ids.append(ref_id)
    return ids


def _plan_flag(checkbox: bool | None, notes: list[str]) -> bool | None:
    for note in notes:
        if _RULE_10B5_1.search(note) and not _NOT_10B5_1.search(note):
            return True
    return checkbox


def parse_ownership_document(xml: str) -> OwnershipDocument:
    """Parse a Form 3/4/5 `ownershipDocument` (raw XML, or a `.txt` submission embedding it).

    Holdings (`nonDerivativeHolding`, `derivativeHolding`) are positions, not transactions, and
    are skipped. Raises `ValueError` when the text is not an `ownershipDocument`."""
    try:
        root = ET.fromstring(extract_ownership_xml(xml).encode())
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc
    if root.tag != "ownershipDocument":
        raise ValueError(f"expected <ownershipDocument>, got <{root.tag}>")
    owners = parse_owners(root)
    owner = owners[0] if owners else ReportingOwner("", None, False, False, None, False, False)
    issuer = root.find("issuer")
    form_type = _text(root, "documentType")
    checkbox = _optional_bool(_text(root, "aff10b5One"))
    footnotes = {
        note.get("id"): _clean("".join(note.itertext()))
        for note in root.findall("footnotes/footnote")
        if note.get("id")
    }
    rows: list[InsiderTransaction] = []
    for table, tag, derivative in (
        ("nonDerivativeTable", "nonDerivativeTransaction", False),
        ("derivativeTable", "derivativeTransaction", True),
    ):
        for node in root.findall(f"{table}/{tag}"):
            code = _text(node, "transactionCoding/transactionCode")
            label, meaning = TRANSACTION_CODES.get(code or "", (None, None))
            shares = _number(_value(node, "transactionAmounts/transactionShares"))
            price = _number(_value(node, "transactionAmounts/transactionPricePerShare"))
            notes = [footnotes[i] for i in _footnote_ids(node) if i in footnotes]
            price_notes = [
                footnotes[i]
                for i in _footnote_ids(node.find("transactionAmounts/transactionPricePerShare"))
                if i in footnotes
            ]
            price_note = price_notes[0] if price_notes else None
            rows.append(
                InsiderTransaction(
                    transaction_date=_date(_value(node, "transactionDate")),
                    code=code,
                    shares=shares,
                    price_per_share=price,
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
                    form_type=form_type,
                    code_label=label,
                    code_meaning=meaning,
                    value_usd=None if shares is None or price is None else shares * price,
                    rule_10b5_1=_plan_flag(checkbox, notes),
                    footnotes=tuple(notes),
                    price_footnote=price_note,
                    price_is_weighted_average=bool(price_note and _WEIGHTED.search(price_note)),
                    exercise_price=_number(_value(node, "conversionOrExercisePrice"))
                    if derivative
                    else None,
                    exercise_date=_date(_value(node, "exerciseDate")) if derivative else None,
                    expiration_date=_date(_value(node, "expirationDate")) if derivative else None,
                    underlying_security_title=_value(
                        node, "underlyingSecurity/underlyingSecurityTitle"
                    )
                    if derivative
                    else None,
                    underlying_shares=_number(
                        _value(node, "underlyingSecurity/underlyingSecurityShares")
                    )
                    if derivative
                    else None,
                )
            )
    return OwnershipDocument(
        form_type=form_type,
        period_of_report=_date(_text(root, "periodOfReport")),
        issuer_cik=_text(issuer, "issuerCik"),
        issuer_name=_text(issuer, "issuerName"),
        issuer_ticker=_text(issuer, "issuerTradingSymbol"),
        owners=tuple(owners),
        rule_10b5_1_checkbox=checkbox,
        transactions=tuple(rows),
    )


def parse_form4(xml: str) -> list[InsiderTransaction]:
    """The transactions of one Form 3/4/5 (non-derivative first, then derivative, file order).

    Raises `ValueError` when the text is not an `ownershipDocument`.
    """
    return list(parse_ownership_document(xml).transactions)


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
