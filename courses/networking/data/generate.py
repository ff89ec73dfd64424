"""Make the data of the networking course with a fixed seed.

Run from anywhere:  python courses/networking/data/generate.py [--out DIR]

``--out DIR`` writes the same layout below DIR instead of the course folder, to
compare a fresh run with the shipped files.

It writes the same fictional community into ``lessons/data/`` and into the
``data/`` folder of every source assignment (only the files each one needs):

members.csv      150 members of the community: handle, name, role, city, company, followers
messages.csv     direct messages over 2026, one row per (sender, recipient) with the count;
                 A->B and B->A are separate rows, and a few rows are notes to self
events.csv       the community's meetups in 2026
attendance.csv   one row per check-in at an event (a few people checked in twice)
posts.csv        the LinkedIn-style post log of one member, Giulia Ferri, over 2026

Everything is fictional; running the script twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import math
import random
from pathlib import Path

SEED = 20260115
HERE = Path(__file__).resolve().parent
COURSE = HERE.parent
ME = "giulia.ferri"

FIRST_NAMES = [
    "Alessandro", "Andrea", "Antonio", "Davide", "Elena", "Federica", "Francesca", "Francesco",
    "Gabriele", "Giorgia", "Giovanni", "Giuseppe", "Laura", "Lorenzo", "Luca", "Marco",
    "Martina", "Matteo", "Michela", "Paolo", "Roberta", "Sara", "Simone", "Stefano", "Valentina",
    "Alessia", "Beatrice", "Chiara", "Claudia", "Cristina", "Daniele", "Emanuele", "Fabio",
    "Filippo", "Ilaria", "Irene", "Leonardo", "Manuela", "Mattia", "Nicola", "Noemi", "Riccardo",
    "Silvia", "Tommaso", "Veronica", "Alice", "Camilla", "Edoardo", "Pietro", "Serena",
]
SURNAMES = [
    "Rossi", "Russo", "Bianchi", "Romano", "Colombo", "Bruno", "Ricci", "Marino", "Greco",
    "Gallo", "Conti", "Costa", "Mancini", "Giordano", "Rizzo", "Lombardi", "Barbieri", "Moretti",
    "Fontana", "Caruso", "Mariani", "Ferrara", "Santoro", "Rinaldi", "Leone", "Longo", "Galli",
    "Martini", "Serra", "Vitale", "De Luca", "Esposito", "Marchetti", "Villa", "Cattaneo",
    "Fabbri", "Bellini", "Testa", "Pellegrini", "Parisi", "Guerra", "Sala", "Monti", "Palumbo",
    "Orlando", "Benedetti", "Valentini", "Gentile", "Farina", "Neri",
]

# The six circles of the community: (label, size, main cities, roles, companies)
CIRCLES = [
    ("SEO and content", 30, ["Milano", "Milano", "Milano", "Padova"],
     ["SEO specialist", "SEO specialist", "copywriter", "content creator", "content strategist"],
     ["Parola Chiave", "Inchiostro Digitale", "freelance", "Rank Lab"]),
    ("Startup founders", 24, ["Torino", "Torino", "Milano"],
     ["founder", "founder", "growth marketer", "product manager", "developer"],
     ["Vela Labs", "Snodo", "Fabbrica 42", "freelance"]),
    ("Social and creators", 28, ["Roma", "Roma", "Roma", "Napoli"],
     ["content creator", "social media manager", "social media manager", "videomaker",
      "community manager"],
     ["Studio Tevere", "Reel Factory", "freelance", "Colosseo Media"]),
    ("E-commerce and performance", 24, ["Bologna", "Bologna", "Firenze"],
     ["e-commerce manager", "performance marketer", "performance marketer", "data analyst"],
     ["Carrello Srl", "Emilia Shop", "Metrica", "freelance"]),
    ("Talent and HR", 22, ["Napoli", "Napoli", "Bari", "Roma"],
     ["recruiter", "recruiter", "HR business partner", "employer branding specialist"],
     ["TalentSud", "Persone&Co", "HR Partners", "freelance"]),
    ("Brand and PR", 22, ["Firenze", "Firenze", "Milano", "Bologna"],
     ["brand strategist", "PR consultant", "PR consultant", "marketing director", "art director"],
     ["Giglio Comunicazione", "Ponte Vecchio PR", "Marca Studio", "freelance"]),
]

EVENT_TITLES = {
    0: ("SEO Meetup", "Milano"), 1: ("Startup Night", "Torino"), 2: ("Creator Day", "Roma"),
    3: ("E-commerce Breakfast", "Bologna"), 4: ("HR Tech Talk", "Napoli"),
    5: ("Brand Aperitivo", "Firenze"),
}


def slug(text: str) -> str:
    return text.lower().replace(" ", "").replace("'", "")


def make_members(rng: random.Random) -> list[dict]:
    members = []
    used = set()
    for circle, (label, size, cities, roles, companies) in enumerate(CIRCLES):
        for i in range(size):
            if circle == 0 and i == 0:
                first, last = "Giulia", "Ferri"
            else:
                while True:
                    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
                    if (first, last) not in used and (first, last) != ("Giulia", "Ferri"):
                        break
            used.add((first, last))
            handle = f"{slug(first)}.{slug(last)}"
            role = "content strategist" if handle == ME else rng.choice(roles)
            city = "Milano" if handle == ME else rng.choice(cities)
            company = rng.choice(companies)
            members.append({
                "handle": handle, "name": f"{first} {last}", "role": role, "city": city,
                "company": company, "followers": 0, "_circle": circle,
            })
    return members


def make_ties(rng: random.Random, members: list[dict]) -> dict[tuple[str, str], str]:
    """Undirected ties with their kind: 'close' (inside a circle) or 'bridge' (across)."""
    by_circle: dict[int, list[str]] = {}
    for m in members:
        by_circle.setdefault(m["_circle"], []).append(m["handle"])
    ties: dict[tuple[str, str], str] = {}

    def add(u: str, v: str, kind: str) -> None:
        if u != v:
            ties.setdefault(tuple(sorted((u, v))), kind)

    for circle, handles in by_circle.items():
        # a few well-connected regulars in each circle, everybody else more loosely tied
        popularity = {h: rng.choice([1.0, 1.0, 1.0, 1.4, 2.6]) for h in handles}
        popularity[handles[1]] = 3.0
        if ME in popularity:
            popularity[ME] = 2.2
        for u, v in itertools.combinations(handles, 2):
            p = 0.085 * popularity[u] * popularity[v]
            if rng.random() < min(p, 0.85):
                add(u, v, "close")
        for h in handles:  # nobody is isolated inside their circle
            if not any(h in t for t in ties):
                add(h, rng.choice([x for x in handles if x != h]), "close")

    # brokers: members with a foot in two or three circles
    handles_all = [m["handle"] for m in members]
    circle_of = {m["handle"]: m["_circle"] for m in members}
    broker_plan = [(0, [2, 5]), (1, [3]), (2, [4]), (3, [5, 0]), (4, [1]), (5, [2]), (0, [1]),
                   (3, [4])]
    for home, others in broker_plan:
        broker = rng.choice(by_circle[home][5:])
        for other in others:
            for v in rng.sample(by_circle[other], 2):
                add(broker, v, "bridge")
    # Giulia herself: a content strategist with one tie outside her circle
    for v in rng.sample(by_circle[5], 1):
        add(ME, v, "bridge")
    # a sprinkling of random cross-circle acquaintances
    for _ in range(14):
        u, v = rng.sample(handles_all, 2)
        if circle_of[u] != circle_of[v]:
            add(u, v, "bridge")
    # two newcomers who know only one person each
    for h in (by_circle[2][-1], by_circle[4][-1]):
        for t in [t for t in ties if h in t]:
            del ties[t]
        add(h, rng.choice(by_circle[circle_of[h]][:6]), "close")
    return ties


def make_messages(rng: random.Random, ties: dict) -> list[dict]:
    rows = []
    for (u, v), kind in sorted(ties.items()):
        mean = rng.lognormvariate(math.log(9 if kind == "close" else 2.2), 0.6)
        share = rng.uniform(0.25, 0.75)
        a, b = poisson(rng, mean * share), poisson(rng, mean * (1 - share))
        if a + b == 0:
            a = 1
        if rng.random() < 0.5:
            u, v, a, b = v, u, b, a
        if a:
            rows.append({"sender": u, "recipient": v, "messages": a})
        if b:
            rows.append({"sender": v, "recipient": u, "messages": b})
    # the export also holds "notes to self"
    for h in sorted({r["sender"] for r in rows})[::37][:4]:
        rows.append({"sender": h, "recipient": h, "messages": rng.randint(2, 9)})
    rng.shuffle(rows)
    return rows


def poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def make_events(rng: random.Random, members: list[dict], ties: dict):
    by_circle: dict[int, list[str]] = {}
    for m in members:
        by_circle.setdefault(m["_circle"], []).append(m["handle"])
    brokers = sorted({h for t, kind in ties.items() if kind == "bridge" for h in t})
    events, attendance = [], []
    start = dt.date(2026, 1, 20)
    for i in range(24):
        circle = i % 6
        title, city = EVENT_TITLES[circle]
        day = start + dt.timedelta(days=int(i * 14.5) + rng.randint(0, 4))
        while day.weekday() >= 5 or (day.month == 8):
            day += dt.timedelta(days=3)
        event_id = f"E{i + 1:02d}"
        edition = i // 6 + 1
        events.append({"event_id": event_id, "date": day.isoformat(), "city": city,
                       "title": f"{title} #{edition}"})
        local = by_circle[circle]
        regulars = local[:8]
        people = set(rng.sample(regulars, rng.randint(3, 5)))
        people |= set(rng.sample(local[8:], rng.randint(2, 4)))
        if rng.random() < 0.6:
            people.add(rng.choice([b for b in brokers if b not in local]))
        if circle == 0 and rng.random() < 0.8:
            people.add(ME)
        for h in sorted(people):
            attendance.append({"event_id": event_id, "member": h})
    # some badges were scanned twice at the door
    for row in rng.sample(attendance, 11):
        attendance.append(dict(row))
    rng.shuffle(attendance)
    attendance.sort(key=lambda r: r["event_id"])
    return events, attendance


def make_posts(rng: random.Random) -> list[dict]:
    formats = {  # (share of posts, reach factor, engagement factor)
        "text": (0.26, 0.9, 1.0), "image": (0.22, 1.0, 1.1), "carousel": (0.2, 1.25, 1.45),
        "video": (0.14, 1.15, 1.2), "poll": (0.1, 1.3, 0.9), "article": (0.08, 0.55, 0.7),
    }
    weekday_factor = {0: 0.9, 1: 1.15, 2: 1.2, 3: 1.1, 4: 0.85, 5: 0.6, 6: 0.65}
    hour_factor = {8: 1.2, 9: 1.1, 12: 1.15, 13: 1.05, 18: 0.9, 21: 0.75}
    weekday_rate = {0: 0.95, 1: 1.15, 2: 1.2, 3: 1.1, 4: 0.8, 5: 0.7, 6: 0.75}
    hour_rate = {8: 1.2, 9: 1.1, 12: 1.1, 13: 1.0, 18: 0.8, 21: 0.7}
    names = list(formats)
    weights = [formats[f][0] for f in names]
    posts = []
    day = dt.date(2026, 1, 1)
    week_start = day - dt.timedelta(days=day.weekday())
    followers = 3180
    while week_start <= dt.date(2026, 12, 31):
        month = week_start.month
        if month == 8 and week_start.day > 3 or (month == 12 and week_start.day >= 21):
            n = rng.choice([0, 0, 0, 1])  # holidays
        else:
            n = rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5, 6])
        days = rng.sample(range(5), min(n, 5))
        if n and (n > 5 or rng.random() < 0.12):  # weekends are rare
            days.append(rng.choice([5, 6]))
        days.sort()
        for d in days:
            date = week_start + dt.timedelta(days=d)
            if not dt.date(2026, 1, 1) <= date <= dt.date(2026, 12, 31):
                continue
            hour = rng.choices(list(hour_factor), [4, 1, 4, 1, 3, 1])[0]
            fmt = rng.choices(names, weights)[0]
            _, reach_f, eng_f = formats[fmt]
            cadence_f = 1.0 if len(days) <= 3 else 0.78 - 0.04 * (len(days) - 4)
            impressions = followers * 0.42 * reach_f * weekday_factor[date.weekday()] \
                * hour_factor[hour] * cadence_f * rng.lognormvariate(0, 0.35)
            rate = 0.021 * eng_f * weekday_rate[date.weekday()] * hour_rate[hour] \
                * (1.0 if len(days) <= 3 else 0.9) * rng.lognormvariate(0, 0.2)
            posts.append({"date": date, "hour": hour, "format": fmt, "followers": followers,
                          "impressions": impressions, "rate": rate})
            followers += int(rng.uniform(4, 14) + impressions / 900)
        week_start += dt.timedelta(days=7)
    # three posts went viral, all of them late on a weekday: a few big hits, not a good slot
    late = [p for p in posts if p["hour"] == 18]
    for p in [x for x in late if x["date"].weekday() == 4][1::3][:2] + \
            [x for x in late if x["date"].weekday() == 0][2:3]:
        p["impressions"] *= rng.uniform(7, 11)
        p["rate"] *= rng.uniform(2.2, 2.8)
    rows = []
    for p in posts:
        date, fmt = p["date"], p["format"]
        impressions = int(round(p["impressions"]))
        engaged = impressions * p["rate"]
        comments = int(round(engaged * (0.3 if fmt == "poll" else 0.14) * rng.uniform(0.7, 1.3)))
        shares = int(round(engaged * (0.12 if fmt == "carousel" else 0.07) * rng.uniform(0.6, 1.4)))
        reactions = max(int(round(engaged)) - comments - shares, 1)
        rows.append({
            "date": date.isoformat(), "weekday": date.strftime("%A"), "hour": p["hour"],
            "format": fmt, "followers": p["followers"], "impressions": impressions,
            "reactions": reactions, "comments": comments, "shares": shares,
        })
    return rows


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=COURSE, metavar="DIR",
                        help="folder to write lessons/data and source/<assignment>/data into")
    out = parser.parse_args().out
    rng = random.Random(SEED)
    members = make_members(rng)
    ties = make_ties(rng, members)
    messages = make_messages(rng, ties)
    events, attendance = make_events(rng, members, ties)
    posts = make_posts(rng)
    degree = {m["handle"]: 0 for m in members}
    for u, v in ties:
        degree[u] += 1
        degree[v] += 1
    for m in members:
        m["followers"] = int(rng.lognormvariate(math.log(600 + 90 * degree[m["handle"]]), 0.5))
    members[0]["followers"] = posts[-1]["followers"]

    tables = {
        "members.csv": (members, ["handle", "name", "role", "city", "company", "followers"]),
        "messages.csv": (messages, ["sender", "recipient", "messages"]),
        "events.csv": (events, ["event_id", "date", "city", "title"]),
        "attendance.csv": (attendance, ["event_id", "member"]),
        "posts.csv": (posts, ["date", "weekday", "hour", "format", "followers", "impressions",
                              "reactions", "comments", "shares"]),
    }
    targets = {
        out / "lessons" / "data": list(tables),
        out / "source" / "a1-network-graph-centrality" / "data": ["members.csv", "messages.csv"],
        out / "source" / "a2-communities-weak-ties" / "data":
            ["members.csv", "messages.csv", "events.csv", "attendance.csv"],
        out / "source" / "a3-introductions-personal-brand" / "data":
            ["members.csv", "messages.csv", "posts.csv"],
    }
    for folder, names in targets.items():
        for name in names:
            rows, fields = tables[name]
            write_csv(folder / name, rows, fields)
    print(f"{len(members)} members, {len(ties)} ties, {len(messages)} message rows, "
          f"{len(events)} events, {len(attendance)} check-ins, {len(posts)} posts")


if __name__ == "__main__":
    main()
