"""The sample world's parameters: every law and global structure, derived on the driver from
the settings and the seed.

``WorldParams`` is small and picklable: it travels to the executors, where each person is
simulated from it and their own random stream. Nothing here scales with the number of events.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from crossdata import contracts
from crossdata.config.schema import WorldSettings
from crossdata.world import vocab
from crossdata.world.hashing import group_rng, hash64, unique64

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

PAID_CHANNELS: tuple[str, ...] = ("display", "social", "video", "paid_search", "affiliate")
IMPRESSION_CHANNELS: tuple[str, ...] = ("display", "social", "video", "paid_search")
VISIT_CHANNELS: tuple[str, ...] = ("organic_search", "direct", "referral")
CHANNEL_INDEX: dict[str, int] = {c: i for i, c in enumerate(contracts.CHANNELS)}

# What one "touch" is, per channel: the record whose id is a conversion's cause_touch_id.
TOUCH_KIND: dict[str, str] = {
    "display": "ad_impressions",
    "social": "ad_impressions",
    "video": "ad_impressions",
    "paid_search": "ad_clicks",
    "affiliate": "ad_clicks",
    "email": "email_events (open)",
    "organic_search": "events (landing page_view of a visit)",
    "referral": "events (landing page_view of a visit)",
    "direct": "events (landing page_view of a visit)",
}

# Incremental conversion probability of one touch, before the seed's +-20% jitter.
BASE_EFFECTS: dict[str, float] = {
    "paid_search": 0.030,
    "organic_search": 0.012,
    "social": 0.0012,
    "display": 0.0006,
    "video": 0.0009,
    "email": 0.015,
    "affiliate": 0.025,
    "referral": 0.008,
    "direct": 0.004,
}
IMPRESSIONS_PER_DAY: dict[str, float] = {
    "display": 0.5,
    "social": 0.35,
    "video": 0.15,
    "paid_search": 0.12,
}
CLICK_THROUGH: dict[str, float] = {
    "display": 0.004,
    "social": 0.008,
    "video": 0.005,
    "paid_search": 0.08,
}
AFFILIATE_CLICKS_PER_DAY = 0.01
VISIT_MIX: dict[str, float] = {"organic_search": 0.4, "direct": 0.4, "referral": 0.2}
SESSIONS_PER_DAY_MEAN = 1.3  # browse visits of an active person (Gamma(2, 0.65))

# Lines written per person and day by source, measured on generated worlds (bots included);
# they size the shards of each day folder and the README's volume table.
LINES_PER_PERSON_DAY: dict[str, float] = {
    "events": 4.7,
    "access_log": 4.4,
    "ad_impressions": 1.15,
    "ad_clicks": 0.025,
    "email_events": 0.32,
    "crm_customers": 0.02,  # plus the first day's full snapshot (CRM_SNAPSHOT_PER_PERSON)
    "orders": 0.04,
    "consent": 0.26,
    "spend": 0.0,
}
CRM_SNAPSHOT_PER_PERSON = 1.4

PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    # field -> placeholder values the world writes there (never identifiers of anyone)
    "cookie_id": ("undefined", "null", "0"),
    "device_id": ("00000000-0000-0000-0000-000000000000",),
    "user_id": ("null", "0", "undefined"),
    "email": ("test@test.com",),
    "phone": ("0",),
    "birth_date": ("1900-01-01",),  # a till's "unknown" (collect.placeholder_birth_dates)
}
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

# Namespaces of unique64: two ids from different namespaces can never collide.
NS_COOKIE, NS_DEVICE, NS_EVENT, NS_IMPRESSION, NS_CLICK = 1, 2, 3, 4, 5
NS_EMAIL_EVENT, NS_CONSENT, NS_FAMILY_COOKIE, NS_FAMILY_DEVICE, NS_KIOSK = 6, 7, 8, 9, 10
NS_BOT_COOKIE, NS_BOT_EVENT, NS_ORDER, NS_CRM, NS_MESSAGE, NS_SPEND = 11, 12, 13, 14, 15, 16


@dataclass(frozen=True)
class BgNbd:
    """Buy-till-you-die: purchase rate lambda ~ Gamma(r, rate alpha), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGamma:
    """Spend per order z ~ Gamma(p, rate nu), per person nu ~ Gamma(q, rate v)."""

    p: float
    q: float
    v: float


