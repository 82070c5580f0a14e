"""People: who they are, what they do over the days, and which records that leaves.

Each person is simulated from their own random stream (seed, person index), so a person's
records never depend on which other people share their Spark partition. Household, family
tablet and kiosk facts that several people must agree on are hashed from the household or
kiosk key instead, so every member derives the same answer independently.

A person's day: visits on their browsers and app devices (cookies expire and are replaced),
ad impressions and clicks, newsletters, purchases from a BG/NBD process plus the conversions
that touches cause, store visits at a kiosk, consent given and withdrawn, CRM records typed
by different systems.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import phonenumbers

from crossdata.world import vocab
from crossdata.world.hashing import (
    group_rng,
    hash64,
    hex16,
    person_rng,
    pick,
    scramble,
    uniform,
    unique64,
    uuid_text,
)
from crossdata.world.model import (
    AFFILIATE_CLICKS_PER_DAY,
    CALL_CENTRE_STORE,
    CHANNEL_INDEX,
    CLICK_THROUGH,
    CRM_HISTORY_DAYS,
    DAY_MS,
    HOUR_MS,
    IMPRESSION_CHANNELS,
    IMPRESSIONS_PER_DAY,
    MINUTE_MS,
    NS_CLICK,
    NS_CONSENT,
    NS_COOKIE,
    NS_CRM,
    NS_DEVICE,
    NS_EMAIL_EVENT,
    NS_FAMILY_COOKIE,
    NS_FAMILY_DEVICE,
    NS_IMPRESSION,
    NS_MESSAGE,
    NS_ORDER,
    PLACEHOLDERS,
    SESSIONS_PER_DAY_MEAN,
    VISIT_CHANNELS,
    VISIT_MIX,
    ZERO_UUID,
    WorldParams,
    event_ids,
    kiosk_device_id,
    store_id,
)
from crossdata.world.tables import Table

PARIS = -10_000  # zone code: Europe/Paris with its summer time (any other value: fixed offset)

HOUSEHOLD_PATTERNS: tuple[tuple[int, ...], ...] = (
    (1, 1, 1, 1),
    (2, 1, 1),
    (1, 2, 1),
    (2, 2),
    (3, 1),
    (1, 3),
    (4,),
    (1, 1, 2),
)
HOUSEHOLD_WEIGHTS = (0.2, 0.15, 0.1, 0.2, 0.1, 0.1, 0.05, 0.1)

# Visits by hour of the (Paris) day.
HOURLY = (
    0.3, 0.15, 0.1, 0.08, 0.08, 0.15, 0.4, 0.8, 1.1, 1.2, 1.2, 1.3,
    1.5, 1.4, 1.2, 1.1, 1.2, 1.4, 1.7, 2.0, 2.2, 2.0, 1.4, 0.7,
)  # fmt: skip
TRAVEL_OFFSETS = (0, -300, 540, 240, -180)  # London, New York, Tokyo, Dubai, São Paulo
FR_FIRST_OCTETS = (31, 37, 46, 62, 77, 78, 80, 81, 82, 83, 86, 88, 90, 91, 92, 109, 176, 212)
MOBILE_FIRST_OCTETS = (37, 92, 176, 193)
PHONE_WEIGHTS = (0.25, 0.2, 0.15, 0.12, 0.08, 0.12, 0.08)

LAT_PLACEHOLDER = f"device_id={ZERO_UUID}"


@dataclass(frozen=True)
class Household:
    """People living together: they share an address, a home IP, maybe a tablet."""

    key: int  # the first member's index
    household_id: str
    members: tuple[int, ...]
    index: int  # this person's place among the members
    tablet: bool
    family_email_members: tuple[int, ...]
    last_name: str
    home_ip: str
    address_line1: str
    address_line2: str  # "" for most: an apartment, a residence, "in care of"
    postal_code: str
    city: str
    store: int


@dataclass(frozen=True)
class Laws:
    """The person's true parameters (the churn/CLV truth)."""

    lam: float  # baseline purchases per day while alive
    p_dropout: float
    nu: float  # Gamma-Gamma rate: expected order value is p / nu


@dataclass
class Slot:
    """A browser (cookie) or an app install (advertising id) the person uses."""

    app: bool
    ns: int
    owner: int
    no: int
    ua: str
    login: bool
    blocked: bool = False
    lifetime: float = 395.0
    phase: float = 0.0
    device_id: str = ""
    lat: bool = False
    skew: int = 0
    family: bool = False
    weight: float = 1.0
    install_ms: int = -(2**62)
    mobile: bool = False
    appv: str = ""


@dataclass
class Identity:
    """What identifies a person, before anyone types it."""

    first: str
    last: str
    offline_only: bool
    has_account: bool
    user_id: str
    email: str  # canonical, "" if none
    family_email: str
    mobile: tuple[str, ...]  # raw formats, E.164 last; () if none
    landline: tuple[str, ...]
    loyalty_card: str
    birth: tuple[int, int, int]
    language: str
    traveller: tuple[int, int, int] | None  # (first day, end day, offset)


@dataclass
class Written:
    """Identifiers and raw email/phone spellings this person's records really carry."""

    ids: set[tuple[str, str, str]] = field(default_factory=set)
    variants: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, id_type: str, value: str, kind: str = "none") -> None:
        """Note an identifier as written."""
        if value:
            self.ids.add((id_type, value, kind))

    def email(self, raw: str, kind: str = "none") -> None:
        """Note an email spelling and its normalised address."""
        if raw and raw not in PLACEHOLDERS["email"]:
            norm = raw.strip().lower()
            self.ids.add(("email", norm, kind))
            self.variants.add(("email", raw, norm))

    def phone(self, raw: str, e164: str) -> None:
        """Note a phone spelling and its E.164 form."""
        if raw and raw not in PLACEHOLDERS["phone"]:
            self.ids.add(("phone", e164, "none"))
            self.variants.add(("phone", raw, e164))


# -- who the person is ------------------------------------------------------------------------
def household_of(P: WorldParams, pid: int) -> Household:
    """The household a person belongs to (people are laid out in blocks of four)."""
    block = pid // 4
    pattern = HOUSEHOLD_PATTERNS[int(pick(uniform(P.seed, "household", block), HOUSEHOLD_WEIGHTS))]
    base, pos, start = block * 4, pid - block * 4, 0
    size = pattern[0]
    for size in pattern:
        if pos < start + size:
            break
        start += size
    members = tuple(m for m in range(base + start, base + start + size) if m < P.persons)
    key = base + start
    u = uniform(P.seed, "household-traits", key, np.arange(10))
    multi = len(members) >= 2
    street = f"{1 + int(u[3] * 120)} {vocab.STREETS[int(u[4] * len(vocab.STREETS))]}"
    if u[5] < 0.1:
        street = f"Bât. {'ABC'[int(u[9] * 3)]}, {street}"  # a comma: quoted in CSV
    postal, city = vocab.CITIES[int(u[6] * len(vocab.CITIES))]
    # A stream of its own, so the households' other traits stay what they were.
    line2, which = uniform(P.seed, "household-address-line2", key, np.arange(2))
    return Household(
        key=key,
        household_id=f"h_{key:08d}",
        members=members,
        index=pid - key,
        tablet=multi and u[0] < 0.5,
        family_email_members=members[:2] if multi and u[1] < 0.3 else (),
        last_name=vocab.LAST_NAMES[int(u[2] * len(vocab.LAST_NAMES))],
        home_ip=_public_ip(P.seed, "home", key, FR_FIRST_OCTETS),
        address_line1=street,
        address_line2=(
            vocab.ADDRESS_LINE2[int(which * len(vocab.ADDRESS_LINE2))] if line2 < 0.15 else ""
        ),
        postal_code=postal,
        city=city,
        store=int(u[7] * P.n_stores),
    )


def person_laws(P: WorldParams, pid: int) -> Laws:
    """lambda ~ Gamma(r, alpha), p ~ Beta(a, b), nu ~ Gamma(q, v): one person's true laws."""
    rng = group_rng(P.seed, 0x1A3, pid)
    g, gg = P.bgnbd, P.gamma_gamma
    return Laws(
        lam=float(rng.gamma(g.r, 1.0 / g.alpha)),
        p_dropout=float(rng.beta(g.a, g.b)),
        nu=float(rng.gamma(gg.q, 1.0 / gg.v)),
    )


def _public_ip(seed: int, name: str, key: int, octets: tuple[int, ...]) -> str:
    return _public_ips(seed, name, np.array([key]), octets)[0]


def _public_ips(seed: int, name: str, keys: np.ndarray, octets: tuple[int, ...]) -> list[str]:
    """Plausible public IPv4 addresses, one per key (first octet from an ISP's ranges)."""
    return [
        f"{octets[h % len(octets)]}.{(h >> 8) & 255}.{(h >> 16) & 255}.{1 + (h >> 24) % 254}"
        for h in hash64(seed, "ip:" + name, keys).tolist()
    ]


