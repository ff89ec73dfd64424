"""Make every CSV file of the Digital Marketing Analytics course.

The lessons follow *Caffè Aurora*, an online coffee roaster from Torino; the
assignments follow *Oliveto Sereno*, a direct-to-consumer olive-oil and pantry
shop from Puglia.  All numbers are simulated with a fixed seed, so running this
script again gives byte-identical files:

    python data/generate.py        # from the course folder

It writes ``lessons/data/*.csv`` and ``source/<assignment>/data/*.csv`` below the course
folder, or below ``--out DIR`` (same layout) to compare a fresh run with the shipped files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2027
COURSE = Path(__file__).resolve().parent.parent


def set_output(root: Path) -> None:
    """Where the files go: ``root/lessons/data`` and ``root/source/<assignment>/data``."""
    global OUT, LESSONS, A1, A2, A3
    OUT = Path(root).resolve()
    LESSONS = OUT / "lessons" / "data"
    A1 = OUT / "source" / "a1-funnel-economics" / "data"
    A2 = OUT / "source" / "a2-retention-ab-testing" / "data"
    A3 = OUT / "source" / "a3-attribution-seo-email" / "data"


set_output(COURSE)

CHANNELS = ["google_ads", "meta", "newsletter", "organic", "linkedin"]

FIRST_NAMES = [
    "giulia", "marco", "francesca", "luca", "chiara", "alessandro", "sara", "matteo",
    "valentina", "andrea", "martina", "davide", "elena", "simone", "federica", "lorenzo",
    "silvia", "paolo", "anna", "giorgio", "laura", "stefano", "beatrice", "riccardo",
    "alice", "tommaso", "elisa", "pietro", "giada", "filippo",
]
LAST_NAMES = [
    "rossi", "russo", "ferrari", "esposito", "bianchi", "romano", "colombo", "ricci",
    "marino", "greco", "bruno", "gallo", "conti", "deluca", "mancini", "costa",
    "giordano", "rizzo", "lombardi", "moretti", "barbieri", "fontana", "santoro",
    "mariani", "rinaldi", "caruso", "ferrara", "galli", "martini", "leone",
]
DOMAINS = ["gmail.com", "libero.it", "hotmail.it", "yahoo.it", "outlook.com", "tiscali.it", "alice.it"]


def rng_for(name: str) -> np.random.Generator:
    """One independent, reproducible random stream per data set."""
    return np.random.default_rng([SEED, sum(ord(c) * (i + 1) for i, c in enumerate(name))])


def write(df: pd.DataFrame, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / name, index=False, lineterminator="\n")


def random_ids(rng, n, prefix, width):
    """n distinct, non-sequential ids such as u04817."""
    numbers = rng.choice(10**width, size=n, replace=False)
    return [f"{prefix}{k:0{width}d}" for k in numbers]


def stamp(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------------
# Funnels
# ---------------------------------------------------------------------------

def funnel_daily(rng) -> pd.DataFrame:
    """Caffè Aurora: daily sessions and funnel steps by channel and device."""
    dates = pd.date_range("2026-03-01", "2026-05-31", freq="D")
    # sessions/day, mobile share, and per-step rates (view, cart, checkout, purchase)
    profile = {
        "google_ads": (430, 0.58, (0.68, 0.14, 0.52, 0.66)),
        "meta": (390, 0.82, (0.55, 0.09, 0.45, 0.58)),
        "newsletter": (160, 0.55, (0.74, 0.19, 0.60, 0.74)),
        "organic": (610, 0.63, (0.61, 0.12, 0.50, 0.68)),
        "linkedin": (45, 0.32, (0.58, 0.08, 0.55, 0.70)),
    }
    rows = []
    for date in dates:
        weekend = date.day_of_week >= 5
        spring = 1 + 0.10 * (date.month - 3)  # growing traffic through spring
        for channel, (base, mobile_share, rates) in profile.items():
            level = base * spring
            if channel == "linkedin" and weekend:
                level *= 0.35
            elif channel == "meta" and weekend:
                level *= 1.18
            elif channel == "newsletter":
                level *= 2.6 if date.day_of_week == 1 else 0.72  # Tuesday send
            for device in ("mobile", "desktop"):
                share = mobile_share if device == "mobile" else 1 - mobile_share
                sessions = int(rng.poisson(level * share))
                views = rng.binomial(sessions, rates[0])
                cart = rng.binomial(views, rates[1])
                checkout_rate = rates[2] * (0.86 if device == "mobile" else 1.12)
                checkout = rng.binomial(cart, min(checkout_rate, 0.95))
                purchase_rate = rates[3] * (0.90 if device == "mobile" else 1.06)
                purchases = rng.binomial(checkout, min(purchase_rate, 0.95))
                rows.append((date.strftime("%Y-%m-%d"), channel, device, sessions, views, cart, checkout, purchases))
    return pd.DataFrame(
        rows,
        columns=["date", "channel", "device", "sessions", "product_views", "add_to_cart", "checkouts", "purchases"],
    )


def event_log(rng, n_users, start, days, channel_p, step_p, stages, extra_event=None, extra_p=0.0):
    """A raw web-analytics export: one row per event, users repeat events."""
    users = random_ids(rng, n_users, "u", 5)
    channels = list(channel_p)
    probs = np.array(list(channel_p.values()), dtype=float)
    user_channel = rng.choice(channels, size=n_users, p=probs / probs.sum())
    t0 = pd.Timestamp(start)
    rows = []
    # repeats: how many times each stage tends to fire for one user
    extra_repeats = {1: 1.3, 2: 0.35, 3: 0.2}
    for user, channel in zip(users, user_channel):
        t = t0 + pd.Timedelta(minutes=int(rng.integers(0, days * 24 * 60)))
        mult = {"newsletter": 1.25, "meta": 0.8, "linkedin": 0.85, "google_ads": 1.05}.get(channel, 1.0)
        rows.append((user, t, channel, stages[0]))
        if rng.random() < 0.18:  # came back another day
            rows.append((user, t + pd.Timedelta(hours=int(rng.integers(20, 90))), channel, stages[0]))
        for k in range(1, len(stages)):
            if rng.random() >= min(step_p[k - 1] * mult, 0.97):
                break
            for _ in range(1 + rng.poisson(extra_repeats.get(k, 0.0))):
                t = t + pd.Timedelta(seconds=int(rng.integers(20, 600)))
                rows.append((user, t, channel, stages[k]))
        if extra_event and rng.random() < extra_p:
            rows.append((user, t + pd.Timedelta(seconds=int(rng.integers(5, 300))), channel, extra_event))
    df = pd.DataFrame(rows, columns=["user_id", "event_time", "channel", "event"])
    df = df.sort_values(["event_time", "user_id"], kind="stable").reset_index(drop=True)
    df["event_time"] = stamp(df["event_time"])
    return df


# ---------------------------------------------------------------------------
# Customers, orders and campaigns (unit economics, cohorts)
# ---------------------------------------------------------------------------

def customers_and_orders(rng, first_month, n_months, end, per_month, channel_p, loyal_share, aov, id_prefix):
    """Customers acquired month by month, and every order they place until ``end``."""
    end = pd.Timestamp(end)
    channels = list(channel_p)
    probs = np.array(list(channel_p.values()), dtype=float)
    probs = probs / probs.sum()
    customers, orders = [], []
    months = pd.period_range(first_month, periods=n_months, freq="M")
    n_customer = 0
    for i, month in enumerate(months):
        n_new = rng.poisson(per_month * (1 + 0.04 * i))
        for _ in range(n_new):
            n_customer += 1
            cid = f"{id_prefix}{n_customer:05d}"
            channel = rng.choice(channels, p=probs)
            start = month.start_time + pd.Timedelta(minutes=int(rng.integers(0, month.days_in_month * 1440)))
            customers.append((cid, channel, start))
            mean_basket = aov[channel]
            loyal = rng.random() < loyal_share[channel]
            orders.append((cid, channel, start, mean_basket * rng.lognormal(0, 0.35)))
            # a quick second order in the first month now and then
            if rng.random() < (0.09 if loyal else 0.03):
                t = start + pd.Timedelta(days=float(rng.uniform(2, 20)))
                if t <= end:
                    orders.append((cid, channel, t, mean_basket * rng.lognormal(-0.1, 0.35)))
            k = 1
            while True:
                m = month + k
                if m.start_time > end:
                    break
                p = 0.34 * 0.94 ** (k - 1) if loyal else 0.09 * 0.62 ** (k - 1)
                if rng.random() < p:
                    n_orders = 2 if rng.random() < 0.08 else 1
                    for _ in range(n_orders):
                        t = m.start_time + pd.Timedelta(minutes=int(rng.integers(0, m.days_in_month * 1440)))
                        if t <= end:
                            orders.append((cid, channel, t, mean_basket * rng.lognormal(0.05, 0.35)))
                k += 1
    cust = pd.DataFrame(customers, columns=["customer_id", "acquisition_channel", "first_order_time"])
    ords = pd.DataFrame(orders, columns=["customer_id", "acquisition_channel", "order_time", "revenue"])
    ords = ords.sort_values("order_time", kind="stable").reset_index(drop=True)
    ords["revenue"] = ords["revenue"].round(2)
    return cust, ords


def campaigns_from_customers(rng, customers, plan, months):
    """Monthly campaign report whose new customers match the customer table."""
    cust = customers.copy()
    cust["month"] = cust["first_order_time"].dt.strftime("%Y-%m")
    acquired = cust.groupby(["month", "acquisition_channel"]).size()
    rows = []
    for month in months:
        for channel, campaigns in plan.items():
            total = int(acquired.get((month, channel), 0))
            weights = np.array([c[1] for c in campaigns], dtype=float)
            split = rng.multinomial(total, weights / weights.sum())
            for (name, _w, cvr, cpc, ctr, aov, repeat), new in zip(campaigns, split):
                new = max(int(new), 1)
                clicks = int(round(new / (cvr * rng.lognormal(0, 0.12))))
                impressions = int(round(clicks / (ctr * rng.lognormal(0, 0.10))))
                spend = round(clicks * cpc * rng.lognormal(0, 0.08), 2)
                revenue = round(new * aov * rng.lognormal(0, 0.12) * (1 + repeat), 2)
                rows.append((month, channel, name, spend, impressions, clicks, new, revenue))
    return pd.DataFrame(
        rows, columns=["month", "channel", "campaign", "spend", "impressions", "clicks", "new_customers", "revenue"]
    )


# ---------------------------------------------------------------------------
# A/B tests
# ---------------------------------------------------------------------------

def ab_sessions(rng, n_per_arm, rates, start, days, repeat_mean, with_date=True):
    """Session-level experiment log: a user can appear in several sessions."""
    ids = random_ids(rng, 2 * n_per_arm, "u", 6)
    assigned = np.where(rng.random(len(ids)) < 0.5, "A", "B")  # a fair coin per user, as in production
    rows = []
    for variant in ["A", "B"]:
        for user in [u for u, v in zip(ids, assigned) if v == variant]:
            converts = rng.random() < rates[variant]
            n_sessions = 1 + rng.poisson(repeat_mean * (1.4 if converts else 1.0))
            converting_session = rng.integers(0, n_sessions)
            day0 = int(rng.integers(0, days))
            for s in range(n_sessions):
                day = min(day0 + s * int(rng.integers(0, 3)), days - 1)
                date = (pd.Timestamp(start) + pd.Timedelta(days=day)).strftime("%Y-%m-%d")
                row = (user, variant, date, int(converts and s == converting_session))
                rows.append(row if with_date else (row[0], row[1], row[3]))
    cols = ["user_id", "variant", "session_date", "converted"] if with_date else ["user_id", "variant", "converted"]
    df = pd.DataFrame(rows, columns=cols)
    sort_cols = ["session_date", "user_id"] if with_date else ["user_id"]
    return df.sort_values(sort_cols, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------
# Multi-touch journeys
# ---------------------------------------------------------------------------

def journeys(rng, n, start, days, opener_p, closer_p, aov, prefix):
    """Touchpoints (incl. some after the purchase) and conversions per journey."""
    ids = [f"{prefix}{k:05d}" for k in range(1, n + 1)]
    touches, conversions = [], []
    openers = list(opener_p)
    op = np.array(list(opener_p.values()), dtype=float)
    closers = list(closer_p)
    cp = np.array(list(closer_p.values()), dtype=float)
    for jid in ids:
        t = pd.Timestamp(start) + pd.Timedelta(minutes=int(rng.integers(0, days * 1440)))
        n_touch = 1 + min(rng.poisson(1.7), 6)
        chans = [rng.choice(openers, p=op / op.sum())]
        for _ in range(n_touch - 1):
            chans.append(rng.choice(closers, p=cp / cp.sum()))
        times = [t]
        for _ in range(n_touch - 1):
            times.append(times[-1] + pd.Timedelta(minutes=int(rng.integers(30, 6 * 1440))))
        for c, tt in zip(chans, times):
            touches.append((jid, tt, c))
        p_conv = 0.12 + 0.09 * (n_touch - 1) + (0.08 if chans[-1] in ("newsletter", "google_ads") else 0)
        if rng.random() < min(p_conv, 0.75):
            conv_t = times[-1] + pd.Timedelta(minutes=int(rng.integers(2, 180)))
            value = round(aov * rng.lognormal(0, 0.4), 2)
            conversions.append((jid, conv_t, value))
            # post-purchase touches: order-confirmation newsletter, retargeting
            for _ in range(rng.binomial(2, 0.22)):
                after = conv_t + pd.Timedelta(minutes=int(rng.integers(60, 4 * 1440)))
                touches.append((jid, after, rng.choice(["newsletter", "meta"], p=[0.7, 0.3])))
    tdf = pd.DataFrame(touches, columns=["journey_id", "touch_time", "channel"])
    tdf = tdf.sort_values(["journey_id", "touch_time"], kind="stable").reset_index(drop=True)
    tdf["touch_time"] = stamp(tdf["touch_time"])
    cdf = pd.DataFrame(conversions, columns=["journey_id", "conversion_time", "revenue"])
    cdf["conversion_time"] = stamp(cdf["conversion_time"])
    return tdf, cdf


# ---------------------------------------------------------------------------
# SEO and email
# ---------------------------------------------------------------------------

def expected_ctr(position):
    """Organic click-through rate by average position (typical industry curve)."""
    curve = {1: 0.29, 2: 0.16, 3: 0.105, 4: 0.074, 5: 0.053, 6: 0.040, 7: 0.031, 8: 0.025, 9: 0.021, 10: 0.018}
    p = max(1, int(round(position)))
    if p <= 10:
        return curve[p]
    if p <= 20:
        return 0.011 - 0.0004 * (p - 11)
    return 0.0025


def seo_keywords(rng, keywords, aov, with_revenue):
    rows = []
    for kw, volume, position, intent in keywords:
        pos = round(float(np.clip(position * rng.lognormal(0, 0.06), 1.0, 60)), 1)
        impressions = int(rng.poisson(volume * (1.0 if pos <= 20 else 0.45)))
        ctr = expected_ctr(pos) * rng.lognormal(0.15 if intent == "brand" else 0, 0.18)
        clicks = int(rng.binomial(impressions, min(ctr, 0.6)))
        cvr = {"brand": 0.06, "transactional": 0.035, "informational": 0.007}[intent]
        conversions = int(rng.binomial(clicks, cvr))
        row = [kw, intent, impressions, clicks, pos, conversions]
        if with_revenue:
            row.append(round(conversions * aov * rng.lognormal(0, 0.15), 2))
        rows.append(row)
    cols = ["keyword", "intent", "impressions", "clicks", "avg_position", "conversions"]
    if with_revenue:
        cols.append("revenue")
    return pd.DataFrame(rows, columns=cols)


def email_list(rng, n):
    emails = set()
    while len(emails) < n:
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        style = rng.integers(0, 4)
        local = [f"{first}.{last}", f"{first[0]}{last}", f"{first}{last}{rng.integers(1, 99)}", f"{last}.{first}"][style]
        emails.add(f"{local}@{rng.choice(DOMAINS)}")
    return sorted(emails)


def messy(rng, email):
    """How the same address shows up in an export from another tool."""
    r = rng.random()
    if r < 0.07:
        local, domain = email.split("@")
        return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.capitalize()
    if r < 0.10:
        return email.upper()
    if r < 0.13:
        return " " + email + " "
    return email


def email_campaign_log(rng, recipients, campaigns, mess=True):
    """sends table + event log (open/click/unsubscribe, with repeats) for a list of campaigns."""
    sends, events = [], []
    for cid, name, send_time, open_p, click_p in campaigns:
        send_time = pd.Timestamp(send_time)
        bounced_mask = rng.random(len(recipients)) < rng.uniform(0.012, 0.03)
        delivered = [e for e, b in zip(recipients, bounced_mask) if not b]
        sends.append((cid, name, send_time.strftime("%Y-%m-%d %H:%M"), len(recipients), int(bounced_mask.sum())))
        for email in delivered:
            opened = rng.random() < open_p
            clicked = rng.random() < (click_p if opened else click_p * 0.08)  # images blocked: click without open
            if opened:
                t = send_time + pd.Timedelta(minutes=float(rng.exponential(600)))
                for _ in range(1 + rng.poisson(0.6)):
                    events.append((cid, messy(rng, email) if mess else email, "open", t))
                    t = t + pd.Timedelta(minutes=float(rng.exponential(900)))
            if clicked:
                t = send_time + pd.Timedelta(minutes=float(rng.exponential(700) + 1))
                for _ in range(1 + rng.poisson(0.5)):
                    events.append((cid, messy(rng, email) if mess else email, "click", t))
                    t = t + pd.Timedelta(minutes=float(rng.exponential(60)))
            if rng.random() < 0.0035:
                t = send_time + pd.Timedelta(minutes=float(rng.exponential(800)))
                events.append((cid, messy(rng, email) if mess else email, "unsubscribe", t))
    sdf = pd.DataFrame(sends, columns=["campaign_id", "campaign", "send_time", "sent", "bounced"])
    edf = pd.DataFrame(events, columns=["campaign_id", "email", "event", "event_time"])
    edf = edf.sort_values(["campaign_id", "event_time"], kind="stable").reset_index(drop=True)
    edf["event_time"] = stamp(edf["event_time"])
    return sdf, edf


def email_campaigns_summary(rng) -> pd.DataFrame:
    """Caffè Aurora: weekly newsletter report as exported by the email platform."""
    subjects = [
        "Nuove miscele di primavera", "Il segreto della moka perfetta", "Spedizione gratuita fino a domenica",
        "Monorigine Etiopia: arrivato!", "Colazione all'italiana", "Ultimi giorni: -15% sulle capsule",
        "Come conservare il caffè in grani", "Festa del papà: idee regalo", "Decaffeinato senza compromessi",
        "Nuovo: cold brew kit", "Il caffè dei baristi torinesi", "Abbonamento: mai più senza caffè",
        "Pasqua con Aurora", "Guida ai macinacaffè", "Tazzine in edizione limitata", "Caffè e sostenibilità",
        "Riattiva il tuo abbonamento", "Ponte del 1° maggio: -10%", "Festa della mamma", "Il nostro torrefattore racconta",
        "Estate: ricette con il caffè", "Ultima chiamata: miscela Gran Crema", "Nuovi filtri V60", "Cold brew day",
        "Grazie: 5 anni di Aurora", "Saldi d'inizio estate",
    ]
    rows = []
    list_size = 18400
    for i, subject in enumerate(subjects):
        send = pd.Timestamp("2026-01-06 09:30") + pd.Timedelta(weeks=i)
        list_size = int(list_size * rng.lognormal(0.006, 0.004))
        segment = "all_subscribers" if i % 4 else "active_90d"
        sent = list_size if segment == "all_subscribers" else int(list_size * 0.42)
        bounced = int(rng.binomial(sent, 0.018))
        delivered = sent - bounced
        promo = any(w in subject.lower() for w in ("-", "gratuita", "saldi", "ultima", "ultimi"))
        open_rate = (0.41 if segment == "active_90d" else 0.29) * rng.lognormal(0, 0.08)
        opens = int(rng.binomial(delivered, open_rate))
        ctor = (0.16 if promo else 0.10) * rng.lognormal(0, 0.15)
        clicks = int(rng.binomial(opens, ctor))
        unsub = int(rng.binomial(delivered, 0.0022 if segment == "all_subscribers" else 0.0009))
        orders = int(rng.binomial(clicks, 0.085 if promo else 0.045))
        revenue = round(orders * 38 * rng.lognormal(0, 0.1), 2)
        rows.append((f"NL{i + 1:02d}", subject, send.strftime("%Y-%m-%d"), segment, sent, bounced, opens, clicks,
                     unsub, orders, revenue))
    return pd.DataFrame(rows, columns=["campaign_id", "subject", "send_date", "segment", "sent", "bounced",
                                       "unique_opens", "unique_clicks", "unsubscribes", "orders", "revenue"])


AURORA_KEYWORDS = [
    ("caffè aurora", 4200, 1.1, "brand"), ("aurora caffè torino", 900, 1.0, "brand"),
    ("aurora torrefazione", 650, 1.2, "brand"), ("caffè in grani", 22000, 6.5, "transactional"),
    ("caffè in grani online", 5400, 3.4, "transactional"), ("miscela arabica 100%", 3600, 4.8, "transactional"),
    ("caffè macinato moka", 8100, 7.9, "transactional"), ("capsule compatibili nespresso", 40500, 18.5, "transactional"),
    ("caffè decaffeinato in grani", 2900, 5.2, "transactional"), ("caffè specialty italia", 1300, 2.6, "transactional"),
    ("abbonamento caffè", 1900, 3.1, "transactional"), ("caffè monorigine", 2400, 8.8, "transactional"),
    ("caffè etiopia yirgacheffe", 880, 4.1, "transactional"), ("cold brew kit", 1600, 12.4, "transactional"),
    ("regalo per amanti del caffè", 3300, 14.2, "transactional"), ("macinacaffè manuale", 6600, 23.5, "transactional"),
    ("filtri v60", 2900, 16.8, "transactional"), ("caffè torrefazione artigianale", 1700, 5.9, "transactional"),
    ("tazzine da caffè", 9900, 31.0, "transactional"), ("caffè robusta", 3600, 9.6, "transactional"),
    ("come fare il caffè con la moka", 27100, 5.6, "informational"), ("quanto caffè nella moka", 6600, 3.8, "informational"),
    ("differenza arabica robusta", 4400, 2.2, "informational"), ("come conservare il caffè", 5400, 8.3, "informational"),
    ("cold brew ricetta", 4400, 11.7, "informational"), ("caffè filtro come si fa", 2400, 6.9, "informational"),
    ("macinatura caffè espresso", 1900, 13.5, "informational"), ("caffeina quanto ne contiene", 8100, 27.5, "informational"),
    ("storia del caffè", 3600, 19.8, "informational"), ("caffè e colesterolo", 9900, 42.0, "informational"),
    ("tostatura chiara o scura", 1300, 4.4, "informational"), ("v60 rapporto caffè acqua", 1000, 3.2, "informational"),
    ("crema del caffè", 1600, 15.6, "informational"), ("caffè americano come si fa", 12100, 21.3, "informational"),
    ("latte art a casa", 2900, 35.0, "informational"), ("moka quante tazze", 1900, 9.1, "informational"),
]

OLIVETO_KEYWORDS = [
    ("oliveto sereno", 2900, 1.0, "brand"), ("oliveto sereno olio", 720, 1.1, "brand"),
    ("oliveto sereno recensioni", 390, 1.6, "brand"), ("olio extravergine di oliva", 49500, 14.8, "transactional"),
    ("olio evo pugliese", 6600, 3.9, "transactional"), ("olio extravergine online", 5400, 5.7, "transactional"),
    ("olio evo 5 litri", 8100, 8.6, "transactional"), ("olio coratina", 2400, 2.4, "transactional"),
    ("olio nuovo 2026", 3600, 6.8, "transactional"), ("olio evo biologico", 9900, 11.2, "transactional"),
    ("olio dop terra di bari", 1300, 3.3, "transactional"), ("olio extravergine prezzo", 12100, 17.4, "transactional"),
    ("regalo gastronomico", 4400, 24.0, "transactional"), ("taralli pugliesi online", 2900, 9.4, "transactional"),
    ("orecchiette artigianali", 3600, 12.9, "transactional"), ("olio in latta", 1600, 4.6, "transactional"),
    ("olio aromatizzato al peperoncino", 2400, 7.3, "transactional"), ("olio evo frantoio", 1900, 10.5, "transactional"),
    ("cesto natalizio pugliese", 1000, 19.1, "transactional"), ("olio ogliarola", 880, 2.8, "transactional"),
    ("come riconoscere olio extravergine", 5400, 6.2, "informational"), ("olio evo proprietà", 8100, 9.8, "informational"),
    ("acidità olio extravergine", 2900, 3.6, "informational"), ("come conservare l'olio", 3600, 4.9, "informational"),
    ("olio per friggere", 12100, 26.7, "informational"), ("polifenoli olio", 2400, 7.7, "informational"),
    ("differenza olio evo e olio di oliva", 6600, 12.2, "informational"), ("raccolta olive quando", 4400, 15.3, "informational"),
    ("olio amaro e piccante", 1300, 2.1, "informational"), ("frantoio come funziona", 1900, 18.6, "informational"),
    ("olio nuovo quando si fa", 2400, 10.1, "informational"), ("dieta mediterranea olio", 3600, 33.0, "informational"),
    ("calorie olio extravergine", 9900, 38.5, "informational"), ("olio in gravidanza", 1600, 22.4, "informational"),
    ("orecchiette ricetta", 33100, 28.0, "informational"), ("bruschetta olio nuovo", 1000, 5.4, "informational"),
    ("olio di oliva colesterolo", 4400, 21.7, "informational"), ("cultivar olive pugliesi", 880, 4.0, "informational"),
    ("potatura ulivo", 14800, 44.0, "informational"), ("olio torbido o filtrato", 1300, 8.1, "informational"),
]


# ---------------------------------------------------------------------------
# Assemble the course's files
# ---------------------------------------------------------------------------

def lessons_data():
    write(funnel_daily(rng_for("aurora-funnel-daily")), LESSONS, "funnel_daily.csv")

    stages = ["session_start", "view_product", "add_to_cart", "begin_checkout", "purchase"]
    events = event_log(
        rng_for("aurora-events"), 700, "2026-05-04", 7,
        {"google_ads": 0.28, "meta": 0.26, "newsletter": 0.1, "organic": 0.33, "linkedin": 0.03},
        (0.66, 0.24, 0.55, 0.70), stages,
    )
    write(events, LESSONS, "funnel_events.csv")

    rng = rng_for("aurora-customers")
    customers, orders = customers_and_orders(
        rng, "2026-01", 12, "2026-12-31 23:59", 140,
        {"google_ads": 0.32, "meta": 0.27, "newsletter": 0.12, "organic": 0.24, "linkedin": 0.05},
        {"google_ads": 0.24, "meta": 0.15, "newsletter": 0.36, "organic": 0.27, "linkedin": 0.42},
        {"google_ads": 31.0, "meta": 27.0, "newsletter": 34.0, "organic": 30.0, "linkedin": 118.0},
        "C",
    )
    cust = customers.copy()
    cust["first_order_date"] = cust.pop("first_order_time").dt.strftime("%Y-%m-%d")
    cities = ["Torino", "Milano", "Roma", "Bologna", "Napoli", "Firenze", "Genova", "Verona", "Bari", "Padova", "Palermo", "Trieste"]
    cust["city"] = rng.choice(cities, size=len(cust), p=[.2, .19, .14, .08, .08, .07, .05, .05, .04, .04, .03, .03])
    write(cust, LESSONS, "customers.csv")
    ords = orders[["customer_id", "order_time", "revenue"]].copy()
    ords.insert(0, "order_id", [f"A{k:06d}" for k in range(100001, 100001 + len(ords))])
    ords["order_date"] = ords.pop("order_time").dt.strftime("%Y-%m-%d")
    write(ords[["order_id", "customer_id", "order_date", "revenue"]], LESSONS, "orders.csv")

    plan = {
        "google_ads": [("Search | Brand Aurora", 2, 0.085, 0.38, 0.12, 31, 1.4),
                       ("Search | Caffè in grani", 4, 0.026, 0.74, 0.045, 31, 0.45),
                       ("Shopping | Moka e macchine", 3, 0.022, 0.52, 0.011, 34, 0.35)],
        "meta": [("Prospecting | Lookalike 2%", 5, 0.011, 0.41, 0.009, 27, 0.2),
                 ("Retargeting | Carrello abbandonato", 2, 0.034, 0.63, 0.014, 29, 0.6),
                 ("Reels | Colazione italiana", 3, 0.008, 0.29, 0.007, 26, 0.15)],
        "newsletter": [("Newsletter | Benvenuto", 1, 0.05, 0.45, 0.09, 34, 0.8)],
        "linkedin": [("Aurora for Business | Uffici", 3, 0.018, 3.10, 0.0045, 118, 0.5),
                     ("Lead gen | Office manager", 2, 0.011, 2.60, 0.0038, 110, 0.3)],
    }
    months = [f"2026-{m:02d}" for m in range(1, 13)]
    write(campaigns_from_customers(rng_for("aurora-campaigns"), customers, plan, months), LESSONS, "campaigns.csv")

    ab = ab_sessions(rng_for("aurora-ab"), 4200, {"A": 0.062, "B": 0.068}, "2026-06-01", 21, 0.35, with_date=False)
    write(ab, LESSONS, "ab_test.csv")

    touches, conv = journeys(
        rng_for("aurora-journeys"), 900, "2026-04-01", 45,
        {"meta": 0.3, "google_ads": 0.27, "organic": 0.3, "linkedin": 0.05, "newsletter": 0.08},
        {"google_ads": 0.3, "newsletter": 0.3, "meta": 0.17, "organic": 0.2, "linkedin": 0.03},
        33, "J",
    )
    write(touches, LESSONS, "touchpoints.csv")
    write(conv, LESSONS, "conversions.csv")

    write(seo_keywords(rng_for("aurora-seo"), AURORA_KEYWORDS, 33, True), LESSONS, "seo_keywords.csv")
    write(email_campaigns_summary(rng_for("aurora-email-summary")), LESSONS, "email_campaigns.csv")

    rng = rng_for("aurora-email-events")
    recipients = email_list(rng, 1400)
    sends, events = email_campaign_log(rng, recipients, [
        ("NL21", "Estate: ricette con il caffè", "2026-05-26 09:30", 0.31, 0.11),
        ("NL22", "Ultima chiamata: miscela Gran Crema", "2026-06-02 09:30", 0.33, 0.16),
    ])
    write(events, LESSONS, "email_events.csv")


def assignment_data():
    # a1: funnel event log, campaigns, orders with acquisition channel
    stages = ["visit", "product_view", "add_to_cart", "checkout", "purchase"]
    events = event_log(
        rng_for("oliveto-events"), 1000, "2026-10-05", 14,
        {"google_ads": 0.3, "meta": 0.27, "newsletter": 0.09, "organic": 0.3, "linkedin": 0.04},
        (0.64, 0.27, 0.58, 0.72), stages, extra_event="newsletter_signup", extra_p=0.06,
    )
    write(events, A1, "funnel_events.csv")

    rng = rng_for("oliveto-customers")
    customers, orders = customers_and_orders(
        rng, "2026-01", 6, "2026-12-31 23:59", 120,
        {"google_ads": 0.33, "meta": 0.28, "newsletter": 0.11, "organic": 0.23, "linkedin": 0.05},
        {"google_ads": 0.22, "meta": 0.12, "newsletter": 0.38, "organic": 0.28, "linkedin": 0.45},
        {"google_ads": 46.0, "meta": 39.0, "newsletter": 52.0, "organic": 44.0, "linkedin": 165.0},
        "OS",
    )
    a1_orders = orders.copy()
    a1_orders.insert(0, "order_id", [f"OS-{k:05d}" for k in range(20001, 20001 + len(a1_orders))])
    a1_orders["order_date"] = a1_orders.pop("order_time").dt.strftime("%Y-%m-%d")
    write(a1_orders[["order_id", "customer_id", "acquisition_channel", "order_date", "revenue"]], A1, "orders.csv")
    plan = {
        "google_ads": [("Search | Brand Oliveto", 2, 0.09, 0.42, 0.13, 46, 1.2),
                       ("Search | Olio extravergine", 5, 0.024, 0.86, 0.05, 46, 0.4),
                       ("Shopping | Latte 5 litri", 3, 0.02, 0.58, 0.012, 58, 0.3)],
        "meta": [("Prospecting | Amanti della cucina", 5, 0.009, 0.44, 0.008, 39, 0.15),
                 ("Retargeting | Visitatori 30gg", 2, 0.03, 0.71, 0.013, 41, 0.55),
                 ("Reels | Raccolta 2026", 2, 0.007, 0.31, 0.006, 37, 0.1)],
        "newsletter": [("Newsletter | Benvenuto", 1, 0.055, 0.55, 0.1, 52, 0.7)],
        "linkedin": [("Regali aziendali | HR & Office", 3, 0.016, 3.4, 0.0042, 165, 0.4),
                     ("Regali aziendali | Ristoratori", 1, 0.012, 2.9, 0.0036, 150, 0.3)],
    }
    months = [f"2026-{m:02d}" for m in range(1, 7)]
    campaigns = campaigns_from_customers(rng_for("oliveto-campaigns"), customers, plan, months)
    write(campaigns.drop(columns="impressions"), A1, "campaigns.csv")

    # a2: orders for cohorts, session-level A/B test
    _, orders2 = customers_and_orders(
        rng_for("oliveto-cohorts"), "2026-01", 9, "2026-09-30 23:59", 105,
        {"google_ads": 0.33, "meta": 0.28, "newsletter": 0.11, "organic": 0.23, "linkedin": 0.05},
        {"google_ads": 0.22, "meta": 0.12, "newsletter": 0.38, "organic": 0.28, "linkedin": 0.45},
        {"google_ads": 46.0, "meta": 39.0, "newsletter": 52.0, "organic": 44.0, "linkedin": 165.0},
        "OS",
    )
    a2_orders = orders2[["customer_id", "order_time", "revenue"]].copy()
    a2_orders.insert(0, "order_id", [f"OS-{k:05d}" for k in range(50001, 50001 + len(a2_orders))])
    a2_orders["order_date"] = a2_orders.pop("order_time").dt.strftime("%Y-%m-%d")
    write(a2_orders[["order_id", "customer_id", "order_date", "revenue"]], A2, "orders.csv")
    write(ab_sessions(rng_for("oliveto-ab"), 2500, {"A": 0.084, "B": 0.092}, "2026-09-07", 21, 0.45), A2, "ab_sessions.csv")

    # a3: journeys, SEO keywords, email sends and events
    touches, conv = journeys(
        rng_for("oliveto-journeys"), 700, "2026-10-01", 40,
        {"meta": 0.32, "google_ads": 0.25, "organic": 0.29, "linkedin": 0.06, "newsletter": 0.08},
        {"google_ads": 0.31, "newsletter": 0.29, "meta": 0.18, "organic": 0.18, "linkedin": 0.04},
        48, "J",
    )
    write(touches, A3, "touchpoints.csv")
    write(conv, A3, "conversions.csv")
    write(seo_keywords(rng_for("oliveto-seo"), OLIVETO_KEYWORDS, 48, False).drop(columns="conversions"),
          A3, "seo_keywords.csv")
    rng = rng_for("oliveto-email")
    recipients = email_list(rng, 1150)
    sends, events = email_campaign_log(rng, recipients, [
        ("E01", "Olio nuovo 2026: prenota ora", "2026-10-06 10:00", 0.34, 0.08),
        ("E02", "La raccolta è iniziata", "2026-10-13 10:00", 0.30, 0.035),
        ("E03", "Spedizione gratuita sopra 49 €", "2026-10-20 10:00", 0.31, 0.065),
        ("E04", "Ricette d'autunno con l'olio nuovo", "2026-10-27 10:00", 0.27, 0.03),
        ("E05", "Black Friday: -20% sulle latte", "2026-11-24 10:00", 0.36, 0.11),
    ])
    write(sends, A3, "email_sends.csv")
    write(events, A3, "email_events.csv")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=COURSE, metavar="DIR",
                        help="write below DIR instead of the course folder (same layout)")
    set_output(parser.parse_args().out)
    lessons_data()
    assignment_data()
    for folder in (LESSONS, A1, A2, A3):
        for f in sorted(folder.glob("*.csv")):
            print(f"{f.relative_to(OUT)}: {f.stat().st_size / 1024:.0f} KB")
