#!/usr/bin/env python3
"""Crowded names: contacts whose names repeat as they do in a big agency's CRM, with the truth.

    python3 bench/crowded.py --people 650000 --seed 3 --out bench-output/crowded-1m
    python3 bench/crowded.py --people 650000 --seed 3 --tiles 10 --out bench-output/crowded-10m

Written apart from the sandbox's seed generator and from holdout.py, to test what they share:
both draw names from tables of a few hundred entries spread over many places, so a full name is
rare enough to be evidence. Here it is not. First and last names are Zipf-distributed over a
head of real names and a tail of made-up ones (a few names are very common, most are rare), and
everyone lives in one of six cities and works for one of forty companies, so at a million rows
thousands of different people share "James Smith" and a town. What tells them apart is what
tells people apart in a real CRM: phone numbers and email addresses.

People: most alone; some in households (one surname, a home phone, a postcode, sometimes a family
inbox, different first names); some with a father or son of the same name ("Jr."); coworkers
who share their team's office line and their company's `info@` inbox. A person has 1 to 5 records (about 35%
more than one). A duplicate record carries realistic noise, each of these with its own chance:
a one-letter typo in a name, a nickname, names swapped, the phone in another of its national and
international forms (or missing, or another number), the email in other case, with a `+tag`,
Gmail dots, another address or missing, the city or postcode missing. A few duplicates (about
3%) keep only a name and city: nothing can find those in a crowded table, and that is part of
the test.

Writes data.csv (id,first_name,last_name,email,phone,company,city,postal_code,country) and
truth.csv (id,person). Standard library only; the same seed and size give the same bytes.
"""

import argparse
import csv
import random
from pathlib import Path