def _phone_formats(national: str) -> tuple[str, ...]:
    """Seven spellings of one French number; the last one is its E.164 form."""
    number = phonenumbers.parse(national, "FR")
    nat = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return (
        nat,
        national,
        intl,
        "00" + e164[1:],
        nat.replace(" ", "."),
        nat.replace(" ", "-"),
        e164,
    )


def identity_of(P: WorldParams, pid: int, rng: np.random.Generator, hh: Household) -> Identity:
    """Names, emails, phones, account and card of one person."""
    seed = P.seed
    offline_only = bool(rng.random() < 0.15)
    has_account = (not offline_only) and bool(rng.random() < 0.78)
    r = rng.random()
    if r < 0.03:
        first, last = vocab.CJK_NAMES[int(rng.integers(len(vocab.CJK_NAMES)))]
    else:
        names = vocab.EMOJI_FIRST_NAMES if r < 0.045 else vocab.FIRST_NAMES
        first = names[int(rng.integers(len(names)))]
        own = vocab.LAST_NAMES[int(rng.integers(len(vocab.LAST_NAMES)))]
        last = hh.last_name if rng.random() < 0.8 else own
    digits = max(4, len(str(max(P.persons - 1, 1))))
    suffix = f"{int(scramble(pid, 10**digits, seed, 'email')):0{digits}d}"
    local = f"{vocab.ascii_slug(first) or 'client'}.{vocab.ascii_slug(last) or 'client'}{suffix}"
    domain = vocab.EMAIL_DOMAINS[int(rng.integers(len(vocab.EMAIL_DOMAINS)))]
    has_email = has_account or rng.random() < 0.6
    family_email = ""
    if pid in hh.family_email_members:
        fam_suffix = f"{int(scramble(hh.key, 10**digits, seed, 'family-email')):0{digits}d}"
        family_email = f"famille.{vocab.ascii_slug(hh.last_name)}.f{fam_suffix}@example.fr"
    mobile: tuple[str, ...] = ()
    if rng.random() < 0.85:
        x = int(scramble(pid, 80_000_000, seed, "mobile"))
        mobile = _phone_formats(f"06{'01245678'[x // 10**7]}{x % 10**7:07d}")
    landline: tuple[str, ...] = ()
    if rng.random() < 0.25:
        landline = _phone_formats(f"01{int(scramble(pid, 10**8, seed, 'landline')):08d}")
    has_card = bool(rng.random() < (0.95 if offline_only else 0.35))
    card = f"LC{int(scramble(pid, 10**10, seed, 'loyalty')):010d}" if has_card else ""
    user = f"u_{int(scramble(pid, 10**9, seed, 'user')):09d}" if has_account else ""
    birth = (int(rng.integers(1945, 2008)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
    language = vocab.LANGUAGES[int(rng.integers(len(vocab.LANGUAGES)))]
    traveller = None
    if rng.random() < 0.04:
        a = int(rng.integers(0, P.days))
        traveller = (a, a + int(rng.integers(2, 8)), int(rng.choice(TRAVEL_OFFSETS)))
    return Identity(
        first=first,
        last=last,
        offline_only=offline_only,
        has_account=has_account,
        user_id=user,
        email=f"{local}@{domain}" if has_email else "",
        family_email=family_email,
        mobile=mobile,
        landline=landline,
        loyalty_card=card,
        birth=birth,
        language=language,
        traveller=traveller,
    )


def email_variant(rng: np.random.Generator, canonical: str, typo: float = 0.0) -> str:
    """The address as someone typed it: case, stray spaces, sometimes a mistyped domain."""
    local, domain = canonical.split("@")
    if typo and rng.random() < typo:
        typos = vocab.EMAIL_DOMAIN_TYPOS.get(domain, (domain[::-1],))
        return f"{local}@{typos[int(rng.integers(len(typos)))]}"
    r = rng.random()
    if r < 0.55:
        return canonical
    if r < 0.70:
        return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain
    if r < 0.80:
        return f"{local}@{domain.upper()}"
    if r < 0.88:
        return canonical.upper()
    if r < 0.94:
        return " " + canonical
    return canonical + "  "


def phone_variant(rng: np.random.Generator, formats: tuple[str, ...]) -> str:
    """The number as someone wrote it (one of seven spellings)."""
    return formats[int(pick(rng.random(), PHONE_WEIGHTS))]


def slots_of(
    P: WorldParams, pid: int, rng: np.random.Generator, hh: Household, me: Identity
) -> list[Slot]:
    """The person's browsers and app installs (1 to 5, the family tablet included)."""
    seed = P.seed
    n_web = 1 + (int(rng.random() < 0.3) if me.offline_only else int(rng.binomial(3, 0.3)))
    n_app = 0 if me.offline_only else int(rng.random() < 0.45) + int(rng.random() < 0.1)
    while n_web + n_app + int(hh.tablet) > 5:
        n_web -= 1
    slots: list[Slot] = []
    for j in range(n_web):
        r = rng.random()
        if r < 0.35:
            ua = vocab.SAFARI_UAS[int(rng.integers(len(vocab.SAFARI_UAS)))]
            lifetime = 7.0  # Safari's ITP caps script-set cookies at 7 days
        else:
            pool = vocab.DESKTOP_UAS if r < 0.7 else vocab.MOBILE_UAS
            ua = pool[int(rng.integers(len(pool)))]
            lifetime = float(rng.choice((30.0, 90.0, 180.0, 395.0)))
        slots.append(
            Slot(
                app=False,
                ns=NS_COOKIE,
                owner=pid,
                no=j,
                ua=ua,
                login=me.has_account and (j == 0 or bool(rng.random() < 0.5)),
                blocked=bool(rng.random() < 0.08),
                lifetime=lifetime,
                phase=float(rng.random() * lifetime),
                skew=_skew(rng, 0.05),
                weight=1.0 if j == 0 else 0.5,
                mobile="Mobile" in ua,
            )
        )
    for j in range(n_app):
        ua = vocab.APP_UAS[int(rng.integers(len(vocab.APP_UAS)))]
        ios = "iOS" in ua
        no = 8 + j
        key = unique64(seed, NS_DEVICE, pid, no)
        installed_now = rng.random() < 0.12
        install_ms = -(2**62)
        if installed_now:
            install_ms = int(P.instant(int(rng.integers(0, P.days)), rng.random() * 86_400))
        slots.append(
            Slot(
                app=True,
                ns=NS_DEVICE,
                owner=pid,
                no=no,
                ua=ua,
                login=me.has_account and bool(rng.random() < 0.85),
                device_id=uuid_text(np.atleast_1d(key), hash64(seed, "dev-lo", key))[0],
                lat=bool(rng.random() < (0.25 if ios else 0.05)),
                skew=_skew(rng, 0.04),
                weight=0.8,
                install_ms=install_ms,
                mobile=True,
                appv=vocab.APP_VERSIONS[int(rng.integers(len(vocab.APP_VERSIONS)))],
            )
        )
    if hh.tablet:
        u = uniform(seed, "tablet", hh.key, np.arange(2))
        slots.append(
            Slot(
                app=False,
                ns=NS_FAMILY_COOKIE,
                owner=hh.key,
                no=0,
                ua=vocab.SAFARI_UAS[2],
                login=me.has_account,
                lifetime=7.0,
                phase=float(u[0] * 7.0),
                family=True,
                weight=0.5,
            )
        )
        key = unique64(seed, NS_FAMILY_DEVICE, hh.key, 0)
        slots.append(
            Slot(
                app=True,
                ns=NS_FAMILY_DEVICE,
                owner=hh.key,
                no=0,
                ua=vocab.TABLET_APP_UA,
                login=me.has_account,
                device_id=uuid_text(np.atleast_1d(key), hash64(seed, "dev-lo", key))[0],
                family=True,
                weight=0.3,
                appv=vocab.APP_VERSIONS[0],
            )
        )
    return slots


def _skew(rng: np.random.Generator, share: float) -> int:
    """A wrong device clock: minutes to hours, mostly ahead (so some times lie in the future)."""
    if rng.random() >= share:
        return 0
    size = int(np.exp(rng.uniform(np.log(2 * MINUTE_MS), np.log(5 * HOUR_MS))))
    return size if rng.random() < 0.7 else -size


def diurnal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds of the day, following when people browse."""
    return (pick(rng.random(n), HOURLY) + rng.random(n)) * 3600.0


# -- cookies ----------------------------------------------------------------------------------
def cookie_epochs(P: WorldParams, slot: Slot, t_ms: np.ndarray) -> np.ndarray:
    """Which cookie of the browser is live at each instant (a new one after each expiry)."""
    dayf = (np.asarray(t_ms, dtype=np.int64) - P.start_wall_ms) / DAY_MS
    return np.maximum(np.floor((dayf + slot.phase) / slot.lifetime), 0).astype(np.int64)


def cookie_text(P: WorldParams, slot: Slot, epochs: np.ndarray) -> np.ndarray:
    """The cookie ids of a browser's cookie generations."""
    key = unique64(P.seed, slot.ns, slot.owner, (slot.no << 16) | np.asarray(epochs))
    return np.array(["ck_" + h for h in hex16(key)], dtype=object)


def analytics_granted(P: WorldParams, slot: Slot, epochs: np.ndarray) -> np.ndarray:
    """The consent banner's analytics answer for each cookie (the site tag obeys it)."""
    return uniform(P.seed, "analytics", slot.ns, slot.owner, slot.no, epochs) < 0.85


# -- the simulation ---------------------------------------------------------------------------
@dataclass
class Touch:
    """Marketing touches of one kind: when, which channel, which record."""

    t: np.ndarray
    channel: np.ndarray  # channel names
    touch_id: np.ndarray
    source: np.ndarray  # where the touch can be found
    slot: np.ndarray  # slot index (web touches) or -1


class PersonSim:
    """One person's simulation; ``run`` appends their rows to the chunk's tables."""

    def __init__(self, P: WorldParams, pid: int):
        self.P = P
        self.pid = pid
        self.seed = P.seed
        self.rng = person_rng(P.seed, pid)
        self.hh = household_of(P, pid)
        self.me = identity_of(P, pid, self.rng, self.hh)
        self.laws = person_laws(P, pid)
        self.slots = slots_of(P, pid, self.rng, self.hh, self.me)
        self.web = [i for i, s in enumerate(self.slots) if not s.app]
        self.begin = int(P.instant(0, 0))
        self.end = int(P.instant(P.days, 0))
        self.sessions: list[dict[str, np.ndarray]] = []
        self.n_sessions = 0
        self.written = Written()
        self.stats: Counter[str] = Counter()
        self.conversions: list[str] = []
        # (t, id_type, id_value, purpose, status, channel, shared_kind)
        self.consent_rows: list[tuple[int, str, str, str, str, str, str]] = []
        u = uniform(self.seed, "kiosk", pid, np.arange(2))
        self.kiosk = int(u[1] * P.n_kiosks) if self.me.has_account and u[0] < 0.45 else -1

    # sessions ---------------------------------------------------------------------------------
    def _zone(self, t: np.ndarray) -> np.ndarray:
        zone = np.full(len(t), PARIS, dtype=np.int64)
        if self.me.traveller is not None:
            a, b, off = self.me.traveller
            day = self.P.local_day(t)
            zone[(day >= a) & (day < b)] = off
        return zone

    def pick_slots(self, t: np.ndarray, web_only: bool = False) -> np.ndarray:
        """A slot per session, by habit; an app not yet installed falls back to the browser."""
        candidates = self.web if web_only else list(range(len(self.slots)))
        weights = [self.slots[i].weight for i in candidates]
        chosen = np.asarray(candidates)[pick(self.rng.random(len(t)), weights)]
        for i, s in enumerate(self.slots):
            if s.app:
                too_early = (chosen == i) & (t < s.install_ms)
                chosen[too_early] = self.web[0]
        return chosen

    def add_sessions(
        self,
        t: np.ndarray,
        slot_idx: np.ndarray,
        *,
        entry: np.ndarray,
        query: np.ndarray | str = "",
        referrer: np.ndarray | str = "",
        n: np.ndarray,
        anchor_end: bool = False,
        order: np.ndarray | str = "",
        amount: np.ndarray | float = 0.0,
        signup: np.ndarray | str = "",
        login_event: np.ndarray | bool = False,
    ) -> np.ndarray:
        """Describe visits on the given slots; returns their session numbers (-1: not kept)."""
        P, rng, k = self.P, self.rng, len(t)
        t = np.asarray(t, dtype=np.int64)
        cols: dict[str, np.ndarray] = {
            "t": t,
            "anchor_end": np.full(k, anchor_end),
            "app": np.zeros(k, dtype=bool),
            "kiosk": np.zeros(k, dtype=bool),
            "cookie": np.full(k, "", dtype=object),
            "ev_cookie": np.full(k, "", dtype=object),
            "ev_device": np.full(k, "", dtype=object),
            "ev_user": np.full(k, "", dtype=object),
            "login_event": np.broadcast_to(np.asarray(login_event), (k,)).copy(),
            "ip": np.full(k, self.hh.home_ip, dtype=object),
            "ua": np.full(k, "", dtype=object),
            "zone": self._zone(t),
            "skew": np.zeros(k, dtype=np.int64),
            "entry": np.asarray(entry, dtype=np.int64),
            "query": np.broadcast_to(np.asarray(query, dtype=object), (k,)).copy(),
            "referrer": np.broadcast_to(np.asarray(referrer, dtype=object), (k,)).copy(),
            "n": np.asarray(n, dtype=np.int64),
            "tag": np.ones(k, dtype=bool),
            "order": np.broadcast_to(np.asarray(order, dtype=object), (k,)).copy(),
            "amount": np.broadcast_to(np.asarray(amount, dtype=np.float64), (k,)).copy(),
            "late": np.zeros(k, dtype=np.int64),
            "signup": np.broadcast_to(np.asarray(signup, dtype=object), (k,)).copy(),
            "appv": np.full(k, "", dtype=object),
            "ph": np.full(k, "", dtype=object),
            "ph_user": np.full(k, "", dtype=object),
            "slot": np.asarray(slot_idx, dtype=np.int64),
        }
        for i in np.unique(slot_idx):
            s = self.slots[int(i)]
            m = slot_idx == i
            cols["ua"][m] = s.ua
            cols["skew"][m] = s.skew
            if s.mobile:  # a phone's carrier gives it another address every day
                day = P.local_day(t[m])
                cols["ip"][m] = _public_ips(
                    self.seed, "mobile", self.pid * 4096 + day, MOBILE_FIRST_OCTETS
                )
            if s.app:
                cols["app"][m] = True
                cols["appv"][m] = s.appv
                if s.lat:  # limited ad tracking: the SDK reports the all-zero id
                    cols["ev_device"][m] = ZERO_UUID
                    cols["ph"][m] = LAT_PLACEHOLDER
                else:
                    cols["ev_device"][m] = s.device_id
            else:
                epochs = cookie_epochs(P, s, t[m])
                cookies = cookie_text(P, s, epochs)
                cols["cookie"][m] = cookies
                cols["ev_cookie"][m] = cookies
                cols["tag"][m] = (~np.asarray(s.blocked)) & analytics_granted(P, s, epochs)
            if s.login:
                cols["ev_user"][m] = self.me.user_id
        web = ~cols["app"]
        # The tag sometimes fails to read its cookie and sends a placeholder instead.
        broken = web & (rng.random(k) < 0.01)
        for j in np.flatnonzero(broken):
            value = PLACEHOLDERS["cookie_id"][int(rng.integers(3))]
            cols["ev_cookie"][j] = value
            cols["ph"][j] = f"cookie_id={value}"
        bad_user = (cols["ev_user"] != "") & (rng.random(k) < 0.005)
        for j in np.flatnonzero(bad_user):
            value = PLACEHOLDERS["user_id"][int(rng.integers(3))]
            cols["ev_user"][j] = value
            cols["ph_user"][j] = f"user_id={value}"
        # App events buffered offline arrive days late.
        late = cols["app"] & (rng.random(k) < P.late_share)
        cols["late"][late] = rng.integers(1, 6, int(late.sum()))
        delivered = P.local_day(t) + cols["late"]
        kept = (delivered >= 0) & (delivered < P.days)
        sids = np.full(k, -1, dtype=np.int64)
        if kept.any():
            sel = {name: v[kept] for name, v in cols.items()}
            nk = int(kept.sum())
            sids[kept] = self.n_sessions + np.arange(nk)
            self.n_sessions += nk
            self.sessions.append(sel)
        return sids

    def _note_session_ids(self, cols: dict[str, np.ndarray]) -> None:
        """Identifiers the kept visits write (the tag's, or the server log's cookie)."""
        slot_idx = cols["slot"]
        for i in np.unique(slot_idx[slot_idx >= 0]):
            s = self.slots[int(i)]
            m = slot_idx == i
            kind = "family" if s.family else "none"
            if s.app:
                if not s.lat:
                    self.written.add("device_id", s.device_id, kind)
            else:
                tag = cols["tag"][m]
                real = cols["ev_cookie"][m] == cols["cookie"][m]
                # A cookie is written by the tag, or by the server log in its extended form.
                visible = (tag & real) | self.P.extended_log
                for c in np.unique(cols["cookie"][m][visible]):
                    self.written.add("cookie_id", str(c), kind)
            users = cols["ev_user"][m][cols["tag"][m] & (cols["ph_user"][m] == "")]
            if (users != "").any():
                self.written.add("user_id", self.me.user_id)
        for raw in np.unique(cols["signup"][cols["tag"]]):
            if raw:
                self.written.email(str(raw))

    def _visit_n(self, k: int) -> np.ndarray:
        bounce = self.rng.random(k) < 0.25
        return np.where(bounce, 1, np.minimum(2 + self.rng.poisson(3.5, k), 40))

    # the days -----------------------------------------------------------------------------------
    def run(self, tables: dict[str, Table]) -> list[tuple[str, int, str]]:
        """Simulate the person; append their records; return their truth rows."""
        P, rng, me = self.P, self.rng, self.me
        touches: list[Touch] = []

        # Visits: organic, direct and referral on the web are touches; app opens are not.
        rate = rng.gamma(2.0, SESSIONS_PER_DAY_MEAN / 2) * (0.3 if me.offline_only else 1.0)
        nb = int(rng.poisson(rate * P.days))
        b_t = P.instant(rng.integers(0, P.days, nb), diurnal(rng, nb))
        b_slot = self.pick_slots(b_t)
        b_web = np.array([not self.slots[i].app for i in b_slot], dtype=bool)
        visit = np.asarray(VISIT_CHANNELS, dtype=object)[
            pick(rng.random(nb), [VISIT_MIX[c] for c in VISIT_CHANNELS])
        ]
        entry = np.where(b_web, [CHANNEL_INDEX[c] for c in visit], -1)
        referrer = np.full(nb, "", dtype=object)
        org = b_web & (visit == "organic_search")
        ref = b_web & (visit == "referral")
        referrer[org] = np.asarray(vocab.ORGANIC_REFERRERS, dtype=object)[
            rng.integers(0, len(vocab.ORGANIC_REFERRERS), int(org.sum()))
        ]
        referrer[ref] = np.asarray(vocab.REFERRAL_REFERRERS, dtype=object)[
            rng.integers(0, len(vocab.REFERRAL_REFERRERS), int(ref.sum()))
        ]
        n = self._visit_n(nb)
        login_event = np.array([self.slots[i].login for i in b_slot], dtype=bool) & (
            rng.random(nb) < 0.25
        )
        n = np.where(login_event, np.maximum(n, 2), n)
        signup = np.full(nb, "", dtype=object)
        subscribed_from = self._plan_signup(b_t, b_web, signup)
        n = np.where(signup != "", np.maximum(n, 2), n)
        b_sid = self.add_sessions(
            b_t,
            b_slot,
            entry=entry,
            referrer=referrer,
            n=n,
            signup=signup,
            login_event=login_event,
        )
        keep_visit = b_web & (b_sid >= 0)
        visit_touch: Touch | None = None
        if keep_visit.any():
            sids = b_sid[keep_visit]
            _, ids = event_ids(self.seed, np.full(len(sids), self.pid), sids, np.zeros(len(sids)))
            tagged = np.concatenate([s["tag"] for s in self.sessions])[sids]
            visit_touch = Touch(
                t=b_t[keep_visit],
                channel=visit[keep_visit],
                touch_id=np.where(tagged, np.asarray(ids, dtype=object), ""),
                source=np.where(tagged, "events", "access_log"),
                slot=b_slot[keep_visit],
            )
            touches.append(visit_touch)

        expo = rng.gamma(1.2, 1 / 1.2)
        touches += self._ads(tables, expo)
        touches += self._emails(tables, subscribed_from)

        purchases, dropout_ms = self._purchases(touches, self.laws)
        if visit_touch is not None and dropout_ms >= 0:
            # After dropping out a person rarely comes back: most later visits never happen.
            first = self.sessions[0]
            gone = (first["t"] > dropout_ms) & (self.rng.random(len(first["t"])) > 0.2)
            first["n"] = np.where(gone, 0, first["n"])
            still = np.ones(len(visit_touch.t), dtype=bool)
            still[:] = first["n"][first["entry"] >= 0] > 0
            for name in ("t", "channel", "touch_id", "source", "slot"):
                setattr(visit_touch, name, getattr(visit_touch, name)[still])
        self._kiosk_visits(dropout_ms)
        n_orders = self._orders(tables, purchases)
        self._consents(tables)
        self._crm(tables)
        alive_until = dropout_ms if dropout_ms >= 0 else self.end
        for touch in touches:
            self.stats.update(f"touches:{c}" for c in touch.channel)
            self.stats.update(f"touches_alive:{c}" for c in touch.channel[touch.t <= alive_until])

        self._flush_sessions(tables["sessions"])
        return self._truth_rows(n_orders, dropout_ms, expo, rate)

    def _plan_signup(self, t: np.ndarray, web: np.ndarray, signup: np.ndarray) -> int:
        """When the person starts receiving newsletters (-1: never, 0: before the world)."""
        me, rng = self.me, self.rng
        if not me.email:
            return -1
        if rng.random() < 0.55:
            return 0
        if me.has_account and web.any() and rng.random() < 0.1 * self.P.days / 28:
            i = int(rng.choice(np.flatnonzero(web)))
            signup[i] = email_variant(rng, me.email)
            return int(t[i])
        return -1

    def _ads(self, tables: dict[str, Table], expo: float) -> list[Touch]:
        """Impressions, clicks and the visits they bring."""
        P, rng, seed, pid = self.P, self.rng, self.seed, self.pid
        rates = np.array([IMPRESSIONS_PER_DAY[c] for c in IMPRESSION_CHANNELS]) * expo * P.days
        counts = rng.poisson(rates)
        total = int(counts.sum())
        channel = np.repeat(np.asarray(IMPRESSION_CHANNELS, dtype=object), counts)
        t = P.instant(rng.integers(0, P.days, total), diurnal(rng, total))
        in_window = (P.utc_day(t) >= 0) & (P.utc_day(t) < P.days)
        channel, t = channel[in_window], t[in_window]
        total = len(t)
        apps = [i for i, s in enumerate(self.slots) if s.app and not s.family]
        slot = self.pick_slots(t, web_only=True)
        r = rng.random(total)
        if apps:
            in_app = r < 0.25
            slot[in_app] = np.asarray(apps)[rng.integers(0, len(apps), int(in_app.sum()))]
        slot[r > 0.95] = -1  # the ad server matched no identifier
        cookie = np.full(total, "", dtype=object)
        device = np.full(total, "", dtype=object)
        ph = np.full(total, "", dtype=object)
        for i in np.unique(slot[slot >= 0]):
            s = self.slots[int(i)]
            m = slot == i
            kind = "family" if s.family else "none"
            if s.app:
                if s.lat:
                    device[m] = ZERO_UUID
                    ph[m] = LAT_PLACEHOLDER
                else:
                    device[m] = s.device_id
                    self.written.add("device_id", s.device_id, kind)
            else:
                cookie[m] = cookie_text(P, s, cookie_epochs(P, s, t[m]))
                for c in np.unique(cookie[m]):
                    self.written.add("cookie_id", str(c), kind)
        counter = np.arange(total)
        key = unique64(seed, NS_IMPRESSION, pid, counter)
        imp_id = np.array(["imp_" + h for h in hex16(key)], dtype=object)
        campaign = np.empty(total, dtype=object)
        placement = np.empty(total, dtype=object)
        cost = np.zeros(total)
        for c in IMPRESSION_CHANNELS:
            m = channel == c
            k = int(m.sum())
            pool = [x.campaign_id for x in P.campaigns_of(c)]
            campaign[m] = np.asarray(pool, dtype=object)[rng.integers(0, len(pool), k)]
            places = vocab.PLACEMENTS[c]
            placement[m] = np.asarray(places, dtype=object)[rng.integers(0, len(places), k)]
            cpm = {"display": 3.0, "social": 5.0, "video": 8.0, "paid_search": 0.0}[c]
            cost[m] = np.round(cpm / 1000 * rng.uniform(0.5, 1.5, k), 6)
        creative = np.array([f"cr_{c}" for c in rng.integers(1, 31, total)], dtype=object)
        tables["impressions"].add(
            total,
            pid=pid,
            key=key,
            t=t,
            impression_id=imp_id,
            campaign_id=campaign,
            channel=channel,
            creative_id=creative,
            placement=placement,
            cookie_id=cookie,
            device_id=device,
            cost=cost,
            ph=ph,
        )
        touches = []
        shown = channel != "paid_search"  # search ads are paid per click: the click is the touch
        touches.append(
            Touch(
                t[shown],
                channel[shown],
                imp_id[shown],
                np.full(int(shown.sum()), "ad_impressions"),
                slot[shown],
            )
        )
        ctr = np.array([CLICK_THROUGH[c] for c in channel]) if total else np.zeros(0)
        clicked = (cookie != "") & (rng.random(total) < ctr)
        ck_t = t[clicked] + rng.integers(2_000, 40_000, int(clicked.sum()))
        # Affiliate clicks come without an impression (the partner's site shows the link).
        n_aff = int(rng.poisson(AFFILIATE_CLICKS_PER_DAY * expo * P.days))
        aff_t = P.instant(rng.integers(0, P.days, n_aff), diurnal(rng, n_aff))
        aff_slot = self.pick_slots(aff_t, web_only=True)
        click_t = np.concatenate([ck_t, aff_t])
        click_slot = np.concatenate([slot[clicked], aff_slot])
        click_channel = np.concatenate(
            [channel[clicked], np.full(n_aff, "affiliate", dtype=object)]
        )
        click_imp = np.concatenate([imp_id[clicked], np.full(n_aff, "", dtype=object)])
        click_campaign = np.concatenate(
            [
                campaign[clicked],
                np.asarray([c.campaign_id for c in P.campaigns_of("affiliate")], dtype=object)[
                    rng.integers(0, 2, n_aff)
                ],
            ]
        )
        click_creative = np.concatenate([creative[clicked], np.full(n_aff, "", dtype=object)])
        ok = (P.utc_day(click_t) >= 0) & (P.utc_day(click_t) < P.days)
        nc = int(ok.sum())
        if nc == 0:
            return touches
        click_t, click_slot = click_t[ok], click_slot[ok]
        click_channel, click_imp = click_channel[ok], click_imp[ok]
        click_campaign, click_creative = click_campaign[ok], click_creative[ok]
        ckey = unique64(seed, NS_CLICK, pid, np.arange(nc))
        hexes = hex16(ckey)
        prefix = {
            "paid_search": "Cj0KCQiA",
            "video": "yt_",
            "social": "IwAR",
            "display": "dsp_",
            "affiliate": "aff_",
        }
        click_id = np.array(
            [prefix[c] + h for c, h in zip(click_channel, hexes, strict=True)], dtype=object
        )
        click_cookie = np.empty(nc, dtype=object)
        for i in np.unique(click_slot):
            s = self.slots[int(i)]
            m = click_slot == i
            click_cookie[m] = cookie_text(P, s, cookie_epochs(P, s, click_t[m]))
            for c in np.unique(click_cookie[m]):
                self.written.add("cookie_id", str(c), "family" if s.family else "none")
        query = np.array(
            [
                _ad_query(c, cmp, cid)
                for c, cmp, cid in zip(click_channel, click_campaign, click_id, strict=True)
            ],
            dtype=object,
        )
        cpc = {"paid_search": 0.8, "social": 0.35, "display": 0.2, "video": 0.15, "affiliate": 1.2}
        cost = np.round(np.array([cpc[c] for c in click_channel]) * rng.uniform(0.4, 1.6, nc), 2)
        tables["clicks"].add(
            nc,
            pid=pid,
            key=ckey,
            t=click_t,
            click_id=click_id,
            impression_id=click_imp,
            campaign_id=click_campaign,
            channel=click_channel,
            creative_id=click_creative,
            cookie_id=click_cookie,
            cost=cost,
            landing_url=vocab.SHOP + "/" + query,
        )
        land_t = click_t + rng.integers(800, 3_000, nc)
        self.add_sessions(
            land_t,
            click_slot,
            entry=np.array([CHANNEL_INDEX[c] for c in click_channel]),
            query=query,
            referrer=np.array([vocab.AD_REFERRERS[c] for c in click_channel], dtype=object),
            n=self._visit_n(nc),
        )
        paid = np.isin(click_channel, ("paid_search", "affiliate"))
        touches.append(
            Touch(
                click_t[paid],
                click_channel[paid],
                click_id[paid],
                np.full(int(paid.sum()), "ad_clicks"),
                click_slot[paid],
            )
        )
        return touches

    def _emails(self, tables: dict[str, Table], subscribed_from: int) -> list[Touch]:
        """Newsletters: sent, delivered or bounced, opened, clicked, unsubscribed."""
        P, rng, me, seed, pid = self.P, self.rng, self.me, self.seed, self.pid
        if subscribed_from < 0 or not P.email_sends:
            return []
        esp_email = email_variant(rng, me.email)
        open_rate = rng.beta(2, 6)
        rows: list[
            tuple[int, str, str, str, str, int]
        ] = []  # t, type, campaign, link, landing, send
        opens_t: list[int] = []
        opens_i: list[int] = []
        landings: list[tuple[int, int, str]] = []
        for si, send in enumerate(P.email_sends):
            if send.send_ms < subscribed_from:
                continue
            sent = send.send_ms + int(rng.integers(0, 30 * MINUTE_MS))
            rows.append((sent, "sent", send.campaign_id, "", "", si))
            if rng.random() < 0.03:
                bounced = sent + int(rng.integers(1_000, 60_000))
                rows.append((bounced, "bounce", send.campaign_id, "", "", si))
                continue
            delivered = sent + int(rng.integers(1_000, 60_000))
            rows.append((delivered, "delivered", send.campaign_id, "", "", si))
            if rng.random() < open_rate:
                opened = delivered + int(rng.exponential(3 * HOUR_MS))
                opens_i.append(len(rows))
                opens_t.append(opened)
                rows.append((opened, "open", send.campaign_id, "", "", si))
                if rng.random() < 0.15:
                    clicked = opened + int(rng.integers(5_000, 120_000))
                    link = (
                        f"{vocab.SHOP}/?utm_source=newsletter&utm_medium=email"
                        f"&utm_campaign={send.campaign_id}"
                    )
                    slot = int(self.pick_slots(np.array([clicked]), web_only=True)[0])
                    s = self.slots[slot]
                    landing = ""
                    if rng.random() < 0.5:
                        landing = str(
                            cookie_text(P, s, cookie_epochs(P, s, np.array([clicked])))[0]
                        )
                        self.written.add("cookie_id", landing, "family" if s.family else "none")
                    rows.append((clicked, "click", send.campaign_id, link, landing, si))
                    landings.append((clicked, slot, send.campaign_id))
            if rng.random() < 0.004:
                gone = delivered + int(rng.exponential(DAY_MS))
                rows.append((gone, "unsubscribe", send.campaign_id, "", "", si))
                self.consent_rows.append(
                    (gone, "email", esp_email, "email_marketing", "withdrawn", "email_link", "none")
                )
                break
        t = np.array([r[0] for r in rows], dtype=np.int64)
        ok = (P.utc_day(t) >= 0) & (P.utc_day(t) < P.days)
        k = len(rows)
        key = unique64(seed, NS_EMAIL_EVENT, pid, np.arange(k))
        event_id = np.array(["em_" + h for h in hex16(key)], dtype=object)
        campaigns = np.array([r[2] for r in rows], dtype=object)
        msg = unique64(seed, NS_MESSAGE, pid, np.array([r[5] for r in rows], dtype=np.int64))
        tables["emails"].add(
            int(ok.sum()),
            pid=pid,
            key=key[ok],
            t=t[ok],
            event_id=event_id[ok],
            event_type=np.array([r[1] for r in rows], dtype=object)[ok],
            email=esp_email,
            campaign_id=campaigns[ok],
            message_id=np.array(["msg_" + h[:12] for h in hex16(msg)], dtype=object)[ok],
            link_url=np.array([r[3] for r in rows], dtype=object)[ok],
            landing_cookie_id=np.array([r[4] for r in rows], dtype=object)[ok],
        )
        if ok.any():
            self.written.email(esp_email)
        if landings:
            lt = np.array([x[0] for x in landings], dtype=np.int64) + rng.integers(
                500, 3_000, len(landings)
            )
            self.add_sessions(
                lt,
                np.array([x[1] for x in landings]),
                entry=np.full(len(landings), CHANNEL_INDEX["email"]),
                query=np.array(
                    [
                        f"?utm_source=newsletter&utm_medium=email&utm_campaign={x[2]}"
                        for x in landings
                    ],
                    dtype=object,
                ),
                n=self._visit_n(len(landings)),
            )
        if not opens_i:
            return []
        oi = np.array(opens_i)
        o_ok = ok[oi]
        return [
            Touch(
                np.array(opens_t, dtype=np.int64)[o_ok],
                np.full(int(o_ok.sum()), "email", dtype=object),
                event_id[oi][o_ok],
                np.full(int(o_ok.sum()), "email_events"),
                np.full(int(o_ok.sum()), -1),
            )
        ]

    def _purchases(self, touches: list[Touch], laws: Laws):
        """Baseline purchases (Poisson lambda) and touch-caused ones, cut at dropout."""
        P, rng = self.P, self.rng
        cand_t: list[np.ndarray] = []
        cand_cause: list[np.ndarray] = []
        cand_touch: list[np.ndarray] = []
        cand_src: list[np.ndarray] = []
        cand_slot: list[np.ndarray] = []
        for touch in touches:
            if len(touch.t) == 0:
                continue
            effect = np.array([P.effects[c] for c in touch.channel])
            caused = rng.random(len(touch.t)) < effect
            k = int(caused.sum())
            same_visit = rng.random(k) < 0.35
            lag = np.where(
                same_visit,
                rng.integers(3 * MINUTE_MS, 40 * MINUTE_MS, k),
                np.minimum(rng.exponential(1.5 * DAY_MS, k), 10 * DAY_MS).astype(np.int64),
            )
            cand_t.append(touch.t[caused] + lag)
            cand_cause.append(touch.channel[caused])
            cand_touch.append(touch.touch_id[caused])
            cand_src.append(touch.source[caused])
            cand_slot.append(touch.slot[caused])
        nb = int(rng.poisson(laws.lam * P.days))
        cand_t.append(P.instant(rng.integers(0, P.days, nb), rng.uniform(8, 21, nb) * 3600))
        cand_cause.append(np.full(nb, "baseline", dtype=object))
        cand_touch.append(np.full(nb, "", dtype=object))
        cand_src.append(np.full(nb, "", dtype=object))
        cand_slot.append(np.full(nb, -1))
        t = np.concatenate(cand_t)
        t = t - t % 1000  # orders are stamped to the second
        order = np.argsort(t, kind="stable")
        inside = t[order] < self.end
        order = order[inside & (t[order] >= self.begin)]
        kept: list[int] = []
        dropout_ms = -1
        for i in order:
            kept.append(int(i))
            if rng.random() < laws.p_dropout:  # BG/NBD: a customer can only leave after buying
                dropout_ms = int(t[i])
                break
        idx = np.array(kept, dtype=np.int64)
        causes = np.concatenate(cand_cause)[idx] if len(idx) else np.zeros(0, dtype=object)
        return (
            {
                "t": t[idx],
                "cause": causes,
                "touch": np.concatenate(cand_touch)[idx] if len(idx) else causes,
                "source": np.concatenate(cand_src)[idx] if len(idx) else causes,
                "slot": np.concatenate(cand_slot)[idx] if len(idx) else np.zeros(0, dtype=np.int64),
            },
            dropout_ms,
        )

    def _kiosk_visits(self, dropout_ms: int) -> None:
        """Store visits where the person logs in on the shared kiosk tablet."""
        if self.kiosk < 0:
            return
        P, rng = self.P, self.rng
        k = 1 + int(rng.poisson(P.days / 10))
        t = P.instant(rng.integers(0, P.days, k), rng.uniform(9, 20, k) * 3600)
        if dropout_ms >= 0:
            t = t[(t <= dropout_ms) | (rng.random(k) < 0.2)]
        if len(t) == 0:
            t = P.instant(np.array([int(rng.integers(0, P.days))]), np.array([11 * 3600.0]))
        k = len(t)
        device = kiosk_device_id(self.seed, self.kiosk)
        cols = {
            "t": t.astype(np.int64),
            "anchor_end": np.zeros(k, dtype=bool),
            "app": np.ones(k, dtype=bool),
            "kiosk": np.ones(k, dtype=bool),
            "cookie": np.full(k, "", dtype=object),
            "ev_cookie": np.full(k, "", dtype=object),
            "ev_device": np.full(k, device, dtype=object),
            "ev_user": np.full(k, self.me.user_id, dtype=object),
            "login_event": np.ones(k, dtype=bool),
            "ip": np.full(
                k, _public_ip(self.seed, "store", self.kiosk, FR_FIRST_OCTETS), dtype=object
            ),
            "ua": np.full(k, vocab.KIOSK_UA, dtype=object),
            "zone": np.full(k, PARIS, dtype=np.int64),
            "skew": np.zeros(k, dtype=np.int64),
            "entry": np.full(k, -1, dtype=np.int64),
            "query": np.full(k, "", dtype=object),
            "referrer": np.full(k, "", dtype=object),
            "n": 3 + rng.integers(0, 4, k),
            "tag": np.ones(k, dtype=bool),
            "order": np.full(k, "", dtype=object),
            "amount": np.zeros(k),
            "late": np.zeros(k, dtype=np.int64),
            "signup": np.full(k, "", dtype=object),
            "appv": np.full(k, vocab.KIOSK_APP_VERSION, dtype=object),
            "ph": np.full(k, "", dtype=object),
            "ph_user": np.full(k, "", dtype=object),
            "slot": np.full(k, -2, dtype=np.int64),
        }
        self.sessions.append(cols)
        self.n_sessions += k
        self.written.add("device_id", device, "kiosk")
        self.written.add("user_id", self.me.user_id)

    def _orders(self, tables: dict[str, Table], purchases: dict[str, np.ndarray]) -> int:
        """Each purchase becomes an order (and, online, a visit that ends with it)."""
        P, rng, me, seed, pid = self.P, self.rng, self.me, self.seed, self.pid
        k = len(purchases["t"])
        if k == 0:
            return 0
        gg = P.gamma_gamma
        amount = np.maximum(np.round(rng.gamma(gg.p, 1.0 / self.laws.nu, k), 2), 1.0)
        has_app = [i for i, s in enumerate(self.slots) if s.app and not s.family]
        channels = []
        for j in range(k):
            r = rng.random()
            if me.offline_only:
                channels.append("store" if r < 0.9 else "call_center")
            elif purchases["cause"][j] != "baseline" and purchases["source"][j] != "ad_impressions":
                channels.append(
                    "web" if r < 0.85 or not has_app else ("app" if r < 0.95 else "store")
                )
            else:
                opts = ("web", "app", "store", "call_center")
                w = (0.55, 0.2 if has_app else 0.0, 0.2, 0.05)
                channels.append(opts[int(pick(r, w))])
        channel = np.array(channels, dtype=object)
        till = channel == "store"  # writes local time without an offset: never an hour said twice
        t = np.where(till, P.first_pass(purchases["t"]), purchases["t"])
        local = P.local_day(t)
        ymd = [(P.start + dt.timedelta(days=int(d))).strftime("%Y%m%d") for d in local]
        seq = np.arange(k)
        number = scramble(pid * 64 + seq, 10**12, seed, "order")
        order_id = np.array(
            [f"o_{d}_{x:012d}" for d, x in zip(ymd, number, strict=True)], dtype=object
        )
        key = unique64(seed, NS_ORDER, pid, seq)
        status = np.asarray(("placed", "cancelled", "returned"), dtype=object)[
            pick(rng.random(k), (0.955, 0.02, 0.025))
        ]
        cols = {
            name: np.full(k, "", dtype=object)
            for name in (
                "user_id",
                "cookie_id",
                "device_id",
                "email",
                "phone",
                "loyalty_card",
                "store_id",
                "ph",
            )
        }
        lines = np.array(
            [_order_lines(rng, float(a), P.product_prices) for a in amount], dtype=object
        )
        for j in range(k):
            c = channel[j]
            if c in ("web", "app"):
                slot = self._purchase_slot(c, int(purchases["slot"][j]), int(t[j]))
                s = self.slots[slot]
                channel[j] = "app" if s.app else "web"
                self._purchase_visit(slot, int(t[j]), str(order_id[j]), float(amount[j]))
                if s.login:
                    cols["user_id"][j] = me.user_id
                    self.written.add("user_id", me.user_id)
                kind = "family" if s.family else "none"
                if s.app:
                    cols["device_id"][j] = ZERO_UUID if s.lat else s.device_id
                    if s.lat:
                        cols["ph"][j] = LAT_PLACEHOLDER
                    else:
                        self.written.add("device_id", s.device_id, kind)
                else:
                    ck = str(cookie_text(P, s, cookie_epochs(P, s, t[j : j + 1]))[0])
                    cols["cookie_id"][j] = ck
                    self.written.add("cookie_id", ck, kind)
                if me.email and (not s.login or rng.random() < 0.8):
                    cols["email"][j] = email_variant(rng, me.email)
                if me.mobile and rng.random() < 0.15:
                    cols["phone"][j] = phone_variant(rng, me.mobile)
                if me.loyalty_card and rng.random() < 0.2:
                    cols["loyalty_card"][j] = me.loyalty_card
            elif c == "store":
                cols["store_id"][j] = store_id(
                    self.hh.store if rng.random() < 0.8 else int(rng.integers(P.n_stores))
                )
                if me.loyalty_card and rng.random() < 0.85:
                    cols["loyalty_card"][j] = me.loyalty_card
                r = rng.random()
                if r < 0.04:
                    cols["email"][j] = "test@test.com"  # the cashier had to type something
                    cols["ph"][j] = "email=test@test.com"
                elif me.family_email and r < 0.3:
                    cols["email"][j] = email_variant(rng, me.family_email)
                elif me.email and r < 0.45:
                    cols["email"][j] = email_variant(rng, me.email)
                r = rng.random()
                if r < 0.03:
                    cols["phone"][j] = "0"
                    cols["ph"][j] = (cols["ph"][j] + ";" if cols["ph"][j] else "") + "phone=0"
                elif me.mobile and r < 0.35:
                    cols["phone"][j] = phone_variant(rng, me.mobile)
            else:  # call centre: the agent types what they hear
                cols["store_id"][j] = CALL_CENTRE_STORE
                phones = me.mobile or me.landline
                if phones and rng.random() < 0.9:
                    cols["phone"][j] = phone_variant(rng, phones)
                if me.email and rng.random() < 0.5:
                    cols["email"][j] = email_variant(rng, me.email, typo=0.2)
            self._note_order_ids(cols, j)
        tables["orders"].add(
            k,
            pid=pid,
            key=key,
            t=t,
            order_id=order_id,
            channel=channel,
            amount=amount,
            lines=lines,
            status=status,
            **cols,
        )
        when = _iso_utc(t)
        for j in range(k):
            self.conversions.append(
                ",".join(
                    [
                        str(order_id[j]),
                        self.person_id,
                        when[j],
                        str(channel[j]),
                        f"{amount[j]:.2f}",
                        "EUR",
                        str(purchases["cause"][j]),
                        str(purchases["touch"][j]),
                        str(purchases["source"][j]),
                        str(status[j]),
                    ]
                )
            )
            self.stats[f"conversions:{purchases['cause'][j]}"] += 1
        return k

    def _note_order_ids(self, cols: dict[str, np.ndarray], j: int) -> None:
        me = self.me
        raw = str(cols["email"][j])
        if raw and raw != "test@test.com":
            kind = (
                "family" if me.family_email and raw.strip().lower() == me.family_email else "none"
            )
            self.written.email(raw, kind)
        phone = str(cols["phone"][j])
        if phone and phone != "0":
            for formats in (me.mobile, me.landline):
                if phone in formats:
                    self.written.phone(phone, formats[-1])
        if cols["loyalty_card"][j]:
            self.written.add("loyalty_card", str(cols["loyalty_card"][j]))

    def _purchase_slot(self, channel: str, touch_slot: int, t: int) -> int:
        rng = self.rng
        apps = [i for i, s in enumerate(self.slots) if s.app and not s.family and s.install_ms <= t]
        if channel == "web" or not apps:
            if touch_slot >= 0 and not self.slots[touch_slot].app and rng.random() < 0.7:
                return touch_slot
            logins = [i for i in self.web if self.slots[i].login]
            pool = logins if logins and rng.random() < 0.8 else self.web
            return int(pool[int(rng.integers(len(pool)))])
        return int(apps[int(rng.integers(len(apps)))])

    def _purchase_visit(self, slot: int, t: int, order_id: str, amount: float) -> None:
        """The visit that ends with the order: a few product views, cart, checkout, purchase."""
        n = 4 + int(self.rng.integers(0, 3))
        self.add_sessions(
            np.array([t], dtype=np.int64),
            np.array([slot]),
            entry=np.array([-1]),
            n=np.array([n]),
            anchor_end=True,
            order=order_id,
            amount=amount,
        )

    def _consents(self, tables: dict[str, Table]) -> None:
        """Banners on new cookies, app prompts, sign-ups, one-purpose withdrawals."""
        P, rng, me = self.P, self.rng, self.me
        rows = self.consent_rows
        for s in self.slots:
            if s.family and self.pid != self.hh.members[0]:
                continue  # the tablet's banner was answered once, by its owner
            if s.app:
                if s.install_ms > self.begin and not s.lat:
                    granted = rng.random() < 0.7
                    status = "granted" if granted else "withdrawn"
                    rows.append(
                        (s.install_ms, "device_id", s.device_id, "ads_personalization", status,
                         "app_prompt", "none")
                    )  # fmt: skip
                continue
            last_epoch = int(cookie_epochs(P, s, np.array([self.end - 1]))[0])
            for epoch in range(1, last_epoch + 1):
                born = P.start_wall_ms + int((epoch * s.lifetime - s.phase) * DAY_MS)
                if born < self.begin or born >= self.end:
                    continue
                ep = np.array([epoch])
                cookie = str(cookie_text(P, s, ep)[0])
                analytics = bool(analytics_granted(P, s, ep)[0])
                ads = rng.random() < (0.75 if analytics else 0.2)
                t0 = born + int(rng.integers(1_000, 20_000))
                kind = "family" if s.family else "none"
                for purpose, yes in (("analytics", analytics), ("ads_personalization", ads)):
                    status = "granted" if yes else "withdrawn"
                    rows.append((t0, "cookie_id", cookie, purpose, status, "web_banner", kind))
        if me.has_account and rng.random() < 0.03 * P.days / 7:
            # One purpose only: the rest of the person's consent is untouched.
            purpose = "ads_personalization" if rng.random() < 0.7 else "analytics"
            t = int(P.instant(int(rng.integers(0, P.days)), diurnal(rng, 1)[0]))
            rows.append(
                (t, "user_id", me.user_id, purpose, "withdrawn", "preference_center", "none")
            )
        if me.loyalty_card and rng.random() < 0.02 * P.days / 7:
            t = int(P.instant(int(rng.integers(0, P.days)), rng.uniform(9, 19) * 3600))
            rows.append(
                (t, "loyalty_card", me.loyalty_card, "email_marketing", "granted", "store", "none")
            )
        if me.mobile and rng.random() < 0.005 * P.days / 7:
            t = int(P.instant(int(rng.integers(0, P.days)), rng.uniform(9, 19) * 3600))
            raw = phone_variant(rng, me.mobile)
            rows.append((t, "phone", raw, "email_marketing", "withdrawn", "call_center", "none"))
        if not rows:
            return
        when = np.array([r[0] for r in rows], dtype=np.int64)
        day = P.local_day(when)
        ok = (day >= 0) & (day < P.days)
        k = len(rows)
        key = unique64(self.seed, NS_CONSENT, self.pid, np.arange(k))
        for r, good in zip(rows, ok, strict=True):
            if not good:
                continue
            id_type, value, kind = r[1], r[2], r[6]
            if id_type == "email":
                self.written.email(value)
            elif id_type == "phone":
                self.written.phone(value, me.mobile[-1])
            else:
                self.written.add(id_type, value, kind)
        sel = np.flatnonzero(ok)
        tables["consents"].add(
            len(sel),
            pid=self.pid,
            key=key[sel],
            t=when[sel],
            consent_id=np.array(["cs_" + h for h in hex16(key[sel])], dtype=object),
            id_type=np.array([rows[i][1] for i in sel], dtype=object),
            id_value=np.array([rows[i][2] for i in sel], dtype=object),
            purpose=np.array([rows[i][3] for i in sel], dtype=object),
            status=np.array([rows[i][4] for i in sel], dtype=object),
            channel=np.array([rows[i][5] for i in sel], dtype=object),
        )

    def _crm(self, tables: dict[str, Table]) -> None:
        """The person's CRM records, one per source system, re-exported whenever they change."""
        P, rng, me, pid = self.P, self.rng, self.me, self.pid
        systems: list[str] = []
        if me.has_account:
            systems.append("ecommerce")
        if me.loyalty_card:
            systems.append("pos")
            if rng.random() < 0.12:
                systems.append("loyalty_app")
        if systems and rng.random() < 0.08:
            systems.append("call_center")
        rows: list[dict[str, object]] = []
        for k, system in enumerate(systems):
            number = f"C{int(scramble(pid * 4 + k, 10**9, self.seed, 'crm')):09d}"
            self.written.add("customer_number", number)
            if rng.random() < 0.9:
                created = self.begin - int(rng.uniform(1, CRM_HISTORY_DAYS) * DAY_MS)
            else:
                created = int(P.instant(int(rng.integers(0, P.days)), diurnal(rng, 1)[0]))
            changes = np.sort(rng.uniform(self.begin, self.end, int(rng.poisson(0.02 * P.days))))
            versions = [created] + [int(c) for c in changes if c > created]
            pre = [v for v in versions if v < self.begin]
            shown = ([pre[-1]] if pre else []) + [v for v in versions if v >= self.begin]
            for v in shown:
                rows.append(self._crm_version(system, number, v))
        if not rows:
            return
        k = len(rows)
        t = np.array([r["t"] for r in rows], dtype=np.int64)
        day = np.maximum(P.local_day(t), 0)
        ok = day < P.days
        key = unique64(self.seed, NS_CRM, pid, np.arange(k))
        sel = np.flatnonzero(ok)
        cols = {name: np.array([rows[i][name] for i in sel], dtype=object) for name in (
            "customer_number", "first_name", "last_name", "email", "phone", "mobile_phone",
            "address_line1", "postal_code", "city", "birth_date", "store_id", "loyalty_card",
            "source_system", "preferred_language", "ph",
        )}  # fmt: skip
        tables["crm"].add(len(sel), pid=pid, key=key[sel], t=t[sel], day=day[sel], **cols)

    def _crm_version(self, system: str, number: str, t: int) -> dict[str, object]:
        """One version of a CRM record as that system writes it."""
        rng, me, hh = self.rng, self.me, self.hh
        first, last = me.first, me.last
        if system == "pos":
            last = last.upper()
        elif system == "call_center":
            first, last = vocab.ascii_slug(first).capitalize() or first, last.lower()
        if rng.random() < 0.03:  # a spreadsheet formula typed into a name
            if rng.random() < 0.5:
                first = vocab.CSV_INJECTION
            else:
                last = vocab.CSV_INJECTION
        email = ""
        notes: list[str] = []  # the placeholders this row carries, field=value
        if me.email or me.family_email:
            r = rng.random()
            if system == "pos" and r < 0.03:
                email = "test@test.com"
                notes.append("email=test@test.com")
            elif me.family_email and r < 0.6:  # the couple's shared address
                email = email_variant(rng, me.family_email)
            elif me.email and r < 0.9:
                typo = {"pos": 0.3, "call_center": 0.35}.get(system, 0.0)
                email = email_variant(rng, me.email, typo=typo)
        if email and not notes:
            kind = "family" if email.strip().lower() == me.family_email else "none"
            self.written.email(email, kind)
        phone = mobile = ""
        if me.landline and rng.random() < 0.8:
            phone = phone_variant(rng, me.landline)
            self.written.phone(phone, me.landline[-1])
        elif me.mobile and rng.random() < 0.4:
            phone = phone_variant(rng, me.mobile)
            self.written.phone(phone, me.mobile[-1])
        if system == "pos" and not phone and rng.random() < 0.03:
            phone = "0"
            notes.append("phone=0")
        if me.mobile and rng.random() < 0.7:
            mobile = phone_variant(rng, me.mobile)
            self.written.phone(mobile, me.mobile[-1])
        y, m, d = me.birth
        birth = f"{y:04d}-{m:02d}-{d:02d}" if rng.random() < 0.7 else f"{d:02d}/{m:02d}/{y:04d}"
        card = me.loyalty_card if system in ("pos", "loyalty_app") else ""
        if card:
            self.written.add("loyalty_card", card)
        address = hh.address_line1 if rng.random() < 0.9 else ""
        if address and hh.address_line2:
            # Web forms keep a second address line, and the export writes it on a line of its
            # own in the quoted cell (RFC 4180); a till or a call centre types it after a comma.
            between = "\n" if system in ("ecommerce", "loyalty_app") else ", "
            address = f"{address}{between}{hh.address_line2}"
        known = rng.random()
        if known >= 0.8:  # not given; a till fills the field with its "unknown" date
            birth = ""
            if system == "pos" and known < 0.85:
                birth = PLACEHOLDERS["birth_date"][0]
                notes.append(f"birth_date={birth}")
        return {
            "t": t,
            "customer_number": number,
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": phone,
            "mobile_phone": mobile,
            "address_line1": address,
            "postal_code": hh.postal_code,
            "city": hh.city,
            "birth_date": birth,
            "store_id": store_id(hh.store) if system != "ecommerce" else "",
            "loyalty_card": card,
            "source_system": system,
            "preferred_language": me.language,
            "ph": ";".join(notes),
        }

    # output -------------------------------------------------------------------------------------
    @property
    def person_id(self) -> str:
        """The person's id in the truth tables."""
        return f"p_{self.pid:08d}"

    def _flush_sessions(self, table: Table) -> None:
        if not self.sessions:
            return
        cols = {name: np.concatenate([s[name] for s in self.sessions]) for name in self.sessions[0]}
        sid = np.arange(len(cols["t"]))
        keep = cols["n"] > 0
        kept = {name: v[keep] for name, v in cols.items()}
        self._note_session_ids(kept)
        del kept["slot"]
        table.add(int(keep.sum()), pid=self.pid, sid=sid[keep], **kept)

    def _truth_rows(self, n_orders: int, dropout_ms: int, expo: float, rate: float):
        P, laws, me = self.P, self.laws, self.me
        gg = P.gamma_gamma
        marketing = sum(
            IMPRESSIONS_PER_DAY[c] * expo * P.effects[c] for c in ("display", "social", "video")
        )
        marketing += (
            IMPRESSIONS_PER_DAY["paid_search"]
            * expo
            * CLICK_THROUGH["paid_search"]
            * P.effects["paid_search"]
        )
        marketing += AFFILIATE_CLICKS_PER_DAY * expo * P.effects["affiliate"]
        marketing += rate * sum(VISIT_MIX[c] * P.effects[c] for c in VISIT_CHANNELS) * 0.8
        dropout = ""
        dropout_ts = ""
        if dropout_ms >= 0:
            dropout_ts = _iso_utc(np.array([dropout_ms]))[0]
            dropout = dropout_ts[:10]
        row = ",".join(
            [
                self.person_id,
                self.hh.household_id,
                "true" if me.offline_only else "false",
                f"{laws.lam:.6g}",
                f"{laws.p_dropout:.6g}",
                dropout,
                f"{laws.nu:.6g}",
                f"{gg.p / laws.nu:.2f}",
                str(n_orders),
                f"{marketing:.6g}",
                dropout_ts,
                "false" if dropout_ms >= 0 else "true",
            ]
        )
        out: list[tuple[str, int, str]] = [("persons", self.pid, row)]
        for id_type, value, kind in sorted(self.written.ids):
            out.append(("identifiers", self.pid, _csv_row((id_type, value, self.person_id, kind))))
        for id_type, raw, norm in sorted(self.written.variants):
            out.append(("identifier_variants", -1, _csv_row((id_type, raw, norm))))
        out += [("conversions", self.pid, line) for line in self.conversions]
        return out


def _csv_row(cells: tuple[str, ...]) -> str:
    from crossdata.world.formats import csv_line

    return csv_line(cells)


def _iso_utc(ms: np.ndarray) -> list[str]:
    body = np.datetime_as_string(np.asarray(ms, dtype=np.int64).astype("datetime64[ms]"), unit="s")
    return [b + "Z" for b in body.tolist()]


def _ad_query(channel: str, campaign: str, click_id: str) -> str:
    """The landing page's query string for an ad click (utm tags and the click id)."""
    if channel == "paid_search":
        return f"?utm_source=google&utm_medium=cpc&utm_campaign={campaign}&gclid={click_id}"
    # gclid/fbclid are what Google and Meta append; other ad servers append their own click id
    # (clid here): a display or video click must not look like a search click.
    if channel == "video":
        return f"?utm_source=youtube&utm_medium=video&utm_campaign={campaign}&clid={click_id}"
    if channel == "social":
        return (
            f"?utm_source=instagram&utm_medium=paid_social&utm_campaign={campaign}"
            f"&fbclid={click_id}"
        )
    if channel == "display":
        return f"?utm_source=dsp&utm_medium=display&utm_campaign={campaign}&clid={click_id}"
    return f"?utm_source=affiliate&utm_medium=affiliate&utm_campaign={campaign}&clid={click_id}"


def _order_lines(rng: np.random.Generator, amount: float, prices: tuple[float, ...]) -> str:
    """1 to 3 order lines whose total is exactly ``amount``."""
    k = int(rng.integers(1, 4))
    skus = rng.integers(0, len(prices), k)
    lines = []
    remaining = round(amount, 2)
    shares = rng.dirichlet(np.ones(k)) if k > 1 else np.ones(1)
    for j in range(k - 1):
        qty = 1 + int(rng.random() < 0.2)
        unit = round(amount * float(shares[j]) / qty, 2)
        if unit <= 0.5 or remaining - unit * qty <= 0.5:
            continue
        remaining = round(remaining - unit * qty, 2)
        lines.append({"sku": f"sku-{int(skus[j]) + 1:04d}", "quantity": qty, "unit_price": unit})
    lines.append({"sku": f"sku-{int(skus[-1]) + 1:04d}", "quantity": 1, "unit_price": remaining})
    return json.dumps(lines, separators=(",", ":"))


def simulate_people(P: WorldParams, pids: np.ndarray, tables: dict[str, Table]):
    """Simulate a chunk of people; returns their truth rows and summed statistics."""
    truth: list[tuple[str, int, str]] = []
    stats: Counter[str] = Counter()
    for pid in pids.tolist():
        sim = PersonSim(P, int(pid))
        truth += sim.run(tables)
        stats.update(sim.stats)
    return truth, stats


__all__ = ["PersonSim", "person_laws", "simulate_people"]
