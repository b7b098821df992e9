"""Seeded data generators and the real SEC fixtures the emulator serves.

Every generated value derives from a SHA-256 of (seed, provider/purpose, key), never from call
order, so two emulators with the same seed answer the same request identically, whatever
happened before.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

SEC_DIR = Path(__file__).parent / "data" / "sec"
NO_MATCH_PERCENT = 10

FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony "
    "Margaret Mark Sandra Steven Ashley Andrew Emily Kenneth Donna Paul Michelle Joshua Carol "
    "Kevin Amanda Brian Melissa George Deborah Edward Stephanie Ronald Rebecca Timothy Laura "
    "Priya Wei Hiroshi Fatima Carlos Sofia Mateo Aisha Lars Ingrid"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Patel Chen "
    "Tanaka Okafor Lindqvist Moreau Rossi Kowalski Haddad Novak"
).split()
MIDDLE_INITIALS = "ABCDEFGHJKLMNPRSTW"
COMPANIES = (
    ("Northwind Capital", "northwindcap.com", "Financial Services"),
    ("Bluefin Analytics", "bluefinanalytics.io", "Computer Software"),
    ("Cedar Ridge Health", "cedarridgehealth.com", "Hospital & Health Care"),
    ("Helios Robotics", "heliosrobotics.ai", "Industrial Automation"),
    ("Granite Peak Partners", "granitepeak.com", "Venture Capital & Private Equity"),
    ("Lumen Biotherapeutics", "lumenbio.com", "Biotechnology"),
    ("Orchard Logistics", "orchardlogistics.com", "Logistics & Supply Chain"),
    ("Silverline Realty", "silverlinerealty.com", "Real Estate"),
    ("Tidewater Energy", "tidewaterenergy.com", "Oil & Energy"),
    ("Quarry Labs", "quarrylabs.dev", "Information Technology & Services"),
    ("Beacon Family Office", "beaconfo.com", "Investment Management"),
    ("Redwood Media Group", "redwoodmedia.com", "Media Production"),
)
TITLES = (
    ("Chief Executive Officer", "c_suite"),
    ("Chief Financial Officer", "c_suite"),
    ("Founder & CEO", "founder"),
    ("Managing Partner", "partner"),
    ("VP of Sales", "vp"),
    ("Head of Growth", "head"),
    ("Director of Engineering", "director"),
    ("Senior Product Manager", "senior"),
    ("General Counsel", "c_suite"),
    ("Board Member", "owner"),
)
CITIES = (
    ("San Francisco", "California", "United States"),
    ("New York", "New York", "United States"),
    ("Austin", "Texas", "United States"),
    ("Boston", "Massachusetts", "United States"),
    ("Seattle", "Washington", "United States"),
    ("Miami", "Florida", "United States"),
    ("Chicago", "Illinois", "United States"),
    ("London", "England", "United Kingdom"),
    ("Toronto", "Ontario", "Canada"),
)
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me")

# Synthetic issuers; none of these tickers exists in the real company_tickers.json snapshot.
SYNTHETIC_COMPANIES = (
    ("ACME", "Acme Industrial Holdings Inc."),
    ("GLOBX", "Globex Systems Corp."),
    ("INITK", "Initech Software Inc."),
    ("UMBRL", "Umbrella Life Sciences Inc."),
    ("STARK", "Stark Advanced Energy Corp."),
    ("WAYNE", "Wayne Enterprises Holdings Inc."),
    ("CYBD", "Cyberdyne Robotics Inc."),
    ("TYRL", "Tyrell Biogenetics Corp."),
    ("OSCP", "Oscorp Materials Inc."),
    ("HOOL", "Hooli Networks Inc."),
    ("PIED", "Pied Piper Compression Inc."),
    ("VANDL", "Vandelay Import Export Corp."),
    ("SOYL", "Soylent Foods Inc."),
    ("WONKA", "Wonka Confections Inc."),
    ("DUFF", "Duff Beverage Co."),
    ("MOMC", "MomCorp Logistics Inc."),
    ("VEHE", "Vehement Capital Partners Inc."),
    ("NAKT", "Nakatomi Trading Corp."),
    ("ACMEX", "Acme Exploration Ltd."),
    ("WYNE", "Wyndham Hollow Realty Trust"),
)
SYNTHETIC_CIK_BASE = 9_000_000  # issuer CIKs 0009000001..0009000020
SYNTHETIC_OWNER_CIK_BASE = 9_100_000  # reporting-owner CIKs
APPLE_SYNTHETIC_OWNER_CIK_BASE = 9_200_000  # seeded insiders behind Apple's other Form 4s
APPLE_SYNTHETIC_OWNERS = 8
FORM4_PER_COMPANY = 8
OFFICER_TITLES = (
    "Chief Executive Officer",
    "Chief Financial Officer",
    "Chief Operating Officer",
    "General Counsel",
    "Chief Technology Officer",
    "EVP, Sales",
)

APPLE_CIK = 320193
APPLE_REAL_FORM4 = {
    "accession": "0000320193-22-000061",
    "owner_cik": 1462356,
    "file": "wf-form4_165187623819106.xml",
    "owner_name": "Adams Katherine L.",
    "officer_title": "SVP, GC and Secretary",
}


# --------------------------------------------------------------------------------------------
# hashing helpers


def digest(seed: int, *parts: object) -> bytes:
    """SHA-256 of the seed and the parts; the single source of all generated data."""
    text = "\x1f".join([str(seed), *(str(p) for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).digest()


def rng_for(seed: int, *parts: object) -> random.Random:
    """A `random.Random` seeded from (seed, parts), independent of any other request."""
    return random.Random(int.from_bytes(digest(seed, *parts)[:8], "big"))


def hex_id(seed: int, *parts: object, length: int = 24) -> str:
    """A stable hex identifier (Apollo ids are 24 hex chars, Exa request ids 32)."""
    return digest(seed, "id", *parts).hex()[:length]


def is_no_match(seed: int, provider: str, key: str) -> bool:
    """True for about NO_MATCH_PERCENT % of keys: the provider knows nothing about them."""
    return digest(seed, "no-match", provider, key)[0] * 100 // 256 < NO_MATCH_PERCENT


def normalize_linkedin(url: str) -> str:
    """`https://www.linkedin.com/in/jane-doe/` and `linkedin.com/in/jane-doe` are one key."""
    url = url.strip().lower()
    url = re.sub(r"^https?://", "", url)
    url = re.sub(r"^www\.", "", url)
    return url.rstrip("/")


def person_key(
    *,
    email: str | None = None,
    linkedin_url: str | None = None,
    name: str | None = None,
    company: str | None = None,
    other: str | None = None,
) -> str:
    """The identity key of a lookup: email, else LinkedIn URL, else name + company."""
    if email:
        return "email:" + email.strip().lower()
    if linkedin_url:
        return "linkedin:" + normalize_linkedin(linkedin_url)
    if name:
        return f"name:{name.strip().lower()}|{(company or '').strip().lower()}"
    return "other:" + (other or "")


# --------------------------------------------------------------------------------------------
# people


@dataclass(frozen=True)
class Person:
    """One generated person; ContactOut and Apollo render the same person in their shapes."""

    first_name: str
    last_name: str
    company: str
    domain: str
    industry: str
    title: str
    seniority: str
    city: str
    state: str
    country: str
    linkedin_url: str
    work_email: str
    personal_email: str
    phone: str

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"

    @property
    def location(self) -> str:
        """City, state, country as the providers print it."""
        return f"{self.city}, {self.state}, {self.country}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _names_from_email(email: str) -> tuple[str | None, str | None, str | None]:
    local, _, domain = email.lower().partition("@")
    parts = [p for p in re.split(r"[._\-+]", local) if p.isalpha()]
    first = parts[0].capitalize() if parts else None
    last = parts[1].capitalize() if len(parts) > 1 else None
    return first, last, (domain if domain and domain not in FREE_MAIL else None)


def _names_from_linkedin(url: str) -> tuple[str | None, str | None]:
    slug = normalize_linkedin(url).rsplit("/", 1)[-1]
    parts = [p for p in slug.split("-") if p.isalpha()]
    if len(parts) >= 2:
        return parts[0].capitalize(), parts[1].capitalize()
    return None, None


def make_person(
    seed: int,
    key: str,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    company: str | None = None,
    domain: str | None = None,
    email: str | None = None,
    linkedin_url: str | None = None,
) -> Person:
    """The person behind `key`; facts given in the request win over generated ones."""
    rng = rng_for(seed, "person", key)
    if email:
        e_first, e_last, e_domain = _names_from_email(email)
        first_name = first_name or e_first
        last_name = last_name or e_last
        domain = domain or e_domain
    if linkedin_url:
        l_first, l_last = _names_from_linkedin(linkedin_url)
        first_name = first_name or l_first
        last_name = last_name or l_last
    gen_company, gen_domain, industry = rng.choice(COMPANIES)
    title, seniority = rng.choice(TITLES)
    city, state, country = rng.choice(CITIES)
    first = first_name or rng.choice(FIRST_NAMES)
    last = last_name or rng.choice(LAST_NAMES)
    if company and not domain:
        domain = _slug(company).replace("-", "") + ".com"
    if domain and not company:
        company = domain.split(".")[0].replace("-", " ").title()
    company = company or gen_company
    domain = domain or gen_domain
    slug = f"{_slug(first)}-{_slug(last)}-{rng.randrange(10**6, 10**7):x}"
    work_email = f"{first.lower()}.{last.lower()}@{domain}"
    if email and not email.lower().endswith(FREE_MAIL):
        work_email = email.lower()
    personal_email = f"{first.lower()}{last.lower()}{rng.randrange(10, 99)}@{rng.choice(FREE_MAIL)}"
    if email and email.lower().endswith(FREE_MAIL):
        personal_email = email.lower()
    phone = f"+1{rng.randrange(201, 989)}555{rng.randrange(0, 10000):04d}"
    return Person(
        first_name=first,
        last_name=last,
        company=company,
        domain=domain,
        industry=industry,
        title=title,
        seniority=seniority,
        city=city,
        state=state,
        country=country,
        linkedin_url=linkedin_url or f"https://www.linkedin.com/in/{slug}",
        work_email=re.sub(r"[^a-z0-9.@\-]", "", work_email),
        personal_email=re.sub(r"[^a-z0-9.@\-]", "", personal_email),
        phone=phone,
    )


# --------------------------------------------------------------------------------------------
# Exa-like web mentions

WEALTH_SNIPPETS = (
    "{name} sold shares worth ${amount} million in {company}, according to an SEC Form 4 filing.",
    "{name} is a board member of {org} and has served on its audit committee since {year}.",
    "{company}, co-founded by {name}, was acquired by {org} for ${amount} million in {year}.",
    "Forbes estimates the net worth of {name} at roughly ${big} million.",
    "{name} and family pledged ${amount} million to {org} in a philanthropy initiative.",
    "Records show {name} purchased a {city} real estate property for ${amount} million.",
    "{name} exercised options and sold shares worth ${amount} million after the lock-up ended.",
    "The {name} Family Foundation supports philanthropy in education and health care.",
)
NEUTRAL_SNIPPETS = (
    "{name} spoke at the annual summit of {org} about scaling go-to-market teams.",
    "In an interview, {name} described how {company} approaches hiring in {city}.",
    "{name} joined {company} in {year} after a decade in consulting.",
    "{company} announced a new product line; {name} led the launch.",
    "Podcast episode: {name} on leadership, remote work and customer focus.",
)
ORGS = (
    "the Museum of Modern Art",
    "Stanford Health Care",
    "Summit Ventures",
    "the Gates Foundation",
    "Kellogg Capital",
    "the City Opera",
    "Harborview Partners",
)
NEWS_DOMAINS = (
    "bloomberg.com",
    "forbes.com",
    "businessinsider.com",
    "reuters.com",
    "techcrunch.com",
    "wsj.com",
    "prnewswire.com",
)


def exa_results(seed: int, query: str, num_results: int) -> list[dict[str, Any]]:
    """Deterministic search hits for `query`; about 10 % of queries have none."""
    key = query.strip().lower()
    if is_no_match(seed, "exa", key):
        return []
    rng = rng_for(seed, "exa", key)
    name = _subject_of(query)
    company = rng.choice(COMPANIES)[0]
    count = min(num_results, rng.randint(3, 8))
    results = []
    for i in range(count):
        wealthy = rng.random() < 0.55
        template = rng.choice(WEALTH_SNIPPETS if wealthy else NEUTRAL_SNIPPETS)
        fill = {
            "name": name,
            "company": company,
            "org": rng.choice(ORGS),
            "year": rng.randint(2012, 2025),
            "amount": f"{rng.randint(12, 980) / 10:.1f}",
            "big": rng.randint(40, 2500),
            "city": rng.choice(CITIES)[0],
        }
        sentence = template.format(**fill)
        domain = rng.choice(NEWS_DOMAINS)
        slug = _slug(sentence)[:60]
        url = f"https://www.{domain}/{fill['year']}/{slug}-{hex_id(seed, key, i, length=6)}"
        published = date(2026, 3, 1) - timedelta(days=rng.randint(1, 1500))
        filler = (
            f"{name} has been active in the {company} community for several years. "
            f"Colleagues describe {name.split()[0]} as focused and well connected."
        )
        results.append(
            {
                "title": _headline(sentence),
                "url": url,
                "publishedDate": f"{published.isoformat()}T{rng.randint(0, 23):02d}:00:00.000Z",
                "author": rng.choice((None, f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}")),
                "id": url,
                "score": round(0.9 - i * 0.05 - rng.random() * 0.02, 4),
                "text": f"{sentence} {filler}",
                "highlights": [sentence],
                "highlightScores": [round(0.3 + rng.random() * 0.6, 6)],
            }
        )
    return results


def _headline(sentence: str, limit: int = 90) -> str:
    """A page title: the sentence's first clause, cut at a word boundary."""
    title = sentence.split(",")[0].rstrip(".")
    if len(title) <= limit:
        return title
    return title[:limit].rsplit(" ", 1)[0]