@dataclass(frozen=True)
class Campaign:
    """A paid campaign the ad server and the spend export share."""

    campaign_id: str
    channel: str
    name: str


@dataclass(frozen=True)
class EmailSend:
    """One newsletter send (everyone subscribed gets it)."""

    campaign_id: str
    day: int
    send_ms: int


@dataclass(frozen=True)
class Bot:
    """A crawler: declared in its user agent, or stealth."""

    index: int
    kind: str  # declared | stealth
    user_agent: str
    ips: tuple[str, ...]
    cookie_id: str  # stealth bots keep one cookie; declared ones send none
    requests_per_day: int
    event_share: float  # share of requests that also fire the site tag (headless browsers)
    burst: int = 0  # stealth: requests come in bursts of this many within one minute


@dataclass(frozen=True)
class WorldParams:
    """Everything the executors need to simulate people and write files."""

    seed: int
    persons: int
    days: int
    start: dt.date
    fault_rate: float
    lines_per_file: int
    extended_log: bool
    bgnbd: BgNbd
    gamma_gamma: GammaGamma
    effects: dict[str, float]
    campaigns: tuple[Campaign, ...]
    email_sends: tuple[EmailSend, ...]
    product_prices: tuple[float, ...]
    n_stores: int
    n_kiosks: int
    bots: tuple[Bot, ...]
    drift_day: int
    late_share: float  # share of app visits buffered offline and delivered 1-5 days late
    shards: dict[str, tuple[int, ...]]  # source -> number of files per delivery day
    redeliveries: dict[tuple[str, int, int], int]  # (source, day, shard) -> day of the copy
    dst: tuple[tuple[int, int], ...]  # (utc ms, Europe/Paris offset minutes from then on)
    truth_parts: dict[str, int] = field(default_factory=dict)

    @property
    def start_wall_ms(self) -> int:
        """The first day's midnight as wall-clock milliseconds (local time read as UTC)."""
        return (self.start - dt.date(1970, 1, 1)).days * DAY_MS

    @property
    def end_wall_ms(self) -> int:
        """The midnight after the last day, as wall-clock milliseconds."""
        return self.start_wall_ms + self.days * DAY_MS

    def day_text(self, day: int) -> str:
        """The date of world day ``day`` (YYYY-MM-DD)."""
        return (self.start + dt.timedelta(days=int(day))).isoformat()

    def campaigns_of(self, channel: str) -> tuple[Campaign, ...]:
        """The campaigns of one channel."""
        return tuple(c for c in self.campaigns if c.channel == channel)

    @functools.cached_property
    def _dst_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        at = np.array([t for t, _ in self.dst], dtype=np.int64)
        off = np.array([o for _, o in self.dst], dtype=np.int64)
        return at, off

    def paris_offset(self, utc_ms: npt.ArrayLike) -> np.ndarray:
        """Europe/Paris offset in minutes (+60 or +120) at each instant."""
        at, off = self._dst_arrays
        i = np.searchsorted(at, np.asarray(utc_ms, dtype=np.int64), side="right") - 1
        return off[np.clip(i, 0, len(off) - 1)]

    def first_pass(self, utc_ms: npt.ArrayLike) -> np.ndarray:
        """Instants moved out of the second pass of an hour the clocks repeat.

        When Paris clocks go back, each wall-clock time of the hour before happens twice. A
        time written without an offset (a till's) can name only one of them, and ingestion
        reads the first, summer-time one (docs/collect.md). An instant of the second pass is
        moved on by the hour the clocks went back, so what a till writes says when it was."""
        ms = np.array(utc_ms, dtype=np.int64)
        at, off = self._dst_arrays
        for i in range(1, len(at)):
            back = int(off[i - 1] - off[i]) * MINUTE_MS
            if back > 0:
                ms[(ms >= at[i]) & (ms < at[i] + back)] += back
        return ms

    def local_day(self, utc_ms: npt.ArrayLike) -> np.ndarray:
        """Index of the Paris calendar day of each instant (0 = start date)."""
        ms = np.asarray(utc_ms, dtype=np.int64)
        wall = ms + self.paris_offset(ms) * MINUTE_MS
        return np.floor_divide(wall - self.start_wall_ms, DAY_MS)

    def utc_day(self, utc_ms: npt.ArrayLike) -> np.ndarray:
        """Index of the UTC calendar day of each instant (ad server and ESP export by UTC day)."""
        return np.floor_divide(np.asarray(utc_ms, dtype=np.int64) - self.start_wall_ms, DAY_MS)

    def instant(self, day: npt.ArrayLike, second_of_day: npt.ArrayLike) -> np.ndarray:
        """UTC milliseconds of a Paris wall-clock time on a world day."""
        wall = (
            self.start_wall_ms
            + np.asarray(day, dtype=np.int64) * DAY_MS
            + (np.asarray(second_of_day, dtype=np.float64) * 1000).astype(np.int64)
        )
        return wall - self.paris_offset(wall - HOUR_MS) * MINUTE_MS

    def n_shards(self, source: str, day: int) -> int:
        """How many files a source gets in a day folder."""
        return self.shards[source][day]