# Given names with sex and the nicknames people write instead. Ordered roughly by frequency.
GIVEN = [
    ("James", "M", ["Jim", "Jimmy", "Jamie"]), ("Mary", "F", ["Molly"]),
    ("Michael", "M", ["Mike", "Mikey"]), ("Jennifer", "F", ["Jen", "Jenny"]),
    ("John", "M", ["Johnny", "Jack"]), ("Patricia", "F", ["Pat", "Patty", "Trish"]),
    ("Robert", "M", ["Bob", "Rob", "Bobby"]), ("Linda", "F", ["Lindy"]),
    ("David", "M", ["Dave"]), ("Elizabeth", "F", ["Liz", "Beth", "Betsy"]),
    ("William", "M", ["Bill", "Will", "Billy"]), ("Barbara", "F", ["Barb"]),
    ("Richard", "M", ["Rick", "Dick", "Rich"]), ("Susan", "F", ["Sue", "Susie"]),
    ("Joseph", "M", ["Joe", "Joey"]), ("Jessica", "F", ["Jess"]),
    ("Thomas", "M", ["Tom", "Tommy"]), ("Sarah", "F", []),
    ("Christopher", "M", ["Chris"]), ("Karen", "F", []),
    ("Charles", "M", ["Charlie", "Chuck"]), ("Christine", "F", ["Chris", "Chrissy"]),
    ("Christian", "M", []), ("Christina", "F", ["Tina"]),
    ("Daniel", "M", ["Dan", "Danny"]), ("Nancy", "F", []),
    ("Matthew", "M", ["Matt"]), ("Lisa", "F", []),
    ("Anthony", "M", ["Tony"]), ("Margaret", "F", ["Maggie", "Peggy", "Meg"]),
    ("Mark", "M", []), ("Sandra", "F", ["Sandy"]),
    ("Donald", "M", ["Don"]), ("Ashley", "F", []),
    ("Steven", "M", ["Steve"]), ("Kimberly", "F", ["Kim"]),
    ("Andrew", "M", ["Andy", "Drew"]), ("Emily", "F", ["Em"]),
    ("Paul", "M", []), ("Donna", "F", []),
    ("Joshua", "M", ["Josh"]), ("Michelle", "F", ["Shelly"]),
    ("Kenneth", "M", ["Ken", "Kenny"]), ("Carol", "F", []),
    ("Kevin", "M", []), ("Amanda", "F", ["Mandy"]),
    ("Brian", "M", []), ("Melissa", "F", ["Missy"]),
    ("George", "M", []), ("Deborah", "F", ["Debbie", "Deb"]),
    ("Timothy", "M", ["Tim"]), ("Stephanie", "F", ["Steph"]),
    ("Ronald", "M", ["Ron"]), ("Rebecca", "F", ["Becky", "Becca"]),
    ("Jason", "M", []), ("Laura", "F", []),
    ("Edward", "M", ["Ed", "Eddie", "Ted"]), ("Helen", "F", []),
    ("Jeffrey", "M", ["Jeff"]), ("Sharon", "F", []),
    ("Ryan", "M", []), ("Cynthia", "F", ["Cindy"]),
    ("Jacob", "M", ["Jake"]), ("Kathleen", "F", ["Kathy", "Kate"]),
    ("Gary", "M", []), ("Amy", "F", []),
    ("Nicholas", "M", ["Nick"]), ("Angela", "F", ["Angie"]),
    ("Eric", "M", []), ("Shirley", "F", []),
    ("Jonathan", "M", ["Jon"]), ("Anna", "F", []),
    ("Stephen", "M", ["Steve"]), ("Brenda", "F", []),
    ("Larry", "M", []), ("Pamela", "F", ["Pam"]),
    ("Justin", "M", []), ("Emma", "F", []),
    ("Scott", "M", []), ("Nicole", "F", ["Nikki"]),
    ("Brandon", "M", []), ("Samantha", "F", ["Sam"]),
    ("Benjamin", "M", ["Ben"]), ("Katherine", "F", ["Kate", "Katie"]),
    ("Samuel", "M", ["Sam"]), ("Rachel", "F", []),
    ("Gregory", "M", ["Greg"]), ("Carolyn", "F", []),
    ("Alexander", "M", ["Alex"]), ("Janet", "F", []),
    ("Frank", "M", []), ("Catherine", "F", ["Cathy"]),
    ("Patrick", "M", ["Pat"]), ("Heather", "F", []),
    ("Raymond", "M", ["Ray"]), ("Diane", "F", []),
    ("Jack", "M", []), ("Ruth", "F", []),
    ("Dennis", "M", []), ("Julie", "F", []),
    ("Jerry", "M", []), ("Olivia", "F", ["Liv"]),
    ("Tyler", "M", []), ("Joyce", "F", []),
    ("Aaron", "M", []), ("Virginia", "F", ["Ginny"]),
    ("Jose", "M", ["Pepe"]), ("Maria", "F", []),
    ("Adam", "M", []), ("Victoria", "F", ["Vicky", "Tori"]),
    ("Nathan", "M", ["Nate"]), ("Kelly", "F", []),
    ("Henry", "M", ["Hank", "Harry"]), ("Lauren", "F", []),
    ("Douglas", "M", ["Doug"]), ("Christina", "F", ["Chrissy"]),
    ("Zachary", "M", ["Zach"]), ("Joan", "F", []),
    ("Peter", "M", ["Pete"]), ("Evelyn", "F", ["Evie"]),
    ("Kyle", "M", []), ("Judith", "F", ["Judy"]),
    ("Noah", "M", []), ("Megan", "F", ["Meg"]),
    ("Ethan", "M", []), ("Andrea", "F", []),
    ("Jeremy", "M", []), ("Cheryl", "F", []),
    ("Walter", "M", ["Walt"]), ("Hannah", "F", []),
    ("Christian", "M", []), ("Jacqueline", "F", ["Jackie"]),
    ("Keith", "M", []), ("Martha", "F", []),
    ("Roger", "M", []), ("Gloria", "F", []),
    ("Terry", "M", []), ("Teresa", "F", ["Terri"]),
    ("Austin", "M", []), ("Ann", "F", []),
    ("Sean", "M", []), ("Sara", "F", []),
    ("Gerald", "M", ["Gerry"]), ("Madison", "F", []),
    ("Carl", "M", []), ("Frances", "F", ["Fran"]),
    ("Harold", "M", ["Hal"]), ("Kathryn", "F", ["Kathy"]),
    ("Dylan", "M", []), ("Janice", "F", []),
    ("Arthur", "M", ["Art"]), ("Jean", "F", []),
    ("Lawrence", "M", ["Larry"]), ("Abigail", "F", ["Abby"]),
    ("Jordan", "M", []), ("Alice", "F", []),
    ("Jesse", "M", []), ("Judy", "F", []),
    ("Bryan", "M", []), ("Sophia", "F", ["Sophie"]),
    ("Billy", "M", []), ("Grace", "F", []),
    ("Bruce", "M", []), ("Denise", "F", []),
    ("Gabriel", "M", ["Gabe"]), ("Amber", "F", []),
    ("Joe", "M", []), ("Doris", "F", []),
    ("Logan", "M", []), ("Marilyn", "F", []),
    ("Alan", "M", []), ("Danielle", "F", ["Dani"]),
    ("Juan", "M", []), ("Beverly", "F", ["Bev"]),
    ("Albert", "M", ["Al", "Bert"]), ("Isabella", "F", ["Bella", "Izzy"]),
    ("Willie", "M", []), ("Theresa", "F", ["Tess"]),
    ("Elijah", "M", ["Eli"]), ("Diana", "F", []),
    ("Wayne", "M", []), ("Natalie", "F", ["Nat"]),
    ("Randy", "M", []), ("Brittany", "F", []),
    ("Vincent", "M", ["Vince"]), ("Charlotte", "F", []),
    ("Mason", "M", []), ("Marie", "F", []),
    ("Roy", "M", []), ("Kayla", "F", []),
    ("Ralph", "M", []), ("Alexis", "F", ["Lexi"]),
    ("Bobby", "M", []), ("Lori", "F", []),
    ("Russell", "M", ["Russ"]), ("Priya", "F", []),
    ("Wei", "M", []), ("Mei", "F", []),
    ("Mohammed", "M", []), ("Fatima", "F", []),
    ("Raj", "M", []), ("Aisha", "F", []),
    ("Carlos", "M", []), ("Lucia", "F", []),
    ("Luis", "M", []), ("Ana", "F", []),
    ("Oliver", "M", ["Ollie"]), ("Chloe", "F", []),
]

