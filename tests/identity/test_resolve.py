"""The identity stage on small hand-made silver tables: each hard case, then history.

Silver rows are written directly (only the columns the identity stage reads), so each case
states exactly the evidence it stands on. Every run goes through ``run_identity`` on real
Spark and Delta, the same code the pipeline runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crossdata.identity.graph import CONFLICT_REASON
from crossdata.identity.resolve import IDENTITY_MAP, IdentitySummary, run_identity
from crossdata.ops import Context, job_run

from ..conftest import make_settings

EVENTS = (
    "event_id string, event_ts timestamp, event_date date, platform string, origin string, "
    "event_type string, is_bot boolean, cookie_id string, device_id string, user_id string, "
    "email string"
)
CRM = (
    "customer_number string, first_name string, last_name string, birth_date date, "
    "email string, phone string, mobile_phone string, address_line1 string, "
    "postal_code string, city string, country string, store_id string, loyalty_card string, "
    "source_system string, updated_at timestamp, has_formula_text boolean"
)
T0 = dt.datetime(2026, 3, 2, 9, 0)


def event(
    n: int,
    *,
    cookie: str | None = None,
    device: str | None = None,
    user: str | None = None,
    email: str | None = None,
    kind: str = "page_view",
    day: int = 0,
) -> tuple:
    ts = T0 + dt.timedelta(days=day, minutes=n)
    platform = "app" if device else "web"
    return (
        f"e{day}-{n}",
        ts,
        ts.date(),
        platform,
        "events",
        kind,
        False,
        cookie,
        device,
        user,
        email,
    )


def crm_row(number: str, first: str, birth: str | None, **ids: str) -> tuple:
    return (
        number,
        first,
        "Martin",
        dt.date.fromisoformat(birth) if birth else None,
        ids.get("email"),
        ids.get("phone"),
        None,
        "3 rue des Lilas",
        "69003",
        "Lyon",
        "FR",
        None,
        ids.get("loyalty_card"),
        "ecommerce",
        T0,
        False,
    )


ORDERS = (
    "order_id string, order_ts timestamp, order_date date, channel string, user_id string, "
    "cookie_id string, device_id string, email string, phone string, loyalty_card string"
)


ORDER_IDS = ("user_id", "cookie_id", "device_id", "email", "phone", "loyalty_card")


def order(n: int, **ids: str) -> tuple:
    ts = T0 + dt.timedelta(hours=n)
    return (f"o{n}", ts, ts.date(), "web", *[ids.get(c) for c in ORDER_IDS])


def add_events(ctx: Context, rows: list[tuple]) -> None:
    ctx.lake.append(ctx.spark.createDataFrame(rows, EVENTS), "silver.events")


def resolve(ctx: Context):
    with job_run(ctx, "identity") as run:
        return run_identity(ctx, run), run.run_id


def customers(ctx: Context) -> dict[tuple[str, str], str | None]:
    rows = ctx.lake.read("gold.identity_map").select("id_type", "id_value", "customer_id")
    return {(r[0], r[1]): r[2] for r in rows.collect()}  # a handful of test identifiers


def lake_for(spark: SparkSession, tmp: Path, *extra: str) -> Context:
    return Context.create(make_settings(tmp, *extra), spark=spark)


# -- hard cases in one world -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hard_cases(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory):
    ctx = lake_for(
        spark, tmp_path_factory.mktemp("identity-hard"), "identity.giant_component_size=6"
    )
    rows = []
    # A store kiosk: five shoppers log in on the same tablet, each also on their own phone.
    for i in range(5):
        rows.append(event(i, device="kiosk-tablet-1", user=f"shopper{i}", kind="login"))
        rows.append(event(10 + i, cookie=f"ck-shopper{i}", user=f"shopper{i}", kind="login"))
    # Placeholder cookies that silver would normally null: two people "share" them.
    for i, placeholder in enumerate(["undefined", "00000000-0000-0000-0000-000000000000"]):
        for who in ("alice", "bob"):
            rows.append(event(20 + i, cookie=placeholder, user=who, kind="login"))
    rows.append(event(30, cookie="ck-alice", user="alice", kind="login"))
    rows.append(event(31, cookie="ck-bob", user="bob", kind="login"))
    # One person, many identifiers: cookie, app device, newsletter signup.
    rows.append(event(40, cookie="ck-carol", user="carol", kind="login"))
    rows.append(event(41, device="dev-carol", user="carol", kind="login"))
    rows.append(event(42, cookie="ck-carol", email="carol@example.org", kind="email_signup"))
    # Someone browsing on seven cookies, all logged in: a large (legitimate) customer that
    # crosses identity.giant_component_size=6 and must raise an alert.
    for i in range(7):
        rows.append(event(50 + i, cookie=f"ck-dave{i}", user="dave", kind="login"))
    add_events(ctx, rows)
    # A family: two parents' CRM records share the household email, each has their own card.
    crm = [
        crm_row(
            "C100", "Marie", "1980-01-04", email="famille.martin@example.fr", loyalty_card="L1"
        ),
        crm_row("C200", "Paul", "1977-06-21", email="famille.martin@example.fr", loyalty_card="L2"),
    ]
    # A family tablet: Eve logs in on it (and on her phone); Frank, who has no account, orders
    # on it with his own email and phone, which his CRM record carries too.
    rows = [event(60 + i, device="dev-family", user="eve", kind="login") for i in range(3)]
    rows.append(event(63, device="dev-eve", user="eve", kind="login"))
    add_events(ctx, rows)
    crm.append(crm_row("C300", "Frank", "1975-02-11", email="frank@example.org", phone="+33611"))
    # Mother and daughter on the household email, their names alike: the daughter's record
    # there has no birth date, her store record (same mobile) has one, not her mother's.
    crm += [
        crm_row("C400", "Anaïs", "1976-06-08", email="famille.blanc@example.fr", phone="+33640"),
        crm_row("C500", "Ana", None, email="famille.blanc@example.fr", phone="+33650"),
        crm_row("C501", "Ana", "1998-12-18", phone="+33650"),
        # Léa's records on the household landline: her brother's birth date is not hers.
        crm_row("C600", "Léa", None, email="lea@example.org", phone="+33160"),
        crm_row("C601", "Léa", "2001-03-03", email="lea@example.org"),
        crm_row("C602", "Hugo", "1999-09-09", phone="+33160"),
        # Two people on a family email, neither birth date given, names a few letters apart
        # (close enough for a spelling test at half the length, not for one person).
        crm_row("C700", "Margaux", None, email="famille.lambert@example.fr", loyalty_card="L7"),
        crm_row("C800", "María", None, email="famille.lambert@example.fr", loyalty_card="L8"),
        # One person written three ways by three systems, one birth date among them.
        crm_row("C900", "Jean-Pierre", None, email="jp@example.org"),
        crm_row("C901", "JEAN PIERRE", "1970-01-01", email="jp@example.org"),
        crm_row("C902", "Jéan pierre", None, email="jp@example.org", phone="+33690"),
        # ... and a fourth record whose name field holds a formula: no name, no evidence.
        crm_row("C903", '=HYPERLINK("http://x.example","click")', None, phone="+33690"),
    ]
    # A guest order with the family email, on her son Nathan's record only, and Océane's own
    # mobile: the order cannot say whose the email is, so it joins neither.
    crm += [
        crm_row(
            "C1000", "Nathan", "2004-10-21", email="famille.petit@example.fr", loyalty_card="L10"
        ),
        crm_row("C1100", "Océane", "1976-10-13", email="oceane@example.net", phone="+33617"),
    ]
    # Zoé's guest order with her email (her web record) and her card (her store record, from
    # before she moved): the order is all that joins them, and it is one person's.
    moved = ("12 quai Perrache", "69002")
    zoe_web = crm_row("C1200", "Zoé", "1990-05-05", email="zoe@example.org")
    zoe_store = crm_row("C1201", "Zoé", "1990-05-05", loyalty_card="L12")
    crm += [
        (*zoe_web[:2], "Durand", *zoe_web[3:]),
        (*zoe_store[:2], "Durand", *zoe_store[3:7], *moved, *zoe_store[9:]),
    ]
    ctx.lake.append(ctx.spark.createDataFrame(crm, CRM), "silver.crm_customers")
    orders = [
        order(3, email="famille.petit@example.fr", phone="+33617"),
        order(4, email="zoe@example.org", loyalty_card="L12"),
        order(1, device_id="dev-family", email="frank@example.org", phone="+33611"),
        # Grace orders logged in on her own browser: the order ties her account and email.
        order(2, user_id="grace", cookie_id="ck-grace", email="grace@example.org"),
        # Ivan's guest order with the shop's no-reply address (blocklisted) as its email: his
        # phone and browser, on the same order, are still one person.
        order(5, email="noreply@shop.example", phone="+33622", cookie_id="ck-ivan"),
    ]
    # A shop's address typed on the guest orders of four shoppers, each order with the
    # shopper's own phone and browser, where each has logged in: the address is shared.
    for i in range(4):
        orders.append(
            order(6 + i, email="boutique@shop.example", phone=f"+3363{i}", cookie_id=f"ck-hub{i}")
        )
    hub_logins = [
        event(70 + i, cookie=f"ck-hub{i}", user=f"hub{i}", kind="login") for i in range(4)
    ]
    add_events(ctx, [event(64, cookie="ck-grace", user="grace", kind="login"), *hub_logins])
    ctx.lake.append(ctx.spark.createDataFrame(orders, ORDERS), "silver.orders")
    summary, run_id = resolve(ctx)
    return ctx, summary, run_id, customers(ctx)


def test_kiosk_device_is_shared_and_merges_nobody(hard_cases) -> None:
    ctx, _, _, ids = hard_cases
    shoppers = {ids[("user_id", f"shopper{i}")] for i in range(5)}
    assert len(shoppers) == 5 and None not in shoppers
    for i in range(5):
        assert ids[("cookie_id", f"ck-shopper{i}")] == ids[("user_id", f"shopper{i}")]
    kiosk = (
        ctx.lake.read("gold.identity_map")
        .where((F.col("id_type") == "device_id") & (F.col("id_value") == "kiosk-tablet-1"))
        .collect()
    )
    assert len(kiosk) == 1
    assert kiosk[0]["customer_id"] is None and kiosk[0]["is_shared"]
    assert "user_id" in kiosk[0]["shared_reason"]
    # The kiosk keeps its evidence: five login edges, none of them merging.
    edges = ctx.lake.read("silver.identity_edges").where(
        (F.col("src_value") == "kiosk-tablet-1") | (F.col("dst_value") == "kiosk-tablet-1")
    )
    assert edges.count() == 5
    assert edges.where("merges").count() == 0


def test_a_shops_email_on_strangers_guest_orders_is_shared_and_keeps_them_apart(
    hard_cases,
) -> None:
    ctx, _, _, ids = hard_cases
    shop = (
        ctx.lake.read("gold.identity_map")
        .where((F.col("id_type") == "email") & (F.col("id_value") == "boutique@shop.example"))
        .first()
    )
    assert shop is not None and shop["is_shared"] and shop["customer_id"] is None
    assert shop["shared_reason"] == "linked to 4 phone (max 3)"
    # No two shoppers share a customer: not their accounts, not their phones, not their
    # browsers. (Each browser, logged in by its shopper and on her guest order, is also the
    # only link between her account and her phone, as a family tablet would be: the bridge
    # rule shares it, precision first.)
    people = [
        {ids[("user_id", f"hub{i}")], ids[("phone", f"+3363{i}")], ids[("cookie_id", f"ck-hub{i}")]}
        - {None}
        for i in range(4)
    ]
    assert all(people)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not people[i] & people[j], (i, j)


def test_placeholder_cookies_never_become_identifiers(hard_cases) -> None:
    ctx, _, _, ids = hard_cases
    assert ids[("user_id", "alice")] != ids[("user_id", "bob")]
    assert ids[("cookie_id", "ck-alice")] == ids[("user_id", "alice")]
    dictionary = ctx.lake.read("silver.identity_dictionary")
    placeholders = dictionary.where(
        F.col("id_value").isin("undefined", "00000000-0000-0000-0000-000000000000")
    )
    assert placeholders.count() == 0


def test_a_blocklisted_identifier_on_a_record_leaves_its_other_links(hard_cases) -> None:
    # A blocklisted email never becomes a node: the phone and the cookie on the same order
    # are still one person.
    _, _, _, ids = hard_cases
    assert ids[("phone", "+33622")] == ids[("cookie_id", "ck-ivan")] is not None
    assert ("email", "noreply@shop.example") not in ids


def test_shared_family_email_keeps_parents_apart(hard_cases) -> None:
    ctx, _, _, ids = hard_cases
    marie, paul = ids[("customer_number", "C100")], ids[("customer_number", "C200")]
    assert marie is not None and paul is not None and marie != paul
    assert ids[("loyalty_card", "L1")] == marie and ids[("loyalty_card", "L2")] == paul
    family = (
        ctx.lake.read("gold.identity_map")
        .where(F.col("id_value") == "famille.martin@example.fr")
        .first()
    )
    assert family is not None and family["customer_id"] is None and family["is_shared"]
    assert "household" in family["shared_reason"]


def test_a_family_tablet_alone_joining_two_people_is_shared(hard_cases) -> None:
    ctx, _, _, ids = hard_cases
    eve, frank = ids[("user_id", "eve")], ids[("email", "frank@example.org")]
    assert None not in (eve, frank) and eve != frank
    assert ids[("device_id", "dev-eve")] == eve
    assert ids[("phone", "+33611")] == ids[("customer_number", "C300")] == frank
    tablet = (
        ctx.lake.read("gold.identity_map")
        .where((F.col("id_type") == "device_id") & (F.col("id_value") == "dev-family"))
        .first()
    )
    assert tablet is not None and tablet["customer_id"] is None and tablet["is_shared"]
    assert tablet["shared_reason"] == (
        "the only link between 2 people's identifiers (email, phone, user_id)"
    )
    # Logged in and ordering on her own browser, Grace stays one customer.
    grace = {ids[("user_id", "grace")], ids[("cookie_id", "ck-grace")]}
    assert grace == {ids[("email", "grace@example.org")]} and None not in grace


def test_a_household_email_on_alike_names_is_told_apart_by_other_records(hard_cases) -> None:
    _, _, _, ids = hard_cases
    mother, daughter = ids[("customer_number", "C400")], ids[("customer_number", "C500")]
    assert None not in (mother, daughter) and mother != daughter
    assert ids[("customer_number", "C501")] == ids[("phone", "+33650")] == daughter
    assert ids[("email", "famille.blanc@example.fr")] is None
    # Only a neighbour under the same first name lends its birth date: Léa's email stays hers.
    lea = {ids[("customer_number", "C600")], ids[("customer_number", "C601")]}
    assert lea == {ids[("email", "lea@example.org")]} and None not in lea


def test_a_household_email_on_names_not_close_and_no_birth_dates_is_shared(hard_cases) -> None:
    ctx, _, _, ids = hard_cases
    margaux, maria = ids[("customer_number", "C700")], ids[("customer_number", "C800")]
    assert None not in (margaux, maria) and margaux != maria
    assert ids[("loyalty_card", "L7")] == margaux and ids[("loyalty_card", "L8")] == maria
    family = (
        ctx.lake.read("gold.identity_map")
        .where(F.col("id_value") == "famille.lambert@example.fr")
        .first()
    )
    assert family is not None and family["customer_id"] is None
    assert "household" in family["shared_reason"]
    # Spellings of one name (case, hyphen, an accent) are one person, birth dates or not.
    jp = {ids[("customer_number", f"C90{i}")] for i in range(4)}
    assert jp == {ids[("email", "jp@example.org")]} == {ids[("phone", "+33690")]}
    assert None not in jp


def test_an_order_joining_two_peoples_contact_points_merges_neither(hard_cases) -> None:
    ctx, _, _, ids = hard_cases
    nathan, oceane = ids[("customer_number", "C1000")], ids[("customer_number", "C1100")]
    assert None not in (nathan, oceane) and nathan != oceane
    assert ids[("email", "famille.petit@example.fr")] == ids[("loyalty_card", "L10")] == nathan
    assert ids[("phone", "+33617")] == oceane
    edge = (
        ctx.lake.read("silver.identity_edges")
        .where(
            (F.col("source") == "order")
            & F.col("dst_value").isin("+33617", "famille.petit@example.fr")
        )
        .where(F.col("src_value").isin("+33617", "famille.petit@example.fr"))
        .collect()
    )
    assert [(e["merges"], e["cut_reason"]) for e in edge] == [(False, CONFLICT_REASON)]
    # One person's order on her two records (the same name and birth date) still joins them.
    zoe = {ids[k] for k in [("customer_number", "C1200"), ("customer_number", "C1201")]}
    assert zoe == {ids[("email", "zoe@example.org")]} == {ids[("loyalty_card", "L12")]}
    assert None not in zoe


def test_one_person_many_identifiers_is_one_customer(hard_cases) -> None:
    ctx, _, _, ids = hard_cases
    carol = {
        ids[k]
        for k in [
            ("user_id", "carol"),
            ("cookie_id", "ck-carol"),
            ("device_id", "dev-carol"),
            ("email", "carol@example.org"),
        ]
    }
    assert len(carol) == 1 and None not in carol
    golden = ctx.lake.read("gold.customer_golden").where(F.col("customer_id") == carol.pop())
    row = golden.first()
    assert row is not None
    assert (row["n_cookie_ids"], row["n_device_ids"], row["n_user_ids"], row["n_emails"]) == (
        1,
        1,
        1,
        1,
    )
    assert row["email"] == "carol@example.org"


def test_large_component_raises_an_alert(hard_cases) -> None:
    ctx, summary, run_id, ids = hard_cases
    assert summary.giant_components == [8]  # dave: seven cookies and a user_id
    alerts = ctx.lake.read("ops.alerts").where(F.col("run_id") == run_id).collect()
    assert [a["kind"] for a in alerts] == ["giant_identity_component"]
    assert ids[("user_id", "dave")] == ids[("cookie_id", "ck-dave6")]


def test_every_customer_has_a_golden_row_and_a_key(hard_cases) -> None:
    ctx, summary, _, ids = hard_cases
    owned = {c for c in ids.values() if c is not None}
    golden = ctx.lake.read("gold.customer_golden")
    assert golden.count() == len(owned) == summary.customers
    keys = ctx.lake.read("gold.customer_keys").where("retired_at IS NULL")
    assert {r[0] for r in keys.select("customer_id").collect()} == owned


# -- history: three incremental runs -------------------------------------------------------------


def _key_table(ctx: Context) -> DataFrame:
    return ctx.lake.read("gold.customer_keys")


@dataclass
class History:
    """Four incremental identity runs on one lakehouse, with what each left behind.

    Two stories share the runs (their people never meet): erin, frank, gina and henry test
    that keys stay put, that a merge keeps the oldest key, that a shared cookie leaves its
    owner, that a run failed part way is repeated cleanly, and that an erased person leaves;
    ivy and jack test a split. Sharing them saves runs of the whole identity job.
    """

    ctx: Context
    first: dict[tuple[str, str], str | None]
    second: dict[tuple[str, str], str | None]
    third: dict[tuple[str, str], str | None]
    fourth: dict[tuple[str, str], str | None]
    node_ids_first: dict[tuple[str, str], int]
    node_ids_second: dict[tuple[str, str], int]
    summary2: IdentitySummary
    summary3: IdentitySummary
    run2: str
    run3: str
    run3_failed: str
    cut_sources_after_second: set[str]


IVY = (
    ("user_id", "ivy"),
    ("cookie_id", "ck-ivy1"),
    ("cookie_id", "ck-ivy2"),
    ("email", "ivy@example.org"),
)


def _node_ids(ctx: Context) -> dict[tuple[str, str], int]:
    rows = ctx.lake.read("silver.identity_dictionary").select("id_type", "id_value", "node_id")
    return {(r[0], r[1]): r[2] for r in rows.collect()}  # a handful of test identifiers


def _fail_before_the_map(ctx: Context) -> str:
    """Run the identity job so that it fails where a crash would hurt most: after it wrote
    gold.customer_keys and gold.identity_lineage, before gold.identity_map. Its run id."""
    lake = ctx.lake
    overwrite = lake.overwrite

    def crashing(df: DataFrame, name: str, replace_where: str | None = None) -> None:
        if name == IDENTITY_MAP:
            raise RuntimeError("crashed before gold.identity_map was written")
        overwrite(df, name, replace_where)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(RuntimeError, match="crashed"):
        patch.setattr(lake, "overwrite", crashing)
        with job_run(ctx, "identity") as run:
            run_id = run.run_id
            run_identity(ctx, run)
    return run_id


@pytest.fixture(scope="module")
def history(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> History:
    ctx = lake_for(spark, tmp_path_factory.mktemp("identity-history"))
    # Run 1: erin (user, two cookies) and frank (user, cookie); ivy (user on two cookies, a
    # newsletter email signed up on both) is one customer.
    add_events(
        ctx,
        [
            event(1, cookie="ck-erin1", user="erin", kind="login"),
            event(2, cookie="ck-erin2", user="erin", kind="login"),
            event(3, cookie="ck-frank", user="frank", kind="login"),
            event(4, cookie="ck-ivy1", user="ivy", kind="login"),
            event(5, cookie="ck-ivy1", email="ivy@example.org", kind="email_signup"),
            event(6, cookie="ck-ivy2", email="ivy@example.org", kind="email_signup"),
        ],
    )
    _fail_before_the_map(ctx)  # the very first run fails once too: no map to build on yet
    resolve(ctx)
    first, node_ids_first = customers(ctx), _node_ids(ctx)
    # Run 2: new evidence for erin (an app device), a new person, and an anonymous newsletter
    # signup; and jack logs in on ck-ivy2, which puts two user_ids in ivy's component, over
    # identity.max_per_person.user_id=1: the weakest evidence (an email signup) is cut.
    add_events(
        ctx,
        [
            event(1, device="dev-erin", user="erin", kind="login", day=1),
            event(2, cookie="ck-gina", user="gina", kind="login", day=1),
            event(3, cookie="ck-news", email="news@example.org", kind="email_signup", day=1),
            event(4, cookie="ck-ivy2", user="jack", kind="login", day=1),
        ],
    )
    summary2, run2 = resolve(ctx)
    second, node_ids_second = customers(ctx), _node_ids(ctx)
    cut = ctx.lake.read("silver.identity_edges").where(F.col("cut_reason").isNotNull())
    cut_sources = {r["source"] for r in cut.collect()}
    # Run 3: frank logs in on the newsletter cookie: that login bridges frank's customer (key
    # from run 1) and the newsletter's (key from run 2); they merge and the older key survives.
    # And henry logs in on erin's second cookie: the cookie becomes shared (two user_ids).
    # Its first attempt fails before the map is written, and is run again.
    add_events(
        ctx,
        [
            event(1, cookie="ck-news", user="frank", kind="login", day=2),
            event(2, cookie="ck-erin2", user="henry", kind="login", day=2),
        ],
    )
    run3_failed = _fail_before_the_map(ctx)
    summary3, run3 = resolve(ctx)
    third = customers(ctx)
    # Run 4: gina's rows are erased from silver: her identifiers leave the map.
    path = ctx.lake.path("silver.events")
    ctx.spark.sql(f"DELETE FROM delta.`{path}` WHERE cookie_id = 'ck-gina'")
    resolve(ctx)
    return History(
        ctx,
        first,
        second,
        third,
        customers(ctx),
        node_ids_first,
        node_ids_second,
        summary2,
        summary3,
        run2,
        run3,
        run3_failed,
        cut_sources,
    )


def test_known_identifiers_keep_their_keys_and_nodes_when_new_evidence_arrives(
    history: History,
) -> None:
    first, second = history.first, history.second
    erin, frank = first[("user_id", "erin")], first[("user_id", "frank")]
    assert erin == first[("cookie_id", "ck-erin2")] and erin != frank
    for key, customer in first.items():
        if key not in IVY:  # ivy's component is split in run 2
            assert second[key] == customer, key
    assert second[("device_id", "dev-erin")] == erin
    news = second[("email", "news@example.org")]
    assert len({erin, frank, news, second[("user_id", "gina")]}) == 4
    # Node ids are fixed once given, ivy's included.
    assert {
        k: v for k, v in history.node_ids_second.items() if k in history.node_ids_first
    } == history.node_ids_first


def test_a_merge_keeps_the_oldest_key_and_a_shared_cookie_leaves_its_owner(
    history: History,
) -> None:
    ctx, first, second, third = history.ctx, history.first, history.second, history.third
    erin, frank = first[("user_id", "erin")], first[("user_id", "frank")]
    news = second[("email", "news@example.org")]
    merged = third[("user_id", "frank")]
    assert merged == third[("email", "news@example.org")] == third[("cookie_id", "ck-news")]
    assert merged == frank  # the oldest key survives
    retired = news
    ages = {r["customer_id"]: r["created_at"] for r in _key_table(ctx).collect()}
    assert ages[frank] < ages[news]
    # The first attempt of run 3 wrote the lineage; its retry found it written.
    lineage = ctx.lake.read("gold.identity_lineage").where(
        F.col("run_id").isin(history.run3, history.run3_failed)
    )
    merges = lineage.where("kind = 'merge'").select("old_customer_id", "new_customer_id")
    assert [tuple(r) for r in merges.collect()] == [(retired, merged)]
    key_row = _key_table(ctx).where(F.col("customer_id") == retired).first()
    assert key_row is not None and key_row["retired_into"] == merged
    # ck-erin2 is now shared; erin keeps her key with her other identifiers.
    assert third[("cookie_id", "ck-erin2")] is None
    assert third[("user_id", "erin")] == third[("cookie_id", "ck-erin1")] == erin
    assert third[("device_id", "dev-erin")] == erin
    assert third[("user_id", "henry")] not in {erin, merged}
    assert third[("user_id", "gina")] == second[("user_id", "gina")]
    assert history.summary3.merges == 1


def test_split_gives_the_largest_part_the_key_and_records_lineage(history: History) -> None:
    ctx, before, after = history.ctx, history.first, history.second
    ivy = before[("user_id", "ivy")]
    assert {before[k] for k in IVY} == {ivy} and ivy is not None
    assert after[("user_id", "ivy")] != after[("user_id", "jack")]
    assert history.summary2.cut_edges >= 1 and history.summary2.remaining_violations == 0
    assert history.cut_sources_after_second == {"email_signup"}
    parts: dict[str | None, int] = {}
    for key in IVY:
        parts[after[key]] = parts.get(after[key], 0) + 1
    parts[after[("user_id", "jack")]] = parts.get(after[("user_id", "jack")], 0) + 1
    largest = max(parts.values())
    holders = [k for k, n in parts.items() if n == largest]
    assert ivy in holders  # the largest part kept the key
    split = ctx.lake.read("gold.identity_lineage").where(
        (F.col("run_id") == history.run2) & (F.col("kind") == "split")
    )
    assert split.count() >= 1
    assert {r["old_customer_id"] for r in split.collect()} == {ivy}


def test_a_run_repeated_after_failing_before_its_map_issues_no_key_and_no_change_twice(
    history: History,
) -> None:
    ctx, third = history.ctx, history.third
    keys = _key_table(ctx)
    assert keys.groupBy("customer_id").count().where("count > 1").isEmpty()
    # Every key still alive is held by an identifier, and every key held is alive.
    alive = {r[0] for r in keys.where(F.col("retired_at").isNull()).select("customer_id").collect()}
    assert alive == {c for c in history.fourth.values() if c is not None}
    # henry's key was issued by the failed attempt and taken up by the retry.
    henry = keys.where(F.col("customer_id") == third[("user_id", "henry")]).first()
    assert henry is not None and henry["created_run"] == history.run3_failed
    lineage = ctx.lake.read("gold.identity_lineage")
    assert lineage.where(F.col("run_id") == history.run3).isEmpty()
    changes = lineage.groupBy("old_customer_id", "new_customer_id", "kind").count()
    assert changes.where("count > 1").isEmpty()


def test_identifiers_no_longer_in_silver_leave_the_map_and_their_key_is_retired(
    history: History,
) -> None:
    ctx, third, fourth = history.ctx, history.third, history.fourth
    gina = third[("user_id", "gina")]
    assert gina is not None and gina == third[("cookie_id", "ck-gina")]
    assert ("user_id", "gina") not in fourth and ("cookie_id", "ck-gina") not in fourth
    assert fourth == {k: v for k, v in third.items() if v != gina}
    key = _key_table(ctx).where(F.col("customer_id") == gina).first()
    assert key is not None and key["retired_at"] is not None and key["retired_into"] is None
    golden = ctx.lake.read("gold.customer_golden")
    assert golden.where(F.col("customer_id") == gina).isEmpty()
    # The dictionary keeps her node ids, should she come back.
    assert ("user_id", "gina") in _node_ids(ctx)