def eu_dst_changes(first_year: int, last_year: int) -> tuple[tuple[int, int], ...]:
    """Europe/Paris offsets: +2h from the last Sunday of March to the last Sunday of October,
    both at 01:00 UTC (the EU rule since 1996)."""

    def last_sunday(year: int, month: int) -> dt.date:
        d = dt.date(year, month, 31)
        return d - dt.timedelta(days=(d.weekday() + 1) % 7)

    out: list[tuple[int, int]] = []
    for year in range(first_year, last_year + 1):
        jan = (dt.date(year, 1, 1) - dt.date(1970, 1, 1)).days * DAY_MS
        spring = (last_sunday(year, 3) - dt.date(1970, 1, 1)).days * DAY_MS + HOUR_MS
        autumn = (last_sunday(year, 10) - dt.date(1970, 1, 1)).days * DAY_MS + HOUR_MS
        out += [(jan, 60), (spring, 120), (autumn, 60)]
    return tuple(out)


def _jitter(rng: np.random.Generator, value: float, spread: float = 0.2) -> float:
    return float(round(value * (1 - spread + 2 * spread * rng.random()), 6))


def _campaigns(start: dt.date) -> tuple[Campaign, ...]:
    season = "printemps" if start.month in (3, 4, 5) else "saison"
    rows = [
        ("cmp_display_prospecting", "display", f"Display – {season}"),
        ("cmp_display_retargeting", "display", "Display – retargeting"),
        ("cmp_social_prospecting", "social", "Social – prospection 🎯"),
        ("cmp_social_retargeting", "social", "Social – retargeting"),
        ("cmp_video_brand", "video", "Vidéo – marque"),
        ("cmp_search_brand", "paid_search", "Search – marque"),
        ("cmp_search_generic", "paid_search", "Search – générique"),
        ("cmp_affiliate_cashback", "affiliate", "Affiliation – cashback"),
        ("cmp_affiliate_vouchers", "affiliate", 'Affiliation – "codes promo"'),
    ]
    return tuple(Campaign(*row) for row in rows)


def _email_sends(start: dt.date, days: int) -> tuple[EmailSend, ...]:
    """Newsletters every Tuesday and Friday at 08:00 UTC."""
    sends = []
    for d in range(days):
        date = start + dt.timedelta(days=d)
        if date.weekday() in (1, 4):
            year, week, _ = date.isocalendar()
            tag = "tue" if date.weekday() == 1 else "fri"
            cid = f"cmp_newsletter_{year}w{week:02d}_{tag}"
            send_ms = (date - dt.date(1970, 1, 1)).days * DAY_MS + 8 * HOUR_MS
            sends.append(EmailSend(cid, d, send_ms))
    return tuple(sends)