SURNAMES = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores
Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner
Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz
Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez
Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross
Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales
Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace
Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro
Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman
Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason
Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren
Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne
Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight
Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry
Perkins Hoffman Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval""".split()

# Made-up surnames for the long tail (a real CRM has tens of thousands of surnames, most held by a
# handful of people), built from syllables so they look like names and typos of them stay close.
ONSETS = ["B", "C", "D", "F", "G", "H", "K", "L", "M", "N", "P", "R", "S", "T", "V", "W", "Br",
          "Ch", "Cr", "Dr", "Gr", "Kr", "Pr", "St", "Tr", "Sh", "Th", "Bl", "Fl", "Gl"]
NUCLEI = ["a", "e", "i", "o", "u", "ai", "ea", "oo", "ou", "ie"]
CODAS = ["n", "r", "l", "s", "t", "k", "m", "nd", "rt", "ll", "ss", "ck", "ng", "rd", "ld"]
ENDINGS = ["son", "ton", "ley", "man", "field", "wood", "berg", "stein", "ski", "ez", "ford",
           "well", "ridge", "by", "er", "ing", "ham", "worth", "dale", "more"]

# Six cities in two countries: (city, country, area codes or mobile prefixes, postcode maker).
CITIES = [
    ("Chicago", "US", ["312", "773", "872"], lambda r: f"606{r.randrange(1, 60):02d}"),
    ("Houston", "US", ["713", "281", "832"], lambda r: f"770{r.randrange(1, 99):02d}"),
    ("Phoenix", "US", ["602", "480", "623"], lambda r: f"850{r.randrange(1, 55):02d}"),
    ("Denver", "US", ["303", "720"], lambda r: f"802{r.randrange(1, 50):02d}"),
    ("London", "GB", ["20"], lambda r: f"{r.choice(['E', 'N', 'SE', 'SW', 'W'])}{r.randrange(1, 20)} "
                                        f"{r.randrange(1, 9)}{r.choice('ABDEFGHJLNPQRSTUWXYZ')}"
                                        f"{r.choice('ABDEFGHJLNPQRSTUWXYZ')}"),
    ("Manchester", "GB", ["161"], lambda r: f"M{r.randrange(1, 40)} {r.randrange(1, 9)}"
                                            f"{r.choice('ABDEFGHJLNPQRSTUWXYZ')}"
                                            f"{r.choice('ABDEFGHJLNPQRSTUWXYZ')}"),
]
CITY_WEIGHTS = [30, 20, 15, 10, 17, 8]
COUNTRY_SPELLINGS = {"US": ["US", "US", "USA", "United States", ""], "GB": ["GB", "UK", "United Kingdom", ""]}

COMPANY_WORDS = ["Acme", "Summit", "Harbor", "Pioneer", "Evergreen", "Apex", "Bluebird", "Cedar",
                 "Keystone", "Lighthouse", "Northstar", "Redwood", "Sterling", "Union", "Vista",
                 "Willow", "Atlas", "Beacon", "Crescent", "Frontier"]
COMPANY_KINDS = ["Realty", "Dental", "Plumbing", "Fitness", "Insurance", "Law Group", "Motors",
                 "Roofing", "Salon", "Accounting"]
DOMAINS = ["gmail.com"] * 6 + ["yahoo.com"] * 2 + ["outlook.com", "hotmail.com", "icloud.com", "aol.com"]


def zipf_weights(n, s):
    return [1.0 / (k ** s) for k in range(1, n + 1)]


def typo(r, s):
    """One keyboard slip: a letter dropped, doubled, swapped with the next or replaced."""
    if len(s) < 3:
        return s
    i = r.randrange(1, len(s) - 1)
    kind = r.randrange(4)
    if kind == 0:
        return s[:i] + s[i + 1:]
    if kind == 1:
        return s[:i] + s[i] + s[i:]
    if kind == 2:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    return s[:i] + r.choice("aeioulnrst") + s[i + 1:]


class Generator:
    def __init__(self, seed):
        self.r = random.Random(seed)
        r = self.r
        self.used_emails = set()
        self.used_phones = set()
        self.people = 0
        tail = set()
        while len(tail) < 6000:
            name = r.choice(ONSETS) + r.choice(NUCLEI) + r.choice(CODAS) + r.choice(ENDINGS)
            if name not in SURNAMES:
                tail.add(name)
        tail = sorted(tail)
        r.shuffle(tail)
        self.surnames = SURNAMES + tail
        self.surname_weights = zipf_weights(len(self.surnames), 0.9)
        self.given = GIVEN
        self.given_weights = zipf_weights(len(GIVEN), 0.9)
        self.companies = [f"{a} {b}" for a in COMPANY_WORDS for b in COMPANY_KINDS]
        r.shuffle(self.companies)
        self.companies = self.companies[:40]
        self.company_city = {c: r.choices(range(len(CITIES)), CITY_WEIGHTS)[0] for c in self.companies}

    def new_phone(self, city, mobile=True):
        r = self.r
        _, country, codes, _ = CITIES[city]
        while True:
            if country == "US":
                number = ("US", r.choice(codes), f"{r.randrange(200, 1000)}", f"{r.randrange(0, 10000):04d}")
            elif mobile:
                number = ("GB", "7" + f"{r.randrange(100, 1000)}", f"{r.randrange(0, 1000000):06d}", "")
            else:
                local = r.randrange(1000, 10000) if len(codes[0]) == 2 else r.randrange(100, 1000)
                number = ("GB", codes[0], f"{local}", f"{r.randrange(0, 10000):04d}")
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def render_phone(self, number):
        """A number in one of the ways people type it: national or international."""
        r = self.r
        country, a, b, c = number
        if country == "US":
            return r.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{a}{b}{c}",
                             f"+1 {a} {b} {c}", f"+1{a}{b}{c}", f"1-{a}-{b}-{c}"])
        if a.startswith("7"):
            return r.choice([f"0{a} {b}", f"0{a}{b}", f"+44 {a} {b}", f"+44{a}{b}", f"(0{a}) {b}"])
        return r.choice([f"0{a} {b} {c}", f"(0{a}) {b} {c}", f"+44 {a} {b} {c}", f"0{a}{b}{c}"])

    def new_email(self, first, last, domain=None):
        r = self.r
        f, l = first.lower(), last.lower().replace(" ", "").replace("'", "")
        domain = domain or r.choice(DOMAINS)
        pattern = r.randrange(6)
        local = [f"{f}.{l}", f"{f[0]}{l}", f"{f}{l}", f"{f}_{l}", f"{l}.{f}", f"{f}{r.randrange(1, 99)}"][pattern]
        email = f"{local}@{domain}"
        # Unique by what a mail server delivers to: Gmail ignores dots, so two people never hold
        # jane.doe@ and janedoe@.
        while self.inbox(email) in self.used_emails:
            email = f"{local}{r.randrange(1, 9999)}@{domain}"
        self.used_emails.add(self.inbox(email))
        return email

    @staticmethod
    def inbox(email):
        local, domain = email.split("@")
        return (local.replace(".", "") if domain == "gmail.com" else local) + "@" + domain

    def person(self, last=None, city=None, sex=None, first=None):
        r = self.r
        if first is None:
            while True:
                first, s, nicks = r.choices(self.given, self.given_weights)[0]
                if sex is None or s == sex:
                    break
        else:
            nicks = next((n for g, _, n in self.given if g == first), [])
        last = last or r.choices(self.surnames, self.surname_weights)[0]
        city = r.choices(range(len(CITIES)), CITY_WEIGHTS)[0] if city is None else city
        company = r.choice(self.companies) if r.random() < 0.4 else ""
        self.people += 1
        return {
            "person": f"P{self.people:08d}", "first": first, "nicks": nicks, "last": last,
            "city": city, "postcode": CITIES[city][3](r),
            "country": CITIES[city][1],
            "phone": self.new_phone(city) if r.random() < 0.9 else None,
            "email": self.new_email(first, last) if r.random() < 0.85 else None,
            "company": company,
        }

    def people_groups(self, n):
        """Yields groups of people: alone, a household, a father and son, coworkers."""
        r = self.r
        while self.people < n:
            kind = r.choices(["alone", "household", "jr", "coworkers"], [80, 8, 2, 3])[0]
            if kind == "alone":
                yield [self.person()]
            elif kind == "household":
                head = self.person()
                home = self.new_phone(head["city"], mobile=False)
                family_email = self.new_email("the", head["last"] + "s") if r.random() < 0.3 else None
                members = [head]
                for _ in range(r.choice([1, 1, 2, 3])):
                    # A spouse, a child or a parent: a first name no one else at home has (a son
                    # named after his father is a Jr., below).
                    m = self.person(last=head["last"], city=head["city"])
                    while any(m["first"] == o["first"] for o in members):
                        m["first"], _, m["nicks"] = r.choices(self.given, self.given_weights)[0]
                    m["postcode"] = head["postcode"]
                    members.append(m)
                for m in members:
                    if r.random() < 0.6 or m["phone"] is None:
                        m["phone"] = home
                    if family_email and r.random() < 0.5:
                        m["email"] = family_email
                yield members
            elif kind == "jr":
                father = self.person(sex="M")
                son = self.person(last=father["last"], city=father["city"], first=father["first"])
                son["postcode"] = father["postcode"]
                son["suffix"] = r.choice(["Jr.", "Jr", "II"])
                if r.random() < 0.5:
                    son["phone"] = father["phone"]
                yield [father, son]
            else:
                # A team: its own office line; the company's info@ inbox is shared by every team.
                company = r.choice(self.companies)
                inbox = f"info@{company.lower().replace(' ', '')}.com"
                line = self.new_phone(self.company_city[company], mobile=False)
                members = [self.person(city=self.company_city[company]) for _ in range(r.choice([2, 3, 4, 6]))]
                for m in members:
                    m["company"] = company
                    if r.random() < 0.5:
                        m["phone"] = line
                    if r.random() < 0.3:
                        m["email"] = inbox
                yield members

    def record(self, p, duplicate):
        """One record of a person; a duplicate carries noise."""
        r = self.r
        first, last = p["first"], p["last"]
        if p.get("suffix"):
            last = f"{last} {p['suffix']}"
        phone, email = p["phone"], p["email"]
        city, postcode, company = CITIES[p["city"]][0], p["postcode"], p["company"]
        country = r.choice(COUNTRY_SPELLINGS[p["country"]])
        phone_text = self.render_phone(phone) if phone else ""
        email_text = email or ""
        if duplicate:
            if r.random() < 0.03:
                # Only a name and a town: a walk-in or a business card.
                return [first if r.random() < 0.7 else (r.choice(p["nicks"]) if p["nicks"] else first),
                        last, "", "", "", city, "", country]
            if r.random() < 0.15:
                first = typo(r, first)
            elif r.random() < 0.15 and p["nicks"]:
                first = r.choice(p["nicks"])
            if r.random() < 0.12:
                last = typo(r, last)
            if r.random() < 0.04:
                first, last = last, first
            if r.random() < 0.1:
                first, last = first.upper(), last.upper()
            u = r.random()
            if u < 0.15:
                phone_text = ""
            elif u < 0.2 and email_text:
                phone_text = self.render_phone(self.new_phone(p["city"]))
            u = r.random()
            if email_text and u < 0.1:
                email_text = email_text.upper() if r.random() < 0.5 else email_text.capitalize()
            elif email_text and u < 0.18 and email_text.endswith("@gmail.com"):
                local = email_text.split("@")[0].replace(".", "")
                i = r.randrange(1, max(2, len(local)))
                email_text = f"{local[:i]}.{local[i:]}@gmail.com"
            elif email_text and u < 0.24:
                local, domain = email_text.split("@")
                email_text = f"{local}+{r.choice(['crm', 'news', 'shop', 'promo'])}@{domain}"
            elif u < 0.36 and phone_text:
                email_text = ""
            elif u < 0.42 and phone_text:
                email_text = self.new_email(p["first"], p["last"])
            if r.random() < 0.1:
                city = ""
            if r.random() < 0.15:
                postcode = ""
            if r.random() < 0.3:
                company = ""
        return [first, last, email_text, phone_text, company, city, postcode, country]

    def rows(self, n):
        """Records of n people (about 1.55 each), shuffled."""
        r = self.r
        out = []
        for group in self.people_groups(n):
            for p in group:
                copies = r.choices([1, 2, 3, 4, 5], [62, 24, 9, 3, 2])[0]
                for k in range(copies):
                    out.append((p["person"], self.record(p, duplicate=k > 0)))
        r.shuffle(out)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, required=True, help="people per table (per tile)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--tiles", type=int, default=1,
                    help="tables of --people each, from seeds seed, seed+1, ..., written as one "
                         "file with the tile in front of every id and person (t0_, t1_, ...)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.tiles < 1:
        ap.error("--tiles must be at least 1")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # One table is held in memory at a time (about 1 GiB a million rows), beside the pools of
    # numbers and email addresses taken so far, which grow with every tile: tiles generated apart
    # would give a common name's address (james.smith@gmail.com) and some numbers to a different
    # person in every tile, which no real table does. A company's info@ inbox is shared across
    # tiles as within one. Tile 0 is the table --tiles 1 writes, with t0_ in front of its ids.
    used_emails, used_phones = set(), set()
    total = 0
    with open(out / "data.tmp", "w", newline="", encoding="utf-8") as f, \
            open(out / "truth.tmp", "w", newline="", encoding="utf-8") as t:
        data, truth = csv.writer(f, lineterminator="\n"), csv.writer(t, lineterminator="\n")
        data.writerow(["id", "first_name", "last_name", "email", "phone", "company", "city",
                       "postal_code", "country"])
        truth.writerow(["id", "person"])
        for tile in range(a.tiles):
            generator = Generator(a.seed + tile)
            generator.used_emails, generator.used_phones = used_emails, used_phones
            rows = generator.rows(a.people)
            prefix = f"t{tile}_" if a.tiles > 1 else ""
            for i, (person, rec) in enumerate(rows):
                rid = f"{prefix}c{i:08d}"
                data.writerow([rid] + rec)
                truth.writerow([rid, prefix + person])
            total += len(rows)
            del rows
    (out / "data.tmp").rename(out / "data.csv")
    (out / "truth.tmp").rename(out / "truth.csv")
    print(f"{total} records of {a.people * a.tiles} people -> {out}")


if __name__ == "__main__":
    main()