def _subject_of(query: str) -> str:
    """The person a query is about: its leading capitalised words, else the query itself."""
    words = re.findall(r"[A-Z][a-zA-Z'\-]+", query)
    if len(words) >= 2:
        return " ".join(words[:2])
    return query.strip()[:60] or "The subject"


# --------------------------------------------------------------------------------------------
# SEC EDGAR


def real_form4_xml(name: str) -> str:
    """A vendored real Form 4 file (`form4.snow.xml`, `374WaterForm4.xml`, the Apple one)."""
    return (SEC_DIR / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def real_company_tickers() -> dict[str, dict[str, Any]]:
    """The real company_tickers.json snapshot."""
    return json.loads((SEC_DIR / "company_tickers.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def real_submissions(cik: int) -> dict[str, Any] | None:
    """The real submissions JSON for a CIK, if vendored (Apple; its insider Katherine Adams)."""
    path = SEC_DIR / f"CIK{cik:010d}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Insider:
    """A reporting owner: an SEC filer with a CIK of their own."""

    owner_cik: int
    first_name: str
    last_name: str
    middle_initial: str
    officer_title: str | None
    is_director: bool
    is_ten_percent_owner: bool

    @property
    def full_name(self) -> str:
        """'First Last', as a CRM holds the person."""
        return f"{self.first_name} {self.last_name}"

    @property
    def rpt_owner_name(self) -> str:
        """EDGAR's 'Last First M.' spelling."""
        if not self.middle_initial:
            return f"{self.last_name} {self.first_name}"
        return f"{self.last_name} {self.first_name} {self.middle_initial}."


@dataclass(frozen=True)
class Form4Filing:
    """One ownership filing the emulator can serve; `real_file` names a vendored document."""

    accession: str
    issuer_cik: int
    issuer_name: str
    ticker: str
    owner: Insider
    filing_date: date
    raw_file: str
    base_price: float
    real_file: str | None = None
    form: str = "4"

    @property
    def accession_nodash(self) -> str:
        """Accession number as it appears in Archives paths."""
        return self.accession.replace("-", "")


@dataclass(frozen=True)
class SyntheticCompany:
    """A seeded public company: ticker, CIK, insiders and Form 4 filings."""

    ticker: str
    name: str
    cik: int
    insiders: tuple[Insider, ...]
    filings: tuple[Form4Filing, ...]
    base_price: float


def _insider(rng: random.Random, owner_cik: int, index: int) -> Insider:
    officer = index < 2 or rng.random() < 0.4
    return Insider(
        owner_cik=owner_cik,
        first_name=rng.choice(FIRST_NAMES),
        last_name=rng.choice(LAST_NAMES),
        middle_initial=rng.choice(MIDDLE_INITIALS),
        officer_title=OFFICER_TITLES[index % len(OFFICER_TITLES)] if officer else None,
        is_director=not officer or rng.random() < 0.3,
        is_ten_percent_owner=not officer and rng.random() < 0.3,
    )


@lru_cache(maxsize=8)
def synthetic_companies(seed: int) -> tuple[SyntheticCompany, ...]:
    """The 20 synthetic issuers for `seed`; tickers and CIKs are fixed, people vary by seed.

    Some directors sit on two boards (the previous issuer's last insider), as real directors
    do: their own submissions then list filings for two issuers, and a client must keep only
    the asked-for issuer's."""
    companies: list[SyntheticCompany] = []
    for index, (ticker, name) in enumerate(SYNTHETIC_COMPANIES, start=1):
        rng = rng_for(seed, "edgar-company", ticker)
        cik = SYNTHETIC_CIK_BASE + index
        insiders: list[Insider] = []
        for i in range(rng.randint(3, 5)):
            # No two insiders of one issuer share a name, so a prospect's name picks one person.
            while True:
                insider = _insider(rng, SYNTHETIC_OWNER_CIK_BASE + index * 10 + i, i)
                if all(insider.full_name != other.full_name for other in insiders):
                    break
            insiders.append(insider)
        shared = companies[-1].insiders[-1] if companies else None
        if shared and all(shared.full_name != other.full_name for other in insiders):
            if rng.random() < 0.5:
                insiders.append(replace(shared, officer_title=None, is_director=True))
        base_price = round(rng.uniform(12, 480), 2)
        filings = []
        day = date(2026, 3, 2)
        for n in range(FORM4_PER_COMPANY):
            owner = insiders[n % len(insiders)]
            day -= timedelta(days=rng.randint(3, 40))
            # Self-filed: the accession prefix is the filer's own CIK; the sequence is unique per
            # issuer so a director of two boards never gets one accession twice.
            accession = f"{owner.owner_cik:010d}-{day.year % 100:02d}-{index * 100 + n + 1:06d}"
            filings.append(
                Form4Filing(
                    accession=accession,
                    issuer_cik=cik,
                    issuer_name=name,
                    ticker=ticker,
                    owner=owner,
                    filing_date=day,
                    raw_file=f"form4_{hex_id(seed, accession, length=10)}.xml",
                    base_price=base_price,
                )
            )
        companies.append(
            SyntheticCompany(ticker, name, cik, tuple(insiders), tuple(filings), base_price)
        )
    return tuple(companies)


def _adams() -> Insider:
    return Insider(APPLE_REAL_FORM4["owner_cik"], "Katherine", "Adams", "L", None, False, False)


@lru_cache(maxsize=8)
def apple_insiders(seed: int) -> tuple[Insider, ...]:
    """The seeded insiders behind Apple's other Form 4s (their real filers are not vendored)."""
    rng = rng_for(seed, "apple-insiders")
    return tuple(
        _insider(rng, APPLE_SYNTHETIC_OWNER_CIK_BASE + i + 1, i)
        for i in range(APPLE_SYNTHETIC_OWNERS)
    )


@lru_cache(maxsize=1)
def _adams_accessions() -> frozenset[str]:
    subs = real_submissions(APPLE_REAL_FORM4["owner_cik"])
    assert subs is not None
    return frozenset(subs["filings"]["recent"]["accessionNumber"])


@lru_cache(maxsize=8)
def apple_form4_filings(seed: int) -> tuple[Form4Filing, ...]:
    """Every Form 3/4 in the real Apple recent list. Filings that also appear in Katherine
    Adams's real submissions are hers (as on EDGAR, where both lists carry them); the real
    vendored one is marked by `real_file`; the others belong to seeded insiders."""
    subs = real_submissions(APPLE_CIK)
    assert subs is not None
    recent = subs["filings"]["recent"]
    pool = apple_insiders(seed)
    filings = []
    for i, form in enumerate(recent["form"]):
        if form not in ("3", "4", "4/A", "5"):
            continue
        accession = recent["accessionNumber"][i]
        raw_file = re.sub(r"^xslF345X\d\d/", "", recent["primaryDocument"][i])
        filing_date = date.fromisoformat(recent["filingDate"][i])
        real = APPLE_REAL_FORM4["file"] if accession == APPLE_REAL_FORM4["accession"] else None
        if accession in _adams_accessions():
            owner = _adams()
        else:
            owner = pool[rng_for(seed, "apple-owner", accession).randrange(len(pool))]
        price = round(rng_for(seed, "apple-price", accession).uniform(150, 280), 2)
        filings.append(
            Form4Filing(
                accession,
                APPLE_CIK,
                "Apple Inc.",
                "AAPL",
                owner,
                filing_date,
                raw_file,
                price,
                real_file=real,
                form=form,
            )
        )
    return tuple(filings)


@lru_cache(maxsize=8)
def form4_index(seed: int) -> dict[str, Form4Filing]:
    """accession (no dashes) -> filing, over Apple and every synthetic issuer."""
    index = {f.accession_nodash: f for f in apple_form4_filings(seed)}
    for company in synthetic_companies(seed):
        index.update({f.accession_nodash: f for f in company.filings})
    return index


@lru_cache(maxsize=8)
def owner_filings(seed: int) -> dict[int, tuple[Insider, tuple[Form4Filing, ...]]]:
    """Reporting-owner CIK -> (the person, their ownership filings at every issuer, newest
    first): what the owner's own submissions JSON lists."""
    by_owner: dict[int, list[Form4Filing]] = {}
    people: dict[int, Insider] = {}
    for filing in form4_index(seed).values():
        by_owner.setdefault(filing.owner.owner_cik, []).append(filing)
        people.setdefault(filing.owner.owner_cik, filing.owner)
    return {
        cik: (
            people[cik],
            tuple(sorted(rows, key=lambda f: (f.filing_date, f.accession), reverse=True)),
        )
        for cik, rows in by_owner.items()
    }


def edgar_insiders(seed: int) -> list[dict[str, Any]]:
    """Insiders the emulator's EDGAR knows, so a demo can create prospects that match them.

    Each dict has `ticker`, `cik` (10-digit string), `company`, `owner_name` (EDGAR spelling,
    'Last First M.'), `officer_title` (None for directors / 10 % owners), plus `first_name`,
    `last_name`, `full_name`, `owner_cik` and `filings` (their ownership filings at that
    issuer; every insider listed has at least one).
    """
    filed = Counter((f.issuer_cik, f.owner.owner_cik) for f in form4_index(seed).values())
    rows = [
        {
            "ticker": "AAPL",
            "cik": f"{APPLE_CIK:010d}",
            "company": "Apple Inc.",
            "owner_name": APPLE_REAL_FORM4["owner_name"],
            "officer_title": APPLE_REAL_FORM4["officer_title"],
            "first_name": "Katherine",
            "last_name": "Adams",
            "full_name": "Katherine Adams",
            "owner_cik": f"{APPLE_REAL_FORM4['owner_cik']:010d}",
            "filings": filed.get((APPLE_CIK, APPLE_REAL_FORM4["owner_cik"]), 0),
        }
    ]
    for company in synthetic_companies(seed):
        for insider in company.insiders:
            count = filed.get((company.cik, insider.owner_cik), 0)
            if not count:
                continue
            rows.append(
                {
                    "ticker": company.ticker,
                    "cik": f"{company.cik:010d}",
                    "company": company.name,
                    "owner_name": insider.rpt_owner_name,
                    "officer_title": insider.officer_title,
                    "first_name": insider.first_name,
                    "last_name": insider.last_name,
                    "full_name": f"{insider.first_name} {insider.last_name}",
                    "owner_cik": f"{insider.owner_cik:010d}",
                    "filings": count,
                }
            )
    return rows