def _bots(seed: int, persons: int) -> tuple[Bot, ...]:
    rng = group_rng(seed, 0xB07)
    declared_ips = (
        ("66.249.66.1", "66.249.66.87", "66.249.79.12"),
        ("157.55.39.14", "157.55.39.200", "40.77.167.3"),
        ("54.36.148.9", "54.36.149.40"),
        ("185.191.171.5", "185.191.171.33"),
        ("5.255.231.17", "213.180.203.8"),
    )
    bots: list[Bot] = []
    per_day = max(20, persons // 60)
    for i, ua in enumerate(vocab.DECLARED_BOT_UAS):
        renders = 0.25 if i < 2 else 0.0  # Google and Bing execute the site's JavaScript
        bots.append(Bot(i, "declared", ua, declared_ips[i], "", per_day, renders))
    n_stealth = max(1, persons // 3000)
    for j in range(n_stealth):
        index = len(vocab.DECLARED_BOT_UAS) + j
        ip = f"45.{134 + j % 20}.{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}"
        cookie = "ck_" + f"{int(unique64(seed, NS_BOT_COOKIE, index, 0)):016x}"
        ua = vocab.DESKTOP_UAS[j % len(vocab.DESKTOP_UAS)]
        # Three scraping bursts a day, each well over 60 requests in a minute from one cookie
        # and one IP: a rate no person reaches, behind a browser's user agent.
        burst = int(rng.integers(110, 160))
        bots.append(Bot(index, "stealth", ua, (ip,), cookie, 3 * burst, 0.75, burst))
    return tuple(bots)


def _shards(persons: int, days: int, lines_per_file: int, n_bots_lines: float) -> dict:
    out: dict[str, tuple[int, ...]] = {}
    for source in contracts.SOURCES:
        per_day = persons * LINES_PER_PERSON_DAY[source]
        if source in ("access_log", "events"):
            per_day += n_bots_lines
        counts = []
        for d in range(days):
            expected = per_day
            if source == "crm_customers" and d == 0:
                expected += persons * CRM_SNAPSHOT_PER_PERSON  # the first export is complete
            # 30% headroom so a busy day rarely overflows lines_per_file.
            counts.append(max(1, math.ceil(expected * 1.3 / lines_per_file)))
        out[source] = tuple(counts)
    return out


def _redeliveries(seed: int, days: int, fault_rate: float, shards: dict) -> dict:
    """Whole files delivered again (same bytes, another name), in the same or a later folder."""
    if fault_rate <= 0:
        return {}
    rng = group_rng(seed, 0x4ED)
    # Only sources that have lines every day in any world, so the chosen file exists.
    candidates = [
        (s, d, 0) for s in ("events", "access_log", "ad_impressions") for d in range(days)
    ]
    total_files = sum(sum(v) for v in shards.values())
    n = min(len(candidates), max(1, round(total_files * fault_rate * 2)))
    chosen = rng.choice(len(candidates), size=n, replace=False)
    out = {}
    for i in sorted(int(c) for c in chosen):
        source, day, shard = candidates[i]
        out[(source, day, shard)] = min(days - 1, day + int(rng.integers(0, 3)))
    return out


# CRM records the first export carries were created up to this many days before the world.
CRM_HISTORY_DAYS = 700
# The latest year a world may reach: its times, later faults included, stay far inside Python's
# and Spark's calendars.
LAST_YEAR = 9000


def date_problem(settings: WorldSettings, earliest: dt.datetime) -> str | None:
    """Why a world starting on ``settings.start_date`` would contradict its own truth, or
    None: its oldest CRM records must be later than ``earliest`` (collect.min_timestamp),
    which quarantines older times as clocks reset to an epoch, and its days must fit the
    calendar."""
    start = dt.date.fromisoformat(settings.start_date)
    first = start - dt.timedelta(days=CRM_HISTORY_DAYS)
    if first <= earliest.date():
        return (
            f"start_date: {start} is too early: the world's CRM history begins "
            f"{CRM_HISTORY_DAYS} days before it, and collect.min_timestamp "
            f"({earliest.date()}) would refuse those times; start after "
            f"{earliest.date() + dt.timedelta(days=CRM_HISTORY_DAYS)}"
        )
    if start.year + settings.days // 365 + 1 > LAST_YEAR:
        return f"start_date: {start} with {settings.days} days ends too late (before {LAST_YEAR})"
    return None


def build_params(settings: WorldSettings) -> WorldParams:
    """All of the world's laws and global structures, from the settings and the seed."""
    seed = settings.seed
    start = dt.date.fromisoformat(settings.start_date)
    rng = group_rng(seed, 0x5EED)
    bgnbd = BgNbd(
        r=_jitter(rng, 0.9), alpha=_jitter(rng, 27.0), a=_jitter(rng, 0.8), b=_jitter(rng, 7.0)
    )
    gamma_gamma = GammaGamma(p=_jitter(rng, 6.0), q=_jitter(rng, 4.0, 0.1), v=_jitter(rng, 30.0))
    effects = {c: _jitter(rng, BASE_EFFECTS[c]) for c in contracts.CHANNELS}
    prices = np.round(np.exp(group_rng(seed, 0x5C0).normal(3.3, 0.6, 400))) - 0.1
    prices = np.maximum(prices, 2.9)
    bots = _bots(seed, settings.persons)
    bot_lines = sum(b.requests_per_day for b in bots)
    shards = _shards(settings.persons, settings.days, settings.lines_per_file, bot_lines)
    end = start + dt.timedelta(days=settings.days)
    return WorldParams(
        seed=seed,
        persons=settings.persons,
        days=settings.days,
        start=start,
        fault_rate=settings.fault_rate,
        lines_per_file=settings.lines_per_file,
        extended_log=settings.access_log_format == "extended",
        bgnbd=bgnbd,
        gamma_gamma=gamma_gamma,
        effects=effects,
        campaigns=_campaigns(start),
        email_sends=_email_sends(start, settings.days),
        product_prices=tuple(float(p) for p in prices),
        n_stores=max(5, settings.persons // 1000),
        n_kiosks=max(1, settings.persons // 1500),
        bots=bots,
        drift_day=settings.days // 2,
        late_share=min(0.3, 5 * settings.fault_rate),
        shards=shards,
        redeliveries=_redeliveries(seed, settings.days, settings.fault_rate, shards),
        dst=eu_dst_changes(start.year - 1, end.year + 1),
        truth_parts=_truth_parts(settings),
    )


def _truth_parts(settings: WorldSettings) -> dict[str, int]:
    """How many part files each large truth table is split into (deterministic)."""
    per_person = {
        "persons": 1.0,
        "identifiers": 0.5 + 0.25 * settings.days,
        "identifier_variants": 4.0,
        "conversions": 0.06 * settings.days,
    }
    lines = sum(LINES_PER_PERSON_DAY.values()) * settings.days
    per_person["bad_records"] = lines * settings.fault_rate
    per_person["duplicates"] = lines * settings.fault_rate
    per_person["late_records"] = lines * settings.fault_rate * 2
    return {
        table: max(1, math.ceil(settings.persons * rate / settings.lines_per_file))
        for table, rate in per_person.items()
    }


def event_ids(seed: int, pid: npt.ArrayLike, sid: npt.ArrayLike, k: npt.ArrayLike):
    """(unique uint64 key, UUID text) of the k-th event of session ``sid`` of person ``pid``."""
    from crossdata.world.hashing import uuid_text

    counter = (np.asarray(sid, dtype=np.int64) << 6) | np.asarray(k, dtype=np.int64)
    key = unique64(seed, NS_EVENT, pid, counter)
    return key, uuid_text(key, hash64(seed, "event-lo", key))


def store_id(index: int) -> str:
    """The store id of store ``index``."""
    return f"st_{index:03d}"


CALL_CENTRE_STORE = "st_900"


def kiosk_device_id(seed: int, kiosk: int) -> str:
    """The advertising id of the kiosk tablet in store ``kiosk``."""
    from crossdata.world.hashing import uuid_text

    hi = unique64(seed, NS_KIOSK, kiosk, 0)
    lo = hash64(seed, "kiosk-lo", kiosk)
    return uuid_text(np.atleast_1d(hi), np.atleast_1d(lo))[0]
