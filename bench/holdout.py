#!/usr/bin/env python3
"""Held-out accuracy check for `contactsync dedupe`.

Generates contacts that look like real CRM exports (GoHighLevel agency accounts of US, UK, Canadian
and Australian small businesses) together with the truth, and scores a dedupe result against it.

The generator is written from scratch and deliberately shares nothing with the sandbox's seed
generator (src/sandbox/seed), whose data the dedupe model and its defaults were tuned on: it has its
own name tables and frequencies, its own ways of duplicating a person and its own hard negatives
(different people who look alike). A score on this data is therefore a held-out score.

    python3 bench/holdout.py generate --entities 3000 --seed 1 --out bench-output/holdout
    python3 bench/holdout.py score --truth bench-output/holdout/truth.csv --pred assign.csv
    python3 bench/holdout.py run --entities 3000 --seed 1      # generate, dedupe, score

`generate` writes, under --out:
    data.csv   id,first_name,last_name,email,phone,company,city,postal_code,country,source,
               date_updated,tags                      (the input of `contactsync dedupe`)
    truth.csv  id,entity_id
    kinds.csv  id,kind,variations,groups              (why each record exists, for the breakdown)

A record's kind is `base` (a person's first record), `dup:<variation>` (an extra record of the same
person, named after its main variation; `variations` lists every change applied, main one first)
or `neg:<relation>` (the first record of a person generated as a look-alike of someone else:
household, coworker, namesake, jr_sr, twin, similar_coworker). `groups` names the households,
companies, twin pairs... a person belongs to, so the scorer can tell which relation two wrongly
merged people have.

Only the standard library is used (Python 3.9+).
"""

import argparse
import csv
import hashlib
import json
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations, islice
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
HEADER = ["id", "first_name", "last_name", "email", "phone", "company", "city", "postal_code",
          "country", "source", "date_updated", "tags"]

# ================================================================================================
# Name tables. Each list is ordered from most to least common; Zipf weights turn the order into a
# frequency, which gives the long tail real CRMs have (many Johns and Smiths, a few of everything
# else) without having to maintain exact census counts.

ANGLO_M = """James John Robert Michael William David Richard Joseph Thomas Christopher Charles
Daniel Matthew Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy
Ronald Edward Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott
Brandon Benjamin Samuel Gregory Alexander Frank Patrick Raymond Jack Dennis Jerry Tyler Aaron
Henry Adam Douglas Nathan Peter Zachary Kyle Walter Harold Noah Ethan Oliver Liam Mason Logan Lucas
Harry Dylan Connor Marcus Jamal DeShawn Terrence Trevor Cody Austin Philip Lawrence Vincent
Theodore Frederick Gerald Eugene Leonard Francis Victor""".split()

ANGLO_F = """Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy
Betty Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah
Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma Nicole
Helen Samantha Katherine Christine Debra Rachel Carolyn Janet Catherine Heather Diane Olivia Julie
Joyce Victoria Kelly Christina Lauren Joan Evelyn Judith Megan Andrea Cheryl Hannah Jacqueline
Martha Gloria Madison Abigail Sophie Charlotte Chloe Grace Natalie Alexandra Danielle Erica Tiffany
Brittany Kayla Aaliyah Imani Latoya Jasmine Ava Mia Isabella Frances Josephine Caitlin Lindsay
Kristen""".split()

GIVEN = {  # (origin, sex) -> names
    ("anglo", "M"): ANGLO_M,
    ("anglo", "F"): ANGLO_F,
    ("hispanic", "M"): """José Juan Luis Carlos Jesús Miguel Jorge Francisco Alejandro Antonio
        Manuel Pedro Ricardo Roberto Eduardo Javier Fernando Raúl Andrés Héctor Óscar Ramón Julián
        Sergio Diego Mario""".split(),
    ("hispanic", "F"): """María Guadalupe Ana Rosa Carmen Sofía Gabriela Alejandra Daniela Adriana
        Lucía Verónica Mónica Leticia Yesenia Marisol Elena Isabel Juana Valeria Ximena
        Camila""".split(),
    ("east_asian", "M"): "Wei Jun Hao Ming Jian Min-jun Ji-hoon Hyun-woo Sung Hiroshi Takeshi Kenji".split(),
    ("east_asian", "F"): "Mei Jing Xiu Yan Ji-woo Seo-yeon Min-ji Hana Yuna Yuki Haruka Xiaoling".split(),
    ("vietnamese", "M"): "Minh Tuan Duc Hung Quang Thanh Long Khoa".split(),
    ("vietnamese", "F"): "Linh Huong Thao Lan Ngoc Trang Anh Mai".split(),
    ("south_asian", "M"): "Raj Rahul Amit Sanjay Vikram Arjun Deepak Rohan Sunil Mohammed Imran Ali".split(),
    ("south_asian", "F"): "Priya Anjali Neha Pooja Sunita Kavita Aisha Fatima Deepa Meera".split(),
    ("eastern_euro", "M"): """Dmitri Sergei Andrzej Piotr Tomasz Łukasz Marek Jiří Ivan Vladimir
        Oleksandr Bogdan Mihai""".split(),
    ("eastern_euro", "F"): """Olga Svetlana Natalia Irina Katarzyna Agnieszka Magdalena Ewa Oksana
        Yulia Zuzana Ioana""".split(),
    ("french", "M"): """Jean Pierre Luc François Mathieu Stéphane Marc Étienne Benoît Guillaume
        Jean-François Sébastien Alexandre Olivier Philippe Jean-Philippe""".split(),
    ("french", "F"): """Marie Isabelle Geneviève Émilie Sylvie Nathalie Chantal Josée Valérie
        Mélanie Marie-Ève Julie Catherine Caroline Marie-Claude Annie""".split(),
}

US_ANGLO_SURNAMES = """Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas
Moore Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright
Scott Hill Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans
Edwards Collins Stewart Morris Murphy Cook Rogers Morgan Peterson Cooper Reed Bailey Bell Kelly
Howard Ward Cox Richardson Wood Watson Brooks Bennett Gray James Hughes Price Sanders Myers Long
Ross Foster Powell Jenkins Perry Russell Sullivan Butler Barnes Fisher Henderson Coleman Simmons
Patterson Jordan Reynolds Hamilton Graham Wallace Cole West Hayes Bryant Ellis Stevens Murray Ford
Marshall Owens McDonald Harrison Kennedy Wells Hunt Black Palmer Mills Nichols Grant Knight
Ferguson Rose Stone Hawkins Dunn Perkins Hudson Spencer Gardner Stephens Payne Pierce Berry
Matthews Arnold Wagner Willis Ray Watkins Olson Carroll Duncan Snyder Hart Cunningham Bradley Lane
Andrews Harper Fox Riley Armstrong Carpenter Weaver Greene Lawrence Elliott Sims Austin Peters
Kelley Franklin Lawson Fields Ryan Schmidt Carr Wheeler Chapman Oliver Montgomery Richards
Williamson Johnston Banks Meyer Bishop McCoy Howell Morrison Hansen Harvey Little Burton Stanley
George Jacobs Reid Fuller Lynch Dean Gilbert Welch Larson Burke Hanson Day Bowman Fowler Hoffman
Carlson Pearson Holland Douglas Fleming Jensen Byrd Davidson Hopkins May Terry Wade Walters Curtis
Neal Caldwell Lowe Jennings Barnett Graves Horton Shelton Barrett O'Brien Sutton Gregory McKinney
Lucas Miles Craig Chambers Holt Lambert Fletcher Watts Bates Hale Rhodes Beck Newman Haynes
McDaniel Bush Vaughn Parks Dawson Norris Hardy Love Steele Curry Powers Schultz Barker Page Ball
Keller Chandler Weber Leonard Walsh Lyons Ramsey Wolfe Schneider Mullins Benson Sharp Bowen
O'Connor Russo Rossi Romano Esposito Ricci Costa Greco Marino Goldberg Cohen Friedman Katz Levine
Washington Jefferson Mack Moss""".split()

UK_HEAD = """Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson
Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Jackson Wood Turner
Martin Cooper Hill Ward Morris Moore Clark King Baker Harrison Morgan Allen James Scott Phillips
Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly Cook Carter Richardson Bailey
Collins Bell Shaw Murphy Miller Cox Richards Marshall Anderson Simpson Ellis Adams Wilkinson Foster
Chapman Powell Webb Rogers Gray Mason Hunt Campbell Matthews Owen Palmer Holmes Mills Barnes Knight
Lloyd Butler Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Fletcher
Walsh Gibson Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day Brooks West
Lawrence Cole Atkinson Bradley Spencer Dawson Ball Burton O'Brien Watts Rose Booth Perry Ryan Grant
Wells Armstrong Francis Rees Hayes Hart Hudson Newman Barrett Webster Hunter Gregory Carr Lowe Page
Marsh Riley Dunn Woods Parsons Berry Stone Reid Holland Hawkins Harding Porter Robertson Newton
Oliver Reed Kennedy Williamson Bird Gardner MacDonald Fraser MacLeod Sinclair Byrne Doyle Quinn
Gallagher""".split()

AU_HEAD = """Smith Jones Williams Brown Wilson Taylor Johnson White Martin Anderson Thompson Walker
Ryan Harris Kelly King Lee Robinson Wright Campbell Mitchell Clarke Hughes Young Murphy Hall Thomas
Roberts Evans Scott Green Cooper Edwards Baker Turner Wood Morris Stewart Hill Ward Jackson O'Brien
Collins Moore Kennedy Davies Bennett Russell Murray Watson Lewis Morgan Hunt Ross Marshall Price
Harrison Graham Cook Hamilton Bell Sullivan Fraser Wallace McDonald Shaw Carter Richardson O'Connor
Byrne""".split()

CA_HEAD = """Smith Brown Martin Wilson Taylor MacDonald Campbell Anderson Jones Thompson Johnson
Williams Scott Stewart White Lee Young MacLeod Reid Murray Clark Ross Robinson Miller Walker Wright
King Fraser Graham Hall Morrison Mitchell Wood Hughes Baker Bell Grant Harris Lewis McDonald
Kennedy Cameron Sinclair""".split()

SURNAMES = {  # origin -> surnames; "anglo" is chosen per country below
    "hispanic": """García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres
        Flores Rivera Gómez Díaz Cruz Morales Reyes Gutiérrez Ortiz Chávez Ruiz Jiménez Mendoza
        Álvarez Castillo Romero Vásquez Herrera Medina Aguilar Vargas Castro Núñez Muñoz Peña
        Domínguez Fernández Suárez Delgado Ramos Navarro Salazar""".split(),
    "east_asian": """Li Wang Zhang Liu Chen Yang Huang Zhao Wu Zhou Lin Kim Lee Park Choi Jung Kang
        Cho Yoon Tanaka Sato Suzuki Wong Chan Ng Leung""".split(),
    "vietnamese": "Nguyen Tran Le Pham Hoang Huynh Phan Vu Vo Dang Bui Do".split(),
    "south_asian": """Patel Shah Singh Kumar Sharma Gupta Khan Ali Ahmed Desai Mehta Reddy Rao Iyer
        Joshi Chopra Malhotra Hussain Rahman Chaudhry""".split(),
    "eastern_euro": """Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński
        Szymański Dvořák Novák Horváth Kovács Ivanov Petrov Smirnov Popescu Ionescu Shevchenko
        Kovalenko Bondarenko Nagy Popov Volkov Kuznetsov""".split(),
    "french": """Tremblay Gagnon Roy Côté Bouchard Gauthier Morin Lavoie Fortin Gagné Ouellet
        Pelletier Bélanger Lévesque Bergeron Leblanc Paquette Girard Simard Boucher""".split(),
}


def _head_then_rest(head, rest):
    """A country's own top names first, then the shared tail in its usual order."""
    seen, out = set(), []
    for n in head + rest:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


ANGLO_SURNAMES = {
    "US": US_ANGLO_SURNAMES,
    "GB": _head_then_rest(UK_HEAD, US_ANGLO_SURNAMES),
    "AU": _head_then_rest(AU_HEAD, UK_HEAD + US_ANGLO_SURNAMES),
    "CA": _head_then_rest(CA_HEAD, US_ANGLO_SURNAMES),
}

# Share of each origin among a country's contacts (a small business's customers, not the census).
ORIGIN_MIX = {
    "US": {"anglo": 66, "hispanic": 18, "east_asian": 5, "vietnamese": 2, "south_asian": 4,
           "eastern_euro": 5},
    "GB": {"anglo": 82, "south_asian": 9, "eastern_euro": 6, "east_asian": 3},
    "CA": {"anglo": 55, "french": 20, "east_asian": 10, "south_asian": 9, "eastern_euro": 4,
           "hispanic": 2},
    "AU": {"anglo": 75, "east_asian": 9, "vietnamese": 5, "south_asian": 6, "eastern_euro": 3,
           "hispanic": 2},
}
# How often someone of that origin has a given name from the origin's own list (the rest go by an
# English name: Kevin Nguyen, Jennifer Kim, Daniel Kowalski).
NATIVE_GIVEN = {"anglo": 1.0, "hispanic": 0.65, "east_asian": 0.4, "vietnamese": 0.5,
                "south_asian": 0.75, "eastern_euro": 0.6, "french": 0.7}
# How often a person's own records keep accents (US web forms and staff mostly drop them).
ACCENT_HABIT = {"US": 0.3, "GB": 0.5, "CA": 0.75, "AU": 0.4}

NICKNAMES = {
    "William": ["Bill", "Will", "Billy", "Liam"], "Robert": ["Bob", "Rob", "Bobby", "Robbie"],
    "Elizabeth": ["Liz", "Beth", "Lizzie", "Betty", "Eliza", "Libby"],
    "Katherine": ["Kate", "Katie", "Kathy", "Kat"], "Catherine": ["Cathy", "Cat", "Kate"],
    "Kathleen": ["Kathy", "Kath", "Katie"], "Michael": ["Mike", "Mikey", "Mick"],
    "Jennifer": ["Jen", "Jenny", "Jenn"], "Alexander": ["Alex", "Xander"],
    "Alexandra": ["Alex", "Alexa", "Lexi", "Sasha"], "Christopher": ["Chris", "Topher", "Kit"],
    "Christina": ["Chris", "Tina", "Christy"], "Christine": ["Chris", "Christy", "Tina"],
    "Margaret": ["Peggy", "Maggie", "Meg", "Marge"], "Richard": ["Dick", "Rick", "Rich", "Richie"],
    "James": ["Jim", "Jimmy", "Jamie"], "Anthony": ["Tony"], "Joseph": ["Joe", "Joey"],
    "Thomas": ["Tom", "Tommy"], "Daniel": ["Dan", "Danny"], "Matthew": ["Matt"],
    "David": ["Dave", "Davey"], "Steven": ["Steve"], "Stephen": ["Steve"],
    "Edward": ["Ed", "Eddie", "Ted", "Ned"], "Charles": ["Charlie", "Chuck"],
    "Patrick": ["Pat", "Paddy"], "Patricia": ["Pat", "Patty", "Trish"],
    "Samuel": ["Sam", "Sammy"], "Samantha": ["Sam", "Sammy"], "Benjamin": ["Ben", "Benny"],
    "Nicholas": ["Nick", "Nicky"], "Jonathan": ["Jon", "Johnny"], "John": ["Jack", "Johnny"],
    "Timothy": ["Tim", "Timmy"], "Kenneth": ["Ken", "Kenny"], "Gregory": ["Greg"],
    "Andrew": ["Andy", "Drew"], "Jeffrey": ["Jeff"], "Joshua": ["Josh"],
    "Zachary": ["Zach", "Zack"], "Nathan": ["Nate"], "Jacob": ["Jake"],
    "Rebecca": ["Becky", "Becca"], "Deborah": ["Deb", "Debbie"], "Debra": ["Deb", "Debbie"],
    "Susan": ["Sue", "Susie"], "Barbara": ["Barb"], "Jessica": ["Jess", "Jessie"],
    "Victoria": ["Vicky", "Tori"], "Kimberly": ["Kim"], "Pamela": ["Pam"], "Cynthia": ["Cindy"],
    "Abigail": ["Abby"], "Madison": ["Maddie"], "Amanda": ["Mandy"],
    "Mary": ["Molly", "Polly"], "Sarah": ["Sally"], "Dorothy": ["Dot", "Dottie"],
    "Judith": ["Judy"], "Sandra": ["Sandy"], "Jacqueline": ["Jackie"], "Josephine": ["Jo", "Josie"],
    "Frances": ["Fran"], "Francis": ["Frank"], "Frederick": ["Fred", "Freddie"],
    "Lawrence": ["Larry"], "Raymond": ["Ray"], "Ronald": ["Ron", "Ronnie"],
    "Donald": ["Don", "Donnie"], "Gerald": ["Jerry"], "Harold": ["Hal"], "Henry": ["Hank"],
    "Douglas": ["Doug"], "Philip": ["Phil"], "Theodore": ["Ted", "Teddy", "Theo"],
    "Walter": ["Walt"], "Eugene": ["Gene"], "Leonard": ["Leo", "Len", "Lenny"],
    "Vincent": ["Vince", "Vinny"], "Victor": ["Vic"], "Isabella": ["Bella", "Izzy"],
    "Natalie": ["Nat"], "Olivia": ["Liv"], "Danielle": ["Dani"], "Gabriel": ["Gabe"],
    "Francisco": ["Paco", "Pancho", "Frank"], "José": ["Pepe", "Joe"], "Jesús": ["Chuy"],
    "Guadalupe": ["Lupe"], "Roberto": ["Beto"], "Alejandro": ["Alex"], "Eduardo": ["Lalo"],
    "Dmitri": ["Dima"], "Vladimir": ["Vlad"], "Natalia": ["Natasha"], "Katarzyna": ["Kasia"],
    "Oleksandr": ["Sasha"], "Svetlana": ["Sveta"],
}

# Spellings of one name that people (and the staff typing them) mix up.
SPELLINGS = [
    ["Steven", "Stephen"], ["Catherine", "Katherine", "Kathryn"], ["Sarah", "Sara"],
    ["Brian", "Bryan"], ["Jeffrey", "Geoffrey", "Jeffery"], ["Philip", "Phillip"],
    ["Rachel", "Rachael"], ["Eric", "Erik"], ["Mark", "Marc"], ["Teresa", "Theresa"],
    ["Mohammed", "Mohammad", "Muhammad"], ["Megan", "Meghan"], ["Lindsay", "Lindsey"],
    ["Caitlin", "Kaitlyn", "Katelyn"], ["Ashley", "Ashleigh"], ["Kristen", "Kristin"],
    ["Sergei", "Sergey"], ["Dmitri", "Dmitry"], ["Yulia", "Julia"], ["Aaliyah", "Aliyah"],
    ["Thompson", "Thomson"], ["Smith", "Smyth"], ["Reid", "Reed"], ["Gray", "Grey"],
    ["Clark", "Clarke"], ["Stephens", "Stevens"], ["Phillips", "Philips"],
    ["McDonald", "MacDonald", "Macdonald"], ["Schmidt", "Schmitt"], ["Meyer", "Meier", "Mayer"],
    ["Anderson", "Andersen"], ["Peterson", "Petersen"], ["Hansen", "Hanson"],
    ["Vásquez", "Vazquez"], ["Rodríguez", "Rodriquez"], ["Jensen", "Jenson"],
]
SPELLING_OF = {}
for _group in SPELLINGS:
    for _n in _group:
        SPELLING_OF[_n.lower()] = [m for m in _group if m != _n]

# Different people at one company with names a matcher can take for one (the first pairs share a
# nickname: Chris, Alex, Sam, Pat...).
SIMILAR_PAIRS = [
    ("Christopher", "M", "Christina", "F"), ("Alexander", "M", "Alexandra", "F"),
    ("Daniel", "M", "Danielle", "F"), ("Samuel", "M", "Samantha", "F"),
    ("Patrick", "M", "Patricia", "F"), ("Eric", "M", "Erica", "F"), ("Paul", "M", "Paula", "F"),
    ("Gabriel", "M", "Gabriela", "F"), ("Joseph", "M", "Josephine", "F"),
    ("Michael", "M", "Michelle", "F"), ("Robert", "M", "Roberta", "F"),
    ("Nicholas", "M", "Nicole", "F"), ("Francis", "M", "Frances", "F"),
    ("Brian", "M", "Bryan", "M"), ("Mark", "M", "Marc", "M"), ("Sarah", "F", "Sara", "F"),
    ("Jon", "M", "John", "M"), ("Dan", "M", "Don", "M"), ("Kevin", "M", "Keith", "M"),
    ("Allen", "M", "Alan", "M"), ("Julian", "M", "Julia", "F"), ("Jesse", "M", "Jessie", "F"),
]
TWIN_PAIRS = [
    ("Ethan", "M", "Evan", "M"), ("Madison", "F", "Mason", "M"), ("Olivia", "F", "Oliver", "M"),
    ("Emma", "F", "Ella", "F"), ("Aiden", "M", "Ava", "F"), ("Jacob", "M", "Joshua", "M"),
    ("Hailey", "F", "Hannah", "F"), ("Tyler", "M", "Taylor", "F"), ("Brianna", "F", "Brandon", "M"),
    ("Daniel", "M", "David", "M"), ("Mia", "F", "Max", "M"), ("Lily", "F", "Lucy", "F"),
]

# ================================================================================================
# Places: (city, region, postal-code seeds, phone prefixes, weight). NANP cities carry their real
# area codes; UK cities their dialling code (without the 0), AU cities their one-digit area code.

US_CITIES = [
    ("New York", "NY", ["100", "101", "102"], ["212", "646", "917", "718"], 8),
    ("Los Angeles", "CA", ["900"], ["213", "310", "323", "424"], 6),
    ("Chicago", "IL", ["606"], ["312", "773", "872"], 5),
    ("Houston", "TX", ["770"], ["713", "832", "281"], 4),
    ("Phoenix", "AZ", ["850"], ["602", "480", "623"], 3),
    ("Philadelphia", "PA", ["191"], ["215", "267"], 3),
    ("San Antonio", "TX", ["782"], ["210"], 2),
    ("San Diego", "CA", ["921"], ["619", "858"], 2.5),
    ("Dallas", "TX", ["752"], ["214", "469", "972"], 3),
    ("Austin", "TX", ["787"], ["512", "737"], 2.5),
    ("San Francisco", "CA", ["941"], ["415", "628"], 2.5),
    ("Seattle", "WA", ["981"], ["206"], 2),
    ("Denver", "CO", ["802"], ["303", "720"], 2),
    ("Boston", "MA", ["021"], ["617", "857"], 2),
    ("Las Vegas", "NV", ["891"], ["702", "725"], 2),
    ("Miami", "FL", ["331"], ["305", "786"], 2.5),
    ("Atlanta", "GA", ["303"], ["404", "678", "470"], 2.5),
    ("St. Louis", "MO", ["631"], ["314"], 1.5),
    ("Nashville", "TN", ["372"], ["615"], 1.5),
    ("Portland", "OR", ["972"], ["503", "971"], 1.5),
    ("Charlotte", "NC", ["282"], ["704", "980"], 1.5),
    ("Minneapolis", "MN", ["554"], ["612"], 1.2),
    ("Saint Paul", "MN", ["551"], ["651"], 0.5),
    ("Tampa", "FL", ["336"], ["813"], 1.3),
    ("Orlando", "FL", ["328"], ["407", "321"], 1.3),
    ("Fort Lauderdale", "FL", ["333"], ["954"], 1),
    ("Salt Lake City", "UT", ["841"], ["801", "385"], 1),
    ("Pittsburgh", "PA", ["152"], ["412"], 1),
    ("Cincinnati", "OH", ["452"], ["513"], 0.8),
    ("Columbus", "OH", ["432"], ["614"], 1),
    ("Detroit", "MI", ["482"], ["313"], 1),
    ("Baltimore", "MD", ["212"], ["410", "443"], 1),
    ("Sacramento", "CA", ["958"], ["916"], 1),
    ("Kansas City", "MO", ["641"], ["816"], 1),
    ("Raleigh", "NC", ["276"], ["919", "984"], 1),
    ("Albuquerque", "NM", ["871"], ["505"], 0.7),
    ("Tucson", "AZ", ["857"], ["520"], 0.7),
    ("Scottsdale", "AZ", ["852"], ["480"], 0.6),
    ("Boise", "ID", ["837"], ["208"], 0.5),
    ("Plano", "TX", ["750"], ["469", "972"], 0.5),
    ("Washington", "DC", ["200"], ["202"], 1),
]
CA_CITIES = [
    ("Toronto", "ON", ["M5V", "M4C", "M6G", "M2N"], ["416", "647", "437"], 4),
    ("Vancouver", "BC", ["V6B", "V5K", "V6H"], ["604", "778"], 2.5),
    ("Montréal", "QC", ["H2X", "H3A", "H1V"], ["514", "438"], 2.5),
    ("Calgary", "AB", ["T2P", "T3A"], ["403", "587"], 1.5),
    ("Ottawa", "ON", ["K1P", "K2G"], ["613", "343"], 1.3),
    ("Edmonton", "AB", ["T5J", "T6E"], ["780", "587"], 1.2),
    ("Mississauga", "ON", ["L5B", "L4Z"], ["905", "289"], 1.2),
    ("Winnipeg", "MB", ["R3C", "R2M"], ["204"], 0.8),
    ("Québec", "QC", ["G1R", "G1K"], ["418", "581"], 0.7),
    ("Halifax", "NS", ["B3H", "B3K"], ["902"], 0.6),
]
GB_CITIES = [
    ("London", "England", ["SW1A", "SW11", "E1", "E14", "N1", "NW3", "SE1", "W1D", "EC1V"], ["20"], 8),
    ("Manchester", "England", ["M1", "M4", "M14", "M20"], ["161"], 3),
    ("Birmingham", "England", ["B1", "B15", "B29"], ["121"], 3),
    ("Leeds", "England", ["LS1", "LS6"], ["113"], 2),
    ("Glasgow", "Scotland", ["G1", "G12"], ["141"], 2),
    ("Edinburgh", "Scotland", ["EH1", "EH3"], ["131"], 1.5),
    ("Bristol", "England", ["BS1", "BS8"], ["117"], 1.5),
    ("Liverpool", "England", ["L1", "L18"], ["151"], 1.5),
    ("Newcastle upon Tyne", "England", ["NE1", "NE2"], ["191"], 1),
    ("Sheffield", "England", ["S1", "S10"], ["114"], 1),
    ("Nottingham", "England", ["NG1", "NG7"], ["115"], 1),
    ("Cardiff", "Wales", ["CF10", "CF24"], ["29"], 1),
    ("Brighton", "England", ["BN1", "BN2"], ["1273"], 0.8),
    ("Kingston upon Hull", "England", ["HU1", "HU5"], ["1482"], 0.5),
]
AU_CITIES = [
    ("Sydney", "NSW", [(2000, 2234)], ["2"], 6),
    ("Melbourne", "VIC", [(3000, 3207)], ["3"], 5),
    ("Brisbane", "QLD", [(4000, 4179)], ["7"], 3),
    ("Perth", "WA", [(6000, 6199)], ["8"], 2.5),
    ("Adelaide", "SA", [(5000, 5199)], ["8"], 1.5),
    ("Gold Coast", "QLD", [(4207, 4230)], ["7"], 1.2),
    ("Canberra", "ACT", [(2600, 2617)], ["2"], 0.8),
    ("Hobart", "TAS", [(7000, 7010)], ["3"], 0.5),
]


@dataclass(frozen=True)
class City:
    country: str
    name: str
    region: str
    postal: tuple
    prefixes: tuple
    weight: float


CITIES = {
    cc: [City(cc, n, r, tuple(p), tuple(a), w) for n, r, p, a, w in rows]
    for cc, rows in (("US", US_CITIES), ("CA", CA_CITIES), ("GB", GB_CITIES), ("AU", AU_CITIES))
}

# How people and import tools actually write these cities.
CITY_VARIANTS = {
    "New York": ["New York City", "NYC", "NY", "Manhattan", "New York, NY"],
    "Los Angeles": ["LA", "L.A.", "Los Angelas", "Los Angeles, CA"],
    "San Francisco": ["SF", "San Fran", "San Fransisco"],
    "St. Louis": ["Saint Louis", "St Louis", "St. Louis, MO"],
    "Saint Paul": ["St. Paul", "St Paul"],
    "Las Vegas": ["Vegas", "Las Vagas", "LV"],
    "Philadelphia": ["Philly", "Philidelphia"],
    "Fort Lauderdale": ["Ft. Lauderdale", "Ft Lauderdale", "Fort Lauderdal"],
    "Salt Lake City": ["SLC", "Salt Lake"],
    "Pittsburgh": ["Pittsburg"],
    "Cincinnati": ["Cincinatti", "Cincy"],
    "Phoenix": ["Pheonix"],
    "Tucson": ["Tuscon"],
    "Albuquerque": ["Albuquerqe", "ABQ"],
    "Minneapolis": ["Mpls", "Minneaplis"],
    "Washington": ["Washington DC", "Washington, D.C.", "DC"],
    "Miami": ["Maimi", "Miami, FL"],
    "Kansas City": ["KC", "Kansas City MO"],
    "Newcastle upon Tyne": ["Newcastle", "Newcastle-upon-Tyne"],
    "Kingston upon Hull": ["Hull"],
    "Edinburgh": ["Edinborough", "Edinburgh, Scotland"],
    "London": ["Greater London", "london uk", "Londres"],
    "Montréal": ["Montreal", "Montreal, QC"],
    "Québec": ["Quebec City", "Quebec", "Ville de Québec"],
    "Toronto": ["Tronto", "Toronto ON", "North York"],
    "Sydney": ["Sydeny", "Sydney NSW"],
    "Melbourne": ["Melb", "Melbourne VIC"],
    "Gold Coast": ["Gold Coast QLD", "Surfers Paradise"],
}

COUNTRY_NAMES = {  # how a country cell reads, with the share of each way
    "US": {"US": 60, "United States": 25, "USA": 15},
    "GB": {"GB": 40, "UK": 25, "United Kingdom": 25, "England": 10},
    "CA": {"CA": 60, "Canada": 40},
    "AU": {"AU": 60, "Australia": 40},
}
CALLING_CODE = {"US": "1", "CA": "1", "GB": "44", "AU": "61"}

EMAIL_DOMAINS = {
    "US": {"gmail.com": 48, "yahoo.com": 14, "hotmail.com": 7, "outlook.com": 6, "icloud.com": 8,
           "aol.com": 4, "comcast.net": 3, "att.net": 2, "sbcglobal.net": 2, "msn.com": 1.5,
           "live.com": 1.5, "me.com": 1.5, "verizon.net": 1},
    "GB": {"gmail.com": 40, "hotmail.co.uk": 14, "yahoo.co.uk": 9, "outlook.com": 8,
           "btinternet.com": 8, "icloud.com": 6, "live.co.uk": 5, "sky.com": 4,
           "googlemail.com": 3, "virginmedia.com": 2, "aol.co.uk": 1},
    "CA": {"gmail.com": 45, "hotmail.com": 14, "yahoo.ca": 8, "outlook.com": 7, "icloud.com": 6,
           "rogers.com": 5, "shaw.ca": 4, "sympatico.ca": 3, "videotron.ca": 3, "bell.net": 3,
           "live.ca": 2},
    "AU": {"gmail.com": 42, "hotmail.com": 12, "bigpond.com": 10, "outlook.com": 8,
           "icloud.com": 8, "yahoo.com.au": 6, "optusnet.com.au": 5, "live.com.au": 3,
           "bigpond.net.au": 2, "tpg.com.au": 2},
}
DOMAIN_TYPOS = {
    "gmail.com": ["gmial.com", "gmail.co", "gmai.com", "gamil.com", "gmail.con"],
    "yahoo.com": ["yaho.com", "yahooo.com", "yahoo.co"],
    "hotmail.com": ["hotmial.com", "hotmal.com", "hotmail.co"],
    "outlook.com": ["outlok.com", "outlook.co"],
    "icloud.com": ["iclould.com", "icloud.co"],
    "hotmail.co.uk": ["hotmail.co", "hotmial.co.uk"],
}
HOBBY_WORDS = ["sunshine", "blessed", "soccermom", "golfnut", "texasgirl", "beachlife", "wildcat",
               "dreamer", "coffeelover", "hoopsfan", "mama", "fishon", "gogators", "bluesky"]

# GoHighLevel-style lead sources and tags.
SOURCES = {"Website Form": 20, "Facebook Lead Ad": 18, "CSV Import": 14, "Manual Entry": 10,
           "Google Ads": 6, "Chat Widget": 6, "Zapier": 5, "Calendly": 4, "Missed Call Text Back": 4,
           "Referral": 4, "Instagram": 3, "Inbound Call": 3, "Survey": 2, "Newsletter Signup": 2,
           "Yelp": 1}
MACHINE_SOURCES = {"Facebook Lead Ad", "Zapier", "Missed Call Text Back", "Inbound Call", "Calendly"}
TAGS = ["lead", "customer", "newsletter", "fb lead", "google ads", "webinar", "vip", "past client",
        "booked", "no show", "review requested", "quote sent", "hot lead", "cold", "nurture",
        "referral", "appointment set", "reactivation"]

INDUSTRIES = ["Dental", "Family Dentistry", "Orthodontics", "Med Spa", "Aesthetics", "Roofing",
              "HVAC", "Heating & Air", "Plumbing", "Electric", "Realty", "Real Estate Group",
              "Law Group", "Chiropractic", "Physical Therapy", "Fitness", "Salon", "Barbershop",
              "Auto Repair", "Auto Detailing", "Landscaping", "Lawn Care", "Insurance Agency",
              "Mortgage", "Financial Advisors", "Marketing", "Construction", "Remodeling",
              "Pest Control", "Cleaning Services", "Wellness Center", "Solar", "Pools",
              "Home Services", "Consulting", "Accounting", "Tax Services", "Veterinary Clinic",
              "Pet Grooming", "Photography", "Catering", "Bakery", "Yoga Studio", "Martial Arts",
              "Tutoring", "Moving", "Flooring", "Garage Doors", "Tree Service", "Painting",
              "Home Care"]
COMPANY_WORDS = ["Summit", "Bright", "Blue Ridge", "Evergreen", "Pinnacle", "Harbor",
                 "Cornerstone", "Apex", "Redwood", "Silver Oak", "Northstar", "Lakeside",
                 "Keystone", "Maple", "Horizon", "Elite", "Prime", "Coastal", "Urban", "Heritage",
                 "Peak", "Riverbend", "Sunrise", "True North", "Liberty", "Golden", "Premier",
                 "Legacy", "Ironwood", "Clearwater", "Oak Hill", "Bluebird", "Red Rock", "Anchor"]
LEGAL_SUFFIXES = {
    "US": {"LLC": 35, "Inc.": 15, "Inc": 8, "": 30, "Co.": 4, "Corp.": 3, "PLLC": 2, "LLP": 1},
    "GB": {"Ltd": 40, "Ltd.": 10, "Limited": 15, "": 30, "LLP": 5},
    "CA": {"Inc.": 35, "Ltd.": 20, "": 35, "Corp.": 10},
    "AU": {"Pty Ltd": 50, "Pty. Ltd.": 10, "": 40},
}
SUFFIX_RESPELLINGS = {"LLC": ["L.L.C.", "llc", "Llc"], "Inc.": ["Inc", "Incorporated"],
                      "Inc": ["Inc.", "Incorporated"], "Ltd": ["Ltd.", "Limited", "LTD"],
                      "Ltd.": ["Ltd", "Limited"], "Limited": ["Ltd", "Ltd."],
                      "Pty Ltd": ["Pty. Ltd.", "PTY LTD", "P/L"], "Pty. Ltd.": ["Pty Ltd"],
                      "Corp.": ["Corp", "Corporation"], "Co.": ["Co", "Company"],
                      "PLLC": ["P.L.L.C."], "LLP": ["L.L.P."]}
ALL_SUFFIXES = sorted({s for t in LEGAL_SUFFIXES.values() for s in t if s}
                      | {s for t in SUFFIX_RESPELLINGS.values() for s in t}, key=len, reverse=True)

# ================================================================================================
# Small helpers

_FOLD_SPECIAL = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D",
                               "ß": "ss"})


def fold(s: str) -> str:
    """Accents dropped the way a US keyboard user types a name (Ł has no decomposition)."""
    s = unicodedata.normalize("NFKD", s.translate(_FOLD_SPECIAL))
    return "".join(c for c in s if not unicodedata.combining(c))


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(s).lower())


# Accented spelling of every name that has one, by its folded lower-case form.
ACCENTED = {fold(n).lower(): n
            for names in list(GIVEN.values()) + list(SURNAMES.values())
            for n in names if fold(n) != n}
ACCENTED.update({fold(c.name).lower(): c.name for cs in CITIES.values() for c in cs
                 if fold(c.name) != c.name})


class Zipf:
    """Picks from a frequency-ordered list, the k-th item with weight 1/k^s."""

    def __init__(self, items, s=1.0):
        self.items = list(items)
        self.cum, total = [], 0.0
        for k in range(1, len(self.items) + 1):
            total += 1.0 / k ** s
            self.cum.append(total)

    def pick(self, rng, head=None):
        n = min(head or len(self.items), len(self.items))
        return rng.choices(self.items[:n], cum_weights=self.cum[:n])[0]


def wpick(rng, table):
    return rng.choices(list(table), weights=list(table.values()))[0]


def match_case(new: str, like: str) -> str:
    """`new` written in the case style of `like` (so a variation does not also change the case)."""
    if len(like) > 1 and like.isupper():
        return new.upper()
    if like.islower():
        return new.lower()
    return new


_ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEAR = defaultdict(str)
for _r, _row in enumerate(_ROWS):
    for _i, _c in enumerate(_row):
        for _rr in (_r - 1, _r, _r + 1):
            if 0 <= _rr < 3:
                for _ii in (_i - 1, _i, _i + 1):
                    if 0 <= _ii < len(_ROWS[_rr]) and (_rr, _ii) != (_r, _i):
                        _NEAR[_c] += _ROWS[_rr][_ii]


def typo(rng, s: str) -> Optional[str]:
    """One keyboard slip: adjacent swap, dropped, inserted, doubled or substituted letter. The first
    letter is rarely wrong (people look at it), so most slips are further in."""
    letters = [i for i, c in enumerate(s) if c.isalpha()]
    if len(letters) < 3:
        return None
    for _ in range(10):
        i = letters[0] if rng.random() < 0.08 else rng.choice(letters[1:])
        c = s[i]
        near = _NEAR[fold(c).lower()] or "aeiou"
        n = rng.choice(near)
        n = n.upper() if c.isupper() else n
        op = rng.choices(["swap", "drop", "insert", "sub", "double"], [3, 3, 2, 3, 1])[0]
        if op == "swap" and i + 1 < len(s) and s[i + 1].isalpha():
            out = s[:i] + s[i + 1] + s[i] + s[i + 2:]
        elif op == "drop":
            out = s[:i] + s[i + 1:]
        elif op == "insert":
            out = s[:i + 1] + n + s[i + 1:]
        elif op == "double":
            out = s[:i + 1] + c + s[i + 1:]
        else:
            out = s[:i] + n + s[i + 1:]
        if out != s and out.lower() != s.lower():
            return out
    return None


def email_key(addr: str) -> str:
    """The mailbox an address reaches, conservatively: case, +tags and dots never tell two of our
    people apart, whatever the provider, so two entities never share a mailbox by accident."""
    addr = addr.strip().lower()
    local, _, domain = addr.partition("@")
    local = local.split("+")[0].replace(".", "")
    return f"{local}@{'gmail.com' if domain == 'googlemail.com' else domain}"


# ================================================================================================
# Phones


@dataclass(frozen=True)
class Phone:
    cc: str          # country calling code
    national: str    # as dialled at home: NANP without the 1, elsewhere with the trunk 0
    groups: tuple    # how the national digits are spaced when written out
    mobile: bool


NANP_STYLES = {"paren": 22, "dash": 22, "compact": 13, "dot": 6, "space": 5, "e164": 12,
               "intl_dash": 4, "intl_paren": 3, "intl_space": 3, "one_dash": 4, "one_compact": 3,
               "one_paren": 2}
INTL_STYLES = {"nat_spaced": 35, "nat_compact": 18, "e164": 15, "intl_spaced": 15, "intl_00": 3,
               "intl_trunk": 4, "nat_dashed": 4, "nat_paren": 5}


def phone_styles(p: Phone):
    if p.cc == "1":
        return NANP_STYLES
    return {s: w for s, w in INTL_STYLES.items()
            if (s != "intl_trunk" or p.cc == "44") and (s != "nat_paren" or not p.mobile)}


def render_phone(p: Phone, style: str) -> str:
    n = p.national
    if p.cc == "1":
        a, b, c = n[:3], n[3:6], n[6:]
        return {
            "paren": f"({a}) {b}-{c}", "dash": f"{a}-{b}-{c}", "dot": f"{a}.{b}.{c}",
            "space": f"{a} {b} {c}", "compact": n, "e164": f"+1{n}", "intl_dash": f"+1 {a}-{b}-{c}",
            "intl_paren": f"+1 ({a}) {b}-{c}", "intl_space": f"+1 {a} {b} {c}",
            "one_dash": f"1-{a}-{b}-{c}", "one_compact": f"1{n}", "one_paren": f"1 ({a}) {b}-{c}",
        }[style]
    parts, i = [], 0
    for g in p.groups:
        parts.append(n[i:i + g])
        i += g
    intl = " ".join([parts[0][1:]] + parts[1:]).strip()
    return {
        "nat_spaced": " ".join(parts), "nat_compact": n, "nat_dashed": "-".join(parts),
        "nat_paren": f"({parts[0]}) " + " ".join(parts[1:]), "e164": f"+{p.cc}{n[1:]}",
        "intl_spaced": f"+{p.cc} {intl}", "intl_00": f"00{p.cc} {intl}",
        "intl_trunk": f"+{p.cc} (0){intl}",
    }[style]


# ================================================================================================
# The world: people, companies, and the records a CRM ends up holding about them


@dataclass
class Company:
    name: str        # without the legal suffix
    suffix: str
    domain: str
    phone: Phone
    inbox: str       # the shared info@ address
    city: City
    postcode: str

    def display(self, rng) -> str:
        if not self.suffix:
            return self.name
        sep = ", " if self.suffix.startswith("Inc") and rng.random() < 0.2 else " "
        return f"{self.name}{sep}{self.suffix}"


@dataclass
class Entity:
    eid: str
    country: str
    city: City
    postcode: str
    sex: str
    origin: str
    first: str
    last: str
    known_as: str = ""       # the nickname the person goes by, if any
    middle: str = ""
    suffix: str = ""         # Jr./Sr./III, only set when the person's records show it
    suffix_style: str = "last"
    married: str = ""        # the surname a surname-change duplicate uses, fixed once chosen
    accents: bool = True
    emails: list = field(default_factory=list)   # [(address, shared with others)], first = usual
    phones: list = field(default_factory=list)   # [(Phone, shared with others)], first = usual
    company: Optional[Company] = None
    kind: str = "base"
    groups: list = field(default_factory=list)


class Taken:
    """The strings handed out so far (phone numbers, mailboxes, domains), kept as 8-byte digests: a
    set of ten million addresses as Python strings would take gigabytes. Two strings with one digest
    (about one chance in 10^5 at 10 M) only cost the second one a redraw."""

    def __init__(self):
        self.digests = set()

    @staticmethod
    def digest(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")

    def __contains__(self, text: str) -> bool:
        return self.digest(text) in self.digests

    def add(self, text: str):
        self.digests.add(self.digest(text))


class Generator:
    """Makes people a chunk at a time (`chunks`): phones, mailboxes and company domains are unique
    across the whole table, everything else about a person lives and dies with its chunk, so memory
    is one chunk's people and records plus the three `Taken` sets."""

    def __init__(self, seed: int, countries: dict, dup_rate: float):
        self.rng = random.Random(seed)
        self.countries = countries
        self.dup_rate = dup_rate
        self.used_phones = Taken()
        self.used_emails = Taken()     # mailbox keys (email_key), shared inboxes included
        self.used_domains = Taken()
        self.used_ids = set()          # this chunk's record ids; see record_id
        self.entities: list = []       # this chunk's people
        self.people = 0                # people made so far, all chunks
        self.group_seq = Counter()
        # Full names in order of first appearance -> [index, people]: people sharing one are a
        # namesake group, which only the end of the table can tell (see generate).
        self.full_names: dict = {}
        self.given_z = {k: Zipf(v) for k, v in GIVEN.items()}
        self.surname_z = {k: Zipf(v) for k, v in SURNAMES.items()}
        self.anglo_z = {k: Zipf(v) for k, v in ANGLO_SURNAMES.items()}
        self.city_w = {cc: {c: c.weight for c in cs} for cc, cs in CITIES.items()}

    # ---- names, places, numbers -----------------------------------------------------------------

    def given(self, origin, sex, head=None):
        if origin != "anglo" and self.rng.random() > NATIVE_GIVEN[origin]:
            origin = "anglo"
        return self.given_z[(origin, sex)].pick(self.rng, head)

    def surname(self, country, origin, head=None):
        if self.rng.random() < 0.08:   # married into or adopted another family's name
            origin = wpick(self.rng, ORIGIN_MIX[country])
        if origin == "anglo":
            return self.anglo_z[country].pick(self.rng, head)
        return self.surname_z[origin].pick(self.rng, head)

    def city(self, country, other_than=None):
        while True:
            c = wpick(self.rng, self.city_w[country])
            if c != other_than:
                return c

    def postcode(self, city: City) -> str:
        rng = self.rng
        if city.country == "US":
            return rng.choice(city.postal) + f"{rng.randint(1, 99):02d}"
        if city.country == "CA":
            letters = "ABCEGHJKLMNPRSTVWXYZ"
            return f"{rng.choice(city.postal)} {rng.randint(0, 9)}{rng.choice(letters)}{rng.randint(0, 9)}"
        if city.country == "GB":
            letters = "ABDEFGHJLNPQRSTUWXYZ"
            return f"{rng.choice(city.postal)} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
        lo, hi = rng.choice(city.postal)
        return str(rng.randint(lo, hi))

    def phone(self, city: City, mobile=True) -> Phone:
        rng = self.rng
        cc = CALLING_CODE[city.country]
        while True:
            if cc == "1":
                # People keep their mobile number when they move: some area codes are from
                # elsewhere.
                src = city if not mobile or rng.random() > 0.15 else self.city(city.country)
                area = rng.choice(src.prefixes)
                if rng.random() < 0.02:    # the fictional 555-01xx block, seen in test leads
                    national, groups = f"{area}55501{rng.randint(0, 99):02d}", (3, 3, 4)
                else:
                    while True:
                        exch = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
                        if exch[1:] != "11" and exch not in ("555", "950", "958", "959", "976"):
                            break
                    national, groups = f"{area}{exch}{rng.randint(0, 9999):04d}", (3, 3, 4)
            elif cc == "44":
                if mobile:
                    if rng.random() < 0.15:   # Ofcom's drama range, common in demo imports
                        national = f"07700900{rng.randint(0, 999):03d}"
                    else:
                        national = f"07{rng.choice('45789')}{rng.randint(0, 99999999):08d}"
                    groups = (5, 6)
                else:
                    area = rng.choice(city.prefixes)
                    sub_len = {2: 8, 3: 7, 4: 6}[len(area)]
                    first = {"20": "78", "29": "2"}.get(area, "23456789")
                    sub = rng.choice(first) + "".join(str(rng.randint(0, 9)) for _ in range(sub_len - 1))
                    national = f"0{area}{sub}"
                    groups = {2: (3, 4, 4), 3: (4, 3, 4), 4: (5, 6)}[len(area)]
            else:
                if mobile:
                    national, groups = f"04{rng.randint(0, 99999999):08d}", (4, 3, 3)
                else:
                    national = f"0{rng.choice(city.prefixes)}{rng.randint(3, 9)}{rng.randint(0, 9999999):07d}"
                    groups = (2, 4, 4)
            if f"{cc}:{national}" not in self.used_phones:
                self.used_phones.add(f"{cc}:{national}")
                return Phone(cc, national, groups, mobile)

    def claim_email(self, local: str, domain: str, owner: str) -> str:
        """A free address built from `local`: a taken mailbox gets digits, as the provider's sign-up
        form would have suggested."""
        local = local.strip(".") or "contact"
        addr = f"{local}@{domain}"
        tries = 0
        while email_key(addr) in self.used_emails:
            # James Smith is about 1 % of people: at 10 M, jamessmith@gmail.com and its 9,999
            # suffixes run out, and so would a loop that never widened them.
            tries += 1
            if tries > 20:
                addr = f"{local}{self.rng.randint(10_000, 999_999)}@{domain}"
                continue
            addr = f"{local}{self.rng.randint(1, 99)}@{domain}"
            if email_key(addr) in self.used_emails:
                addr = f"{local}{self.rng.randint(100, 9999)}@{domain}"
        self.used_emails.add(email_key(addr))
        return addr

    def personal_email(self, e: Entity, domain=None, pattern=None, nn=None) -> str:
        rng = self.rng
        first = e.known_as if e.known_as and rng.random() < 0.5 else e.first
        f, l = slug(first), slug(e.last)
        nn = nn or (f"{rng.randint(55, 99)}" if rng.random() < 0.6 else f"{rng.randint(0, 99):02d}")
        pattern = pattern or wpick(rng, {
            "f.l": 25, "fl": 15, "il": 12, "flnn": 10, "f.lnn": 6, "f_l": 4, "fnn": 6, "lf": 3,
            "l.f": 3, "fi": 4, "ilnn": 5, "f19": 3, "word": 3})
        local = {
            "f.l": f"{f}.{l}", "fl": f"{f}{l}", "il": f"{f[:1]}{l}", "flnn": f"{f}{l}{nn}",
            "f.lnn": f"{f}.{l}{nn}", "f_l": f"{f}_{l}", "fnn": f"{f}{nn}", "lf": f"{l}{f}",
            "l.f": f"{l}.{f}", "fi": f"{f}{l[:1]}", "ilnn": f"{f[:1]}{l}{nn}",
            "f19": f"{f}{rng.randint(1955, 2004)}", "word": f"{rng.choice(HOBBY_WORDS)}{nn}",
        }[pattern]
        return self.claim_email(local, domain or wpick(rng, EMAIL_DOMAINS[e.country]), e.eid)

    def work_email(self, e: Entity, company: Company) -> str:
        f, l = slug(e.known_as if e.known_as and self.rng.random() < 0.3 else e.first), slug(e.last)
        local = wpick(self.rng, {f: 30, f"{f}.{l}": 35, f"{f[:1]}{l}": 25, f"{f}{l[:1]}": 10})
        return self.claim_email(local, company.domain, e.eid)

    def company(self, city: City, owner_last: str, owner_first: str) -> Company:
        rng = self.rng
        ind = rng.choice(INDUSTRIES)
        pattern = wpick(rng, {"word": 35, "surname": 25, "partners": 7, "city": 12, "sons": 4,
                              "word_group": 4, "initials": 5, "possessive": 8})
        other = self.surname(city.country, "anglo")
        name = {
            "word": f"{rng.choice(COMPANY_WORDS)} {ind}", "surname": f"{owner_last} {ind}",
            "partners": f"{owner_last} & {other}", "city": f"{city.name} {ind}",
            "sons": f"{owner_last} & Sons {ind}", "word_group": f"{rng.choice(COMPANY_WORDS)} {ind} Group",
            "initials": f"{rng.choice('ABCDEJKMRST')}{rng.choice('BCJLMPRSTW')} {ind}",
            "possessive": f"{owner_first}'s {ind}",
        }[pattern]
        suffix = wpick(rng, LEGAL_SUFFIXES[city.country])
        tld = {"US": ".com", "CA": rng.choice([".ca", ".com"]), "GB": rng.choice([".co.uk", ".com"]),
               "AU": ".com.au"}[city.country]
        words = [w for w in re.split(r"[\s&']+", name) if w.lower() not in ("and", "sons", "s")]
        base = slug("".join(words))[:24] or "biz"
        domain = base + tld
        tries = 0
        while domain in self.used_domains:
            # A base has about a hundred variants; at a million people the common ones run out.
            tries += 1
            extra = (rng.choice([slug(city.name)[:6], 'co', 'group', 'hq', str(rng.randint(1, 99))])
                     if tries < 20 else str(rng.randint(100, 999_999)))
            domain = f"{base}{extra}{tld}"
        self.used_domains.add(domain)
        inbox = self.claim_email(wpick(rng, {"info": 50, "office": 12, "hello": 10, "contact": 10,
                                             "admin": 8, "frontdesk": 5, "sales": 5}), domain, "")
        return Company(name, suffix, domain, self.phone(city, mobile=False), inbox, city,
                       self.postcode(city))

    # ---- people -----------------------------------------------------------------------------------

    def new_eid(self):
        return f"P{self.people + 1:05d}"

    def person(self, country=None, city=None, postcode=None, sex=None, origin=None, first=None,
               last=None, head=None) -> Entity:
        rng = self.rng
        country = country or wpick(rng, self.countries)
        city = city or self.city(country)
        origin = origin or wpick(rng, ORIGIN_MIX[country])
        sex = sex or rng.choice("MF")
        first = first or self.given(origin, sex, head)
        last = last or self.surname(country, origin, head)
        e = Entity(self.new_eid(), country, city, postcode or self.postcode(city), sex, origin,
                   first, last)
        e.accents = rng.random() < ACCENT_HABIT[country]
        if NICKNAMES.get(first) and rng.random() < 0.2:
            e.known_as = rng.choice(NICKNAMES[first])
        if rng.random() < 0.6:
            e.middle = self.given(origin, sex)
        self.entities.append(e)   # registered now so the next person gets the next id
        self.people += 1
        e.emails.append((self.personal_email(e), False))
        e.phones.append((self.phone(city), False))
        return e

    def group(self, kind: str) -> str:
        self.group_seq[kind] += 1
        return f"{kind}:{self.group_seq[kind]}"

    def make_plain(self):
        e = self.person()
        if self.rng.random() < 0.4:   # B2B contacts: the owner of a small business
            e.company = self.company(e.city, e.last, e.known_as or e.first)
            work = (self.work_email(e, e.company), False)
            if self.rng.random() < 0.35:
                e.emails.insert(0, work)
            else:
                e.emails.append(work)
        return [e]

    def make_household(self, size):
        """Spouse and grown-up children: one address and surname, often one phone, sometimes one
        family mailbox. Only the first name tells them apart."""
        rng = self.rng
        a = self.person()
        members = [a]
        for k in range(size - 1):
            if k == 0:
                sex = ("F" if a.sex == "M" else "M") if rng.random() < 0.9 else a.sex
                last = a.last if rng.random() < 0.8 else None
            else:
                sex, last = rng.choice("MF"), a.last
            members.append(self.person(a.country, a.city, a.postcode, sex, a.origin, last=last))
        g = self.group("household")
        shared = rng.random()
        if shared < 0.4:
            home = self.phone(a.city, mobile=False)
            for m in members:
                m.phones.insert(0 if rng.random() < 0.7 else len(m.phones), (home, True))
        elif shared < 0.7:   # the others gave the first member's mobile
            a.phones[0] = (a.phones[0][0], True)
            for m in members[1:]:
                if rng.random() < 0.6:
                    m.phones.insert(0, a.phones[0])
        if rng.random() < 0.3:
            l, f1, f2 = slug(a.last), slug(members[0].first), slug(members[1].first)
            local = wpick(rng, {f"{l}family": 3, f"the{l}s": 2, f"{f1}and{f2}": 2,
                                f"{f1[:1]}{f2[:1]}{l}": 2, f"{l}household": 1})
            family = (self.claim_email(local, wpick(rng, EMAIL_DOMAINS[a.country]), ""), True)
            for m in members:
                m.emails.insert(0 if rng.random() < 0.6 else len(m.emails), family)
        for m in members:
            m.kind, m.groups = "neg:household", [g]
        return members

    def make_coworkers(self, size, similar=False):
        """Colleagues whose records carry the company's info@ inbox and office number."""
        rng = self.rng
        city = self.city(wpick(rng, self.countries))
        members = []
        if similar:
            f1, s1, f2, s2 = rng.choice(SIMILAR_PAIRS)
            a = self.person(city.country, city, None, s1, "anglo", f1)
            b = self.person(city.country, city, None, s2, "anglo", f2,
                            last=a.last if rng.random() < 0.5 else None)
            members = [a, b]
        else:
            for _ in range(size):
                members.append(self.person(city.country, city if rng.random() < 0.8 else None))
        co = self.company(city, members[0].last, members[0].first)
        g = [self.group("company")] + ([self.group("similar")] if similar else [])
        for m in members:
            m.company = co
            work = (self.work_email(m, co), False)
            r = rng.random()
            if r < 0.3:
                m.emails[:0] = [(co.inbox, True), work]
            elif r < 0.75:
                m.emails.insert(0, work)
            else:
                m.emails.append(work)
            m.phones.insert(0 if rng.random() < 0.5 else 1, (co.phone, True))
            if rng.random() < 0.7:   # most list the office address
                m.city, m.postcode = co.city, co.postcode
            m.kind, m.groups = ("neg:similar_coworker" if similar else "neg:coworker"), list(g)
        return members

    def make_namesakes(self, size):
        """Different people with one common full name; half of them in the same city."""
        a = self.person(head=25)
        members = [a]
        for _ in range(size - 1):
            same_city = self.rng.random() < 0.55
            members.append(self.person(a.country, a.city if same_city else None, None, a.sex,
                                       a.origin, a.first, a.last))
        for m in members:
            m.kind = "neg:namesake"
        return members

    def make_jr_sr(self):
        """Father and son: one name, one address; the suffix shows only sometimes."""
        rng = self.rng
        dad = self.person(sex="M")
        son = self.person(dad.country, dad.city, dad.postcode, "M", dad.origin, dad.first, dad.last)
        if rng.random() < 0.5:
            son.middle = dad.middle
        son_shows = rng.random() < 0.75
        style = wpick(rng, {"last": 60, "last_comma": 15, "last_nodot": 15, "first": 10})
        if son_shows:
            son.suffix, son.suffix_style = wpick(rng, {"Jr.": 85, "II": 8, "III": 7}), style
            if son.suffix == "Jr." and rng.random() < 0.3:
                son.emails[0] = (self.claim_email(f"{slug(son.first)}{slug(son.last)}jr",
                                                  wpick(rng, EMAIL_DOMAINS[son.country]), son.eid), False)
            if rng.random() < 0.4:   # the home line, given by both
                home = self.phone(dad.city, mobile=False)
                dad.phones.insert(0, (home, True))
                son.phones.insert(0, (home, True))
        if rng.random() < 0.3:
            dad.suffix, dad.suffix_style = "Sr.", style
        g = self.group("jr_sr")
        for m in (dad, son):
            m.kind, m.groups = "neg:jr_sr", [g]
        return [dad, son]

    def make_twins(self):
        rng = self.rng
        country = wpick(rng, self.countries)
        origin = wpick(rng, ORIGIN_MIX[country])
        if origin == "anglo" or rng.random() < 0.5:
            f1, s1, f2, s2 = rng.choice(TWIN_PAIRS)
        else:
            s1 = s2 = rng.choice("MF")
            f1 = self.given(origin, s1)
            f2 = f1
            while f2 == f1:
                f2 = self.given(origin, s2)
        a = self.person(country, None, None, s1, origin, f1)
        b = self.person(country, a.city, a.postcode, s2, origin, f2, a.last)
        if rng.random() < 0.5:   # born the same year, and it shows in both addresses
            nn, pattern = f"{rng.randint(85, 99)}", rng.choice(["flnn", "f.lnn"])
            a.emails[0] = (self.personal_email(a, pattern=pattern, nn=nn), False)
            b.emails[0] = (self.personal_email(b, pattern=pattern, nn=nn), False)
        if rng.random() < 0.6:
            home = self.phone(a.city, mobile=False)
            a.phones.insert(0, (home, True))
            b.phones.insert(0, (home, True))
        g = self.group("twin")
        for m in (a, b):
            m.kind, m.groups = "neg:twin", [g]
        return [a, b]

    # ---- records -----------------------------------------------------------------------------------

    def record_id(self):
        # Checked against this chunk's ids only: two chunks drawing one id of 62^20 has a chance
        # of about 10^-22 at 10 M rows.
        alphabet = string.ascii_letters + string.digits
        while True:
            rid = "".join(self.rng.choice(alphabet) for _ in range(20))   # GHL-style contact id
            if rid not in self.used_ids:
                self.used_ids.add(rid)
                return rid

    def phone_style(self, source, p: Phone):
        if source in MACHINE_SOURCES and self.rng.random() < 0.85:
            return "e164"
        return wpick(self.rng, phone_styles(p))

    def set_phone(self, rec, p: Optional[Phone], shared=False, style=None, office=False):
        if p is None:
            rec.update(phone="", _phone=None, _style=None, _phone_shared=False)
            return
        style = style or self.phone_style(rec["source"], p)
        text = render_phone(p, style)
        if office and self.rng.random() < 0.12:   # the front desk's extension
            text += self.rng.choice([" ext. ", " x", " ext "]) + str(self.rng.randint(2, 340))
        rec.update(phone=text, _phone=p, _style=style, _phone_shared=shared)

    def set_email(self, rec, addr: str, shared=False):
        rec.update(email=addr, _email_key=email_key(addr) if addr else None, _email_shared=shared)

    def render_names(self, e: Entity):
        first, last = e.known_as or e.first, e.last
        if e.suffix:
            if e.suffix_style == "first":
                first = f"{first} {e.suffix}"
            else:
                sep = ", " if e.suffix_style == "last_comma" else " "
                suf = e.suffix.rstrip(".") if e.suffix_style == "last_nodot" else e.suffix
                last = f"{last}{sep}{suf}"
        if not e.accents:
            first, last = fold(first), fold(last)
        return first, last

    def stamp(self, rec, base_date=None):
        rng = self.rng
        if base_date is None:
            t = rng.uniform(1609459200, 1759190400)   # 2021-01-01 .. 2025-09-30
        else:
            t = base_date + rng.uniform(-600, 600) * 86400
            if not 1577836800 <= t <= 1759190400:   # 2020-01-01 .. 2025-09-30
                t = rng.uniform(1577836800, 1759190400)
        rec["_t"] = t
        rec["date_updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        k = rng.choices([0, 1, 2, 3], [30, 35, 25, 10])[0]
        rec["tags"] = ",".join(rng.sample(TAGS, k))

    def base_record(self, e: Entity) -> dict:
        rng = self.rng
        first, last = self.render_names(e)
        case = rng.random()
        if case < 0.05:
            first, last = first.lower(), last.lower()
        elif case < 0.08:
            first, last = first.upper(), last.upper()
        rec = {"first_name": first, "last_name": last, "source": wpick(rng, SOURCES)}
        r = rng.random()
        has_email, has_phone = (True, True) if r < 0.72 else (True, False) if r < 0.88 else (False, True)
        self.set_email(rec, e.emails[0][0] if has_email else "", e.emails[0][1])
        p, shared = e.phones[0]
        self.set_phone(rec, p if has_phone else None, shared,
                       office=e.company is not None and p == e.company.phone)
        rec["company"] = e.company.display(rng) if e.company and rng.random() < 0.85 else ""
        has_city = rng.random() < 0.8
        rec["_city"] = e.city
        rec["city"] = e.city.name if has_city else ""
        pc = e.postcode
        if e.country in ("GB", "CA"):
            pc = wpick(rng, {pc: 82, pc.replace(" ", ""): 13, pc.lower(): 5})
        rec["postal_code"] = pc if rng.random() < (0.75 if has_city else 0.3) else ""
        country = wpick(rng, COUNTRY_NAMES[e.country])
        if e.country == "GB" and country == "England" and e.city.region != "England":
            country = e.city.region
        rec["country"] = country if rng.random() < 0.75 else ""
        self.stamp(rec)
        return rec

    # Variations a duplicate record can carry, with how often each is its main one.
    PRIMARY = {
        "exact": 6, "nickname": 10, "typo": 9, "spelling": 3, "case": 4, "whitespace": 3,
        "accent": 6, "name_swap": 4, "full_name_in_first": 4, "middle_initial": 4,
        "surname_change": 4, "punctuation": 4, "email_case": 3, "email_alias": 4, "email_typo": 3,
        "other_email": 8, "phone_format": 7, "phone_missing": 4, "email_missing": 4,
        "new_phone": 3, "moved": 3, "contacts_changed": 4, "city_variant": 3, "postcode_missing": 2,
        "postcode_format": 2, "company_variant": 3, "sparse": 4, "phone_only": 2, "email_only": 2,
    }
    # Incidental noise on top of the main variation.
    SECONDARY = {"case": 3, "whitespace": 2, "phone_format": 4, "email_case": 2, "city_variant": 2,
                 "postcode_missing": 3, "postcode_format": 1, "company_variant": 2,
                 "email_missing": 2, "phone_missing": 2, "typo": 1}
    STANDALONE = {"exact", "sparse", "phone_only", "email_only"}

    def dup_record(self, e: Entity, base: dict):
        """A later record of the same person: the first one re-entered through another source, with
        one main variation and sometimes incidental noise. A duplicate keeps the first record's
        email or phone (in some spelling), except a `contacts_changed` one, which keeps the full
        name and the postcode or the company instead: with less, the truth itself would be a
        guess."""
        rng = self.rng
        for _ in range(30):
            rec = dict(base)
            rec["source"] = wpick(rng, SOURCES)
            tags = rec["tags"]
            self.stamp(rec, base["_t"])
            if rng.random() < 0.5:
                rec["tags"] = tags
            weights = dict(self.PRIMARY)
            weights["surname_change"] *= 1.0 if e.sex == "F" else 0.15
            applied = []
            while weights and not applied:
                v = wpick(rng, weights)
                del weights[v]
                if getattr(self, "v_" + v)(rec, e, base):
                    applied.append(v)
            if not applied:
                continue
            if applied[0] not in self.STANDALONE:
                extra = dict(self.SECONDARY)
                extra.pop(applied[0], None)
                for p in (0.45, 0.2):
                    if rng.random() >= p or not extra:
                        break
                    v = wpick(rng, extra)
                    del extra[v]
                    if getattr(self, "v_" + v)(rec, e, base):
                        applied.append(v)
            keeps_email = bool(rec["email"]) and rec["_email_key"] == base["_email_key"]
            keeps_phone = bool(rec["phone"]) and rec["_phone"] == base["_phone"]
            keeps_name_and_place = (applied[0] == "contacts_changed"
                                    and rec["first_name"].strip() and rec["last_name"].strip()
                                    and (rec["postal_code"] or rec["company"]))
            if keeps_email or keeps_phone or keeps_name_and_place:
                return rec, applied
        rec = dict(base)
        self.stamp(rec, base["_t"])
        return rec, ["exact"]

    # Each variation returns False when it does not apply to this record.

    def v_exact(self, rec, e, base):
        return True

    def v_nickname(self, rec, e, base):
        nicks = NICKNAMES.get(e.first)
        cur = rec["first_name"].strip()
        if not nicks or not cur:
            return False
        opts = [n for n in [e.first] + nicks if fold(n).lower() != fold(cur).lower()]
        new = self.rng.choice(opts)
        rec["first_name"] = match_case(new if e.accents else fold(new), cur)
        return True

    def v_typo(self, rec, e, base):
        fields = [f for f in ("first_name", "last_name") if len(rec[f].strip()) >= 3]
        if not fields:
            return False
        f = self.rng.choice(fields)
        out = typo(self.rng, rec[f])
        if out is None:
            return False
        rec[f] = out
        return True

    def v_spelling(self, rec, e, base):
        fields = [f for f in ("first_name", "last_name")
                  if fold(rec[f].strip()).lower() in SPELLING_OF]
        if not fields:
            return False
        f = self.rng.choice(fields)
        cur = rec[f].strip()
        rec[f] = match_case(self.rng.choice(SPELLING_OF[fold(cur).lower()]), cur)
        return True

    def v_case(self, rec, e, base):
        names = rec["first_name"] + rec["last_name"]
        if not names.strip():
            return False
        if names.isupper() or names.islower():
            conv = str.title
        else:
            conv = str.upper if self.rng.random() < 0.5 else str.lower
        for f in ("first_name", "last_name") if self.rng.random() < 0.8 else (self.rng.choice(["first_name", "last_name"]),):
            rec[f] = conv(rec[f])
        if self.rng.random() < 0.2 and rec["city"]:
            rec["city"] = conv(rec["city"])
        return rec["first_name"] + rec["last_name"] != names

    def v_whitespace(self, rec, e, base):
        rng = self.rng
        before = (rec["first_name"], rec["last_name"])
        if not "".join(before).strip():
            return False
        for _ in range(rng.choice([1, 1, 2])):
            f = rng.choice(["first_name", "last_name"])
            if not rec[f]:
                continue
            how = rng.choice(["lead", "trail", "trail", "double", "nbsp"])
            if how == "lead":
                rec[f] = " " + rec[f]
            elif how == "trail":
                rec[f] = rec[f] + rng.choice([" ", "  "])
            elif how == "double" and " " in rec[f].strip():
                rec[f] = rec[f].replace(" ", "  ", 1)
            elif how == "nbsp":   # pasted from a web page or a PDF
                rec[f] = rec[f] + "\u00a0"
            else:
                rec[f] = rec[f] + " "
        return (rec["first_name"], rec["last_name"]) != before

    def v_accent(self, rec, e, base):
        changed = False
        for f in ("first_name", "last_name"):
            cur = rec[f]
            if fold(cur) != cur:
                rec[f] = fold(cur)
            else:
                rec[f] = re.sub(r"[^\W\d_]+",
                                lambda m: match_case(ACCENTED.get(m.group().lower(), m.group()), m.group()),
                                cur)
            changed |= rec[f] != cur
        return changed

    def v_name_swap(self, rec, e, base):
        if not (rec["first_name"].strip() and rec["last_name"].strip()):
            return False
        rec["first_name"], rec["last_name"] = rec["last_name"], rec["first_name"]
        return True

    def v_full_name_in_first(self, rec, e, base):
        f, l = rec["first_name"].strip(), rec["last_name"].strip()
        if not (f and l):
            return False
        rec["first_name"] = f"{l}, {f}" if self.rng.random() < 0.15 else f"{f} {l}"
        rec["last_name"] = ""
        return True

    def v_middle_initial(self, rec, e, base):
        f = rec["first_name"].strip()
        if not f or " " in f:
            return False
        if not e.middle:   # a middle name the first record never showed
            e.middle = self.given(e.origin, e.sex)
        m = fold(e.middle) if not e.accents else e.middle
        form = wpick(self.rng, {f"{f} {m[0]}.": 60, f"{f} {m[0]}": 25, f"{f} {m}": 15})
        rec["first_name"] = match_case(form, f)
        return True

    def v_surname_change(self, rec, e, base):
        cur = rec["last_name"].strip()
        if not cur:
            return False
        if not e.married:
            new = self.surname(e.country, e.origin)
            while fold(new) == fold(e.last):
                new = self.surname(e.country, e.origin)
            old = fold(e.last) if not e.accents else e.last
            new = fold(new) if not e.accents else new
            joiner = " " if e.origin == "hispanic" and self.rng.random() < 0.5 else "-"
            e.married = wpick(self.rng, {new: 55, f"{old}{joiner}{new}": 30, f"{new}-{old}": 15})
        rec["last_name"] = match_case(e.married, cur)
        return True

    def v_punctuation(self, rec, e, base):
        rng = self.rng
        for f in rng.sample(["first_name", "last_name"], 2):
            cur = rec[f]
            if "'" in cur:
                rec[f] = cur.replace("'", rng.choice(["", " ", "’"]))
            elif "-" in cur:
                rec[f] = cur.replace("-", rng.choice([" ", ""]))
            elif re.match(r"^(Mc|Mac)[A-Z]", cur.strip()):
                rec[f] = re.sub(r"^(Mc|Mac)", lambda m: m.group() + " ", cur.strip())
            elif re.search(r"\w \w", cur.strip()):
                rec[f] = cur.replace(" ", "-", 1)
            if rec[f] != cur:
                return True
        return False

    def v_email_case(self, rec, e, base):
        addr = rec["email"]
        if not addr:
            return False
        local, _, domain = addr.partition("@")
        how = self.rng.random()
        if how < 0.3:
            new = addr.upper()
        elif how < 0.8:
            new = ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
        else:
            new = local + "@" + domain.capitalize()
        rec["email"] = new
        return new != addr

    def v_email_alias(self, rec, e, base):
        """Gmail dots, googlemail.com, +tags: other spellings of the same mailbox."""
        rng = self.rng
        addr = rec["email"]
        if not addr:
            return False
        local, _, domain = addr.partition("@")
        tag = "+" + rng.choice(["crm", "news", "fb", "leads", "promo", "2024", "shop"])
        if domain in ("gmail.com", "googlemail.com"):
            how = rng.random()
            if how < 0.5 and "." in local:
                local = local.replace(".", "")
            elif how < 0.5 and len(local) > 3:
                i = rng.randint(1, len(local) - 1)
                local = local[:i] + "." + local[i:]
            elif how < 0.65:
                domain = "googlemail.com" if domain == "gmail.com" else "gmail.com"
            else:
                local += tag
        else:
            local += tag
        rec["email"] = f"{local}@{domain}"
        return rec["email"] != addr

    def v_email_typo(self, rec, e, base):
        rng = self.rng
        addr = rec["email"]
        if not addr or rec["_email_shared"]:
            return False
        local, _, domain = addr.partition("@")
        for _ in range(5):
            if domain in DOMAIN_TYPOS and rng.random() < 0.6:
                new = f"{local}@{rng.choice(DOMAIN_TYPOS[domain])}"
            else:
                t = typo(rng, local)
                new = f"{t}@{domain}" if t else None
            if new and email_key(new) not in self.used_emails:
                self.used_emails.add(email_key(new))
                self.set_email(rec, new)
                return True
        return False

    def v_other_email(self, rec, e, base):
        """Work address vs personal one, or an old account: same phone, different mailbox."""
        if not rec["phone"]:
            return False
        others = [(a, s) for a, s in e.emails if email_key(a) != rec["_email_key"]]
        if not others or self.rng.random() < 0.3:
            if e.company and self.rng.random() < 0.5:
                new = (self.work_email(e, e.company), False)
            else:
                new = (self.personal_email(e), False)
            e.emails.append(new)
            others.append(new)
        self.set_email(rec, *self.rng.choice(others))
        return True

    def v_phone_format(self, rec, e, base):
        p = rec["_phone"]
        if not p:
            return False
        styles = {s: w for s, w in phone_styles(p).items() if s != rec["_style"]}
        self.set_phone(rec, p, rec["_phone_shared"], wpick(self.rng, styles))
        return True

    def v_phone_missing(self, rec, e, base):
        if not (rec["phone"] and rec["email"]):
            return False
        self.set_phone(rec, None)
        return True

    def v_email_missing(self, rec, e, base):
        if not (rec["phone"] and rec["email"]):
            return False
        self.set_email(rec, "")
        return True

    def v_new_phone(self, rec, e, base):
        if not rec["email"]:
            return False
        p = self.phone(rec["_city"])
        e.phones.append((p, False))
        self.set_phone(rec, p)
        return True

    def v_moved(self, rec, e, base):
        """Moved to another city; the mailbox (and often the mobile) came along."""
        if not rec["email"]:
            return False
        city = self.city(e.country, other_than=e.city)
        rec["_city"] = city
        rec["city"] = city.name
        rec["postal_code"] = self.postcode(city) if rec["postal_code"] or self.rng.random() < 0.5 else ""
        if self.rng.random() < 0.35 or (rec["_phone"] and not rec["_phone"].mobile):
            p = self.phone(city)
            e.phones.append((p, False))
            self.set_phone(rec, p)
        return True

    def v_contacts_changed(self, rec, e, base):
        """Both ways to reach the person differ: a business card from a trade show (work address,
        office line) against a web form (personal address, mobile), or a new job and a new phone.
        Only the name and the place or the company tie the records together."""
        if not (rec["first_name"].strip() and rec["last_name"].strip()
                and (rec["postal_code"] or rec["company"])):
            return False
        if e.company and not rec["email"].endswith("@" + e.company.domain):
            new = (self.work_email(e, e.company), False)
        else:
            new = (self.personal_email(e), False)
        e.emails.append(new)
        self.set_email(rec, *new)
        p = self.phone(rec["_city"])
        e.phones.append((p, False))
        self.set_phone(rec, p)
        return True

    def v_city_variant(self, rec, e, base):
        cur = rec["city"]
        if not cur:
            return False
        name = rec["_city"].name
        opts = [v for v in CITY_VARIANTS.get(name, []) if v != cur]
        if fold(name) != name:
            opts.append(fold(name))
        r = self.rng.random()
        if opts and r < 0.7:
            rec["city"] = self.rng.choice(opts)
        elif r < 0.85:
            rec["city"] = typo(self.rng, cur) or cur.lower()
        else:
            rec["city"] = f"{cur}, {rec['_city'].region}" if rec["_city"].country != "GB" else cur.upper()
        return rec["city"] != cur

    def v_postcode_missing(self, rec, e, base):
        if not rec["postal_code"]:
            return False
        rec["postal_code"] = ""
        return True

    def v_postcode_format(self, rec, e, base):
        pc = rec["postal_code"]
        if not pc or e.country == "AU":
            return False
        if e.country == "US":
            if pc.startswith("0") and self.rng.random() < 0.7:
                rec["postal_code"] = pc.lstrip("0")   # a spreadsheet read it as a number
            elif len(pc) == 5:
                rec["postal_code"] = f"{pc}-{self.rng.randint(1, 9999):04d}"
            else:
                rec["postal_code"] = pc[:5]
        else:
            rec["postal_code"] = pc.replace(" ", "") if " " in pc else pc.lower()
        return rec["postal_code"] != pc

    def v_company_variant(self, rec, e, base):
        rng = self.rng
        cur = rec["company"]
        if not cur:
            return False
        suffix = next((s for s in ALL_SUFFIXES if cur.endswith(" " + s) or cur.endswith(", " + s)), "")
        stem = cur[:len(cur) - len(suffix)].rstrip(" ,") if suffix else cur
        how = rng.choice(["drop", "respell", "and", "case", "the"])
        if how == "drop" and suffix:
            new = stem
        elif how == "respell" and suffix in SUFFIX_RESPELLINGS:
            new = f"{stem} {rng.choice(SUFFIX_RESPELLINGS[suffix])}"
        elif how == "respell" and not suffix:
            new = f"{stem} {rng.choice([s for s in LEGAL_SUFFIXES[e.country] if s])}"
        elif how == "and" and ("&" in cur or " and " in cur):
            new = cur.replace("&", "and") if "&" in cur else cur.replace(" and ", " & ")
        elif how == "case":
            new = cur.upper() if not cur.isupper() else cur.title()
        else:
            new = "The " + cur if not cur.startswith("The ") else cur[4:]
        rec["company"] = new
        return new != cur

    def v_sparse(self, rec, e, base):
        """A chat widget or lead ad: a first name, maybe the last, and one way to reach them."""
        if not (rec["first_name"].strip() and (rec["email"] or rec["phone"])):
            return False
        keep_email = bool(rec["email"]) and (not rec["phone"] or self.rng.random() < 0.5)
        if keep_email:
            self.set_phone(rec, None)
        else:
            self.set_email(rec, "")
        if self.rng.random() < 0.5:
            rec["last_name"] = ""
        rec.update(company="", city="", postal_code="", country="",
                   source=self.rng.choice(["Chat Widget", "Facebook Lead Ad", "Instagram"]))
        return True

    def v_phone_only(self, rec, e, base):
        """A missed call or text from the person's own phone: the number is all there is."""
        if not rec["phone"] or rec["_phone_shared"]:
            return False
        p = rec["_phone"]
        rec.update(first_name="", last_name="", company="", city="", postal_code="", country="",
                   source=self.rng.choice(["Missed Call Text Back", "Inbound Call"]), tags="")
        self.set_email(rec, "")
        self.set_phone(rec, p, False, "e164")
        return True

    def v_email_only(self, rec, e, base):
        if not rec["email"] or rec["_email_shared"]:
            return False
        rec.update(first_name="", last_name="", company="", city="", postal_code="", country="",
                   source="Newsletter Signup")
        self.set_phone(rec, None)
        return True

    # ---- the whole data set -----------------------------------------------------------------------

    def chunks(self, n: int, chunk: int):
        """n people, yielded as lists of records of about `chunk` people each: (cells in HEADER
        order, person id, kind, variations applied, the person's groups, index of the person's full
        name). A table of at most `chunk` people is one chunk, so its output does not depend on the
        chunk size."""
        while self.people < n:
            yield self.chunk(n, chunk)

    def chunk(self, n: int, chunk: int):
        rng = self.rng
        self.entities, self.used_ids = [], set()
        # Per step, one plain person or one group of look-alikes; weights are shares of people
        # divided by group size, so about 27% of people end up in some look-alike group.
        makers = {
            "plain": (0.735, lambda: self.make_plain()),
            "household": (0.10 / 2.6, lambda: self.make_household(rng.choice([2, 2, 2, 3, 3, 4]))),
            "coworker": (0.07 / 3.2, lambda: self.make_coworkers(rng.choice([2, 2, 3, 3, 4, 5, 6]))),
            "namesake": (0.04 / 2.15, lambda: self.make_namesakes(rng.choice([2] * 6 + [3]))),
            "jr_sr": (0.02 / 2, lambda: self.make_jr_sr()),
            "twin": (0.015 / 2, lambda: self.make_twins()),
            "similar": (0.02 / 2, lambda: self.make_coworkers(2, similar=True)),
        }
        weights = {k: w for k, (w, _) in makers.items()}
        while self.people < n and len(self.entities) < chunk:
            kind = wpick(rng, weights)
            if kind != "plain" and n - self.people < 6:
                kind = "plain"   # the last few slots: do not overshoot with a group
            makers[kind][1]()

        # A record is kept as its cells (the id comes last, after the shuffle) and its truth and
        # kind; the person is let go once its records are made, which halves a chunk's memory.
        rows, entities, self.entities = [], self.entities, []
        for i, e in enumerate(entities):
            entities[i] = None
            name = (fold(e.first).lower(), fold(e.last).lower())
            seen = self.full_names.setdefault(name, [len(self.full_names), 0])
            seen[1] += 1
            groups = ";".join(e.groups)
            base = self.base_record(e)
            rows.append(([""] + [base[h] for h in HEADER[1:]], e.eid, e.kind,
                         "base" if e.kind == "base" else e.kind[4:], groups, seen[0]))
            if rng.random() < self.dup_rate:
                for _ in range(rng.choices([1, 2, 3, 4], [60, 25, 10, 5])[0]):
                    rec, applied = self.dup_record(e, base)
                    rows.append(([""] + [rec[h] for h in HEADER[1:]], e.eid, "dup:" + applied[0],
                                 "+".join(applied), groups, seen[0]))
        rng.shuffle(rows)
        for row in rows:
            row[0][0] = self.record_id()
        return rows


def parse_countries(text: str) -> dict:
    out = {}
    for part in text.split(","):
        cc, _, w = part.partition("=")
        cc = cc.strip().upper()
        if cc == "UK":
            cc = "GB"
        if cc not in CITIES:
            sys.exit(f"unknown country {cc!r}: use US, GB, CA, AU")
        out[cc] = float(w or 1)
    return out


def generate(out: Path, entities: int, seed: int, countries: dict, dup_rate: float, quiet=False,
             chunk: int = 1_000_000):
    """Writes data.csv, truth.csv and kinds.csv a chunk of `chunk` people at a time: memory stays
    that of one chunk (about 2 GiB for a million people) plus the unique phones, mailboxes and
    domains (under 100 bytes each), whatever the size of the table."""
    gen = Generator(seed, countries, dup_rate)
    out.mkdir(parents=True, exist_ok=True)
    kinds, true_pairs, records = Counter(), 0, 0
    # kinds.csv waits for the namesake groups, known only once every person is made: its rows go
    # to a scratch file first, with the index of the person's full name.
    with open(out / "data.csv", "w", newline="", encoding="utf-8") as data_f, \
            open(out / "truth.csv", "w", newline="", encoding="utf-8") as truth_f, \
            open(out / "kinds.tmp", "w", newline="", encoding="utf-8") as kinds_f:
        data, truth, kinds_w = (csv.writer(f, lineterminator="\n") for f in (data_f, truth_f, kinds_f))
        data.writerow(HEADER)
        truth.writerow(["id", "entity_id"])
        for rows in gen.chunks(entities, chunk):
            for cells, eid, kind, applied, groups, name in rows:
                data.writerow(cells)
                truth.writerow([cells[0], eid])
                kinds_w.writerow([cells[0], kind, applied, groups, name])
            records += len(rows)
            kinds.update(row[2] for row in rows)
            # A person's records are all in one chunk.
            true_pairs += sum(n * (n - 1) // 2 for n in Counter(row[1] for row in rows).values())
            if not quiet and entities > chunk:
                print(f"  {gen.people:,} of {entities:,} people", file=sys.stderr)
            del rows   # or the loop holds this chunk while the next one is made
    # Every set of people sharing a full name is a namesake group, made on purpose or not; groups
    # are numbered in the order their name first appears.
    namesake, seq = {}, 0
    for index, count in sorted(gen.full_names.values()):
        if count > 1:
            seq += 1
            namesake[str(index)] = f"namesake:{seq}"
    gen.full_names = {}
    with open(out / "kinds.tmp", newline="", encoding="utf-8") as src, \
            open(out / "kinds.csv", "w", newline="", encoding="utf-8") as dst:
        w = csv.writer(dst, lineterminator="\n")
        w.writerow(["id", "kind", "variations", "groups"])
        for rid, kind, applied, groups, name in csv.reader(src):
            if name in namesake:
                groups = f"{groups};{namesake[name]}" if groups else namesake[name]
            w.writerow([rid, kind, applied, groups])
    (out / "kinds.tmp").unlink()
    if not quiet:
        print(f"{records} records of {gen.people} people, {true_pairs} true pairs -> {out}")
        print("  " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    return records


# ================================================================================================
# Scoring


def read_rows(path: Path) -> list:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def c2(n: int) -> int:
    return n * (n - 1) // 2


# When two wrongly merged people are related in several ways, the most specific relation counts.
RELATION_OF_GROUP = {"jr_sr": "jr_sr", "twin": "twin", "household": "household",
                     "similar": "similar_coworker", "company": "coworker", "namesake": "namesake"}
RELATION_RANK = {r: i for i, r in enumerate(
    ["jr_sr", "twin", "household", "similar_coworker", "coworker", "namesake"])}


def score(truth: dict, pred: dict, kinds: Optional[dict] = None, examples: int = 15) -> dict:
    """Pairwise precision/recall/F1 of `pred` ({id: (cluster, probability)}) against `truth`
    ({id: entity}), from cluster sizes, never from the list of pairs; with `kinds` (the
    generator's kinds.csv rows by id) also where the errors come from."""
    cluster = {i: pred[i][0] if i in pred else "\0missing\0" + i for i in truth}
    joint = Counter((truth[i], cluster[i]) for i in truth)
    true_pairs = sum(c2(n) for n in Counter(truth.values()).values())
    pred_pairs = sum(c2(n) for n in Counter(cluster.values()).values())
    tp = sum(c2(n) for n in joint.values())
    precision = tp / pred_pairs if pred_pairs else None
    recall = tp / true_pairs if true_pairs else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    m = {
        "records": len(truth), "entities": len(set(truth.values())),
        "predicted_clusters": len(set(cluster.values())),
        "true_pairs": true_pairs, "predicted_pairs": pred_pairs,
        "tp": tp, "fp": pred_pairs - tp, "fn": true_pairs - tp,
        "precision": precision, "recall": recall, "f1": f1,
        "ids_missing_from_pred": sum(1 for i in truth if i not in pred),
        "ids_not_in_truth": sum(1 for i in pred if i not in truth),
    }
    if not kinds:
        return m
    kind = {i: kinds[i]["kind"] if i in kinds else "?" for i in truth}
    variations = {i: [v for v in kinds[i]["variations"].split("+") if v] if i in kinds else []
                  for i in truth}
    members, by_cluster = defaultdict(list), defaultdict(list)
    for i in truth:
        members[truth[i]].append(i)
        by_cluster[cluster[i]].append(i)

    # Recall per kind of duplicate: each true pair counts for the kind of each duplicate record in
    # it (a duplicate of a duplicate counts for both), and for each variation they carry.
    by_kind, by_var = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    fn_pairs = []
    for ids in members.values():
        for a, b in combinations(ids, 2):
            same = cluster[a] == cluster[b]
            dups = [x for x in (a, b) if kind[x].startswith("dup:")] or [a, b]
            for k in {kind[x] for x in dups}:
                by_kind[k][0] += 1
                by_kind[k][1] += same
            for v in {v for x in dups for v in variations[x]}:
                by_var[v][0] += 1
                by_var[v][1] += same
            if not same:
                fn_pairs.append((a, b))

    # False positives per kind of record, counted per cluster: a record's wrong partners are the
    # cluster's records of other people; pairs of two records of the kind are then counted twice.
    fp_kind, fp_records, n_kind = Counter(), Counter(), Counter(kind.values())
    for ids in by_cluster.values():
        if len(ids) < 2:
            continue
        per_ent = Counter(truth[i] for i in ids)
        if len(per_ent) < 2:
            continue
        kc, sq = Counter(), Counter()
        for i in ids:
            wrong = len(ids) - per_ent[truth[i]]
            fp_kind[kind[i]] += wrong
            fp_records[kind[i]] += wrong > 0
            kc[kind[i]] += 1
        for (k, e), n in Counter((kind[i], truth[i]) for i in ids).items():
            sq[k] += n * n
        for k, n in kc.items():
            fp_kind[k] -= (n * n - sq[k]) // 2

    # False positives per relation between the two people, from the groups they share.
    ent_groups = {}
    for i in truth:
        if i in kinds and truth[i] not in ent_groups:
            ent_groups[truth[i]] = [g for g in kinds[i]["groups"].split(";") if g]
    group_members = defaultdict(list)
    for e, gs in ent_groups.items():
        for g in gs:
            group_members[g].append(e)
    relation = {}
    for g, es in group_members.items():
        rel = RELATION_OF_GROUP.get(g.split(":")[0], g.split(":")[0])
        for a, b in combinations(sorted(es), 2):
            if (a, b) not in relation or RELATION_RANK.get(rel, 99) < RELATION_RANK.get(relation[(a, b)], 99):
                relation[(a, b)] = rel
    ent_clusters = defaultdict(Counter)
    for i in truth:
        ent_clusters[truth[i]][cluster[i]] += 1
    by_rel = defaultdict(lambda: [0, 0, 0])   # related people pairs, of them merged, FP record pairs
    for (a, b), rel in relation.items():
        ca, cb = ent_clusters[a], ent_clusters[b]
        x = sum(n * cb.get(c, 0) for c, n in ca.items())
        by_rel[rel][0] += 1
        by_rel[rel][1] += x > 0
        by_rel[rel][2] += x
    related_fp = sum(v[2] for v in by_rel.values())
    by_rel["unrelated"] = [None, None, m["fp"] - related_fp]

    m["recall_by_kind"] = {k: {"true_pairs": n, "found": f, "missed": n - f, "recall": f / n}
                           for k, (n, f) in sorted(by_kind.items(), key=lambda x: (x[1][1] / x[1][0], x[0]))}
    m["recall_by_variation"] = {k: {"true_pairs": n, "found": f, "missed": n - f, "recall": f / n}
                                for k, (n, f) in sorted(by_var.items(), key=lambda x: (x[1][1] / x[1][0], x[0]))}
    m["fp_by_kind"] = {k: {"records": n_kind[k], "records_wrongly_merged": fp_records[k],
                           "fp_pairs": fp_kind[k]}
                       for k in sorted(n_kind, key=lambda k: (-fp_kind[k], k))}
    m["fp_by_relation"] = {r: {"people_pairs": v[0], "merged": v[1], "fp_pairs": v[2]}
                           for r, v in sorted(by_rel.items(), key=lambda x: -x[1][2])}

    # Examples, spread over kinds (FN) and relations (FP) instead of the most frequent one only.
    rng = random.Random(0)
    fn_buckets = defaultdict(list)
    for a, b in fn_pairs:
        k = "+".join(sorted({kind[x] for x in (a, b) if kind[x].startswith("dup:")}))
        fn_buckets[k].append((a, b))
    fp_buckets, seen = defaultdict(list), 0
    for ids in by_cluster.values():
        firsts = {}
        for i in ids:
            firsts.setdefault(truth[i], i)
        if len(firsts) < 2:
            continue
        for ea, eb in islice(combinations(sorted(firsts), 2), 20):
            fp_buckets[relation.get((ea, eb), "unrelated")].append((firsts[ea], firsts[eb]))
            seen += 1
        if seen > 5000:
            break
    m["examples"] = {"fp": _spread(rng, fp_buckets, examples), "fn": _spread(rng, fn_buckets, examples)}
    return m


def _spread(rng, buckets: dict, n: int) -> list:
    """Up to n items, round-robin over the buckets, largest bucket first."""
    order = sorted(buckets, key=lambda k: (-len(buckets[k]), k))
    pools = {k: rng.sample(buckets[k], min(len(buckets[k]), n)) for k in order}
    out = []
    while len(out) < n and any(pools.values()):
        for k in order:
            if pools[k] and len(out) < n:
                out.append((k, *pools[k].pop()))
    return out


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def show_record(r: dict) -> str:
    def cell(v):
        if v is None or v == "":
            return "-"
        return repr(v) if v != v.strip() or "  " in v or "\u00a0" in v else v
    return " | ".join([f"{cell(r.get('first_name'))} / {cell(r.get('last_name'))}", cell(r.get("email")),
                       cell(r.get("phone")), cell(r.get("company")),
                       " ".join(cell(r.get(k)) for k in ("city", "postal_code", "country"))])


def report(m: dict, rows: Optional[dict] = None, kinds: Optional[dict] = None,
           pred: Optional[dict] = None, truth: Optional[dict] = None):
    print(f"records {m['records']}, people {m['entities']}, predicted clusters {m['predicted_clusters']}")
    print(f"true pairs {m['true_pairs']}, predicted pairs {m['predicted_pairs']}: "
          f"TP {m['tp']}, FP {m['fp']}, FN {m['fn']}")
    print(f"precision {_fmt(m['precision'])}  recall {_fmt(m['recall'])}  F1 {_fmt(m['f1'])}")
    if m["ids_missing_from_pred"] or m["ids_not_in_truth"]:
        print(f"warning: {m['ids_missing_from_pred']} ids missing from the prediction (taken as "
              f"singletons), {m['ids_not_in_truth']} predicted ids not in the truth (ignored)")
    if "recall_by_kind" not in m:
        return

    print("\nRecall by kind of duplicate record (a pair of two duplicates counts for both):")
    print(f"  {'kind':<28}{'pairs':>7}{'found':>7}{'missed':>8}{'recall':>8}")
    for k, v in m["recall_by_kind"].items():
        print(f"  {k:<28}{v['true_pairs']:>7}{v['found']:>7}{v['missed']:>8}{v['recall']:>8.3f}")
    print("\nRecall by variation present in the pair (main or incidental):")
    for k, v in m["recall_by_variation"].items():
        print(f"  {k:<28}{v['true_pairs']:>7}{v['found']:>7}{v['missed']:>8}{v['recall']:>8.3f}")

    print("\nFalse positives by kind of record (a wrong pair counts for the kinds of both records):")
    print(f"  {'kind':<28}{'records':>8}{'wrongly merged':>16}{'FP pairs':>10}")
    for k, v in m["fp_by_kind"].items():
        if v["fp_pairs"] or k.startswith("neg:"):
            print(f"  {k:<28}{v['records']:>8}{v['records_wrongly_merged']:>16}{v['fp_pairs']:>10}")
    print("\nFalse positives by relation between the two people (each wrong pair counted once):")
    print(f"  {'relation':<28}{'people pairs':>13}{'merged':>8}{'FP pairs':>10}")
    for r, v in m["fp_by_relation"].items():
        pp = "" if v["people_pairs"] is None else v["people_pairs"]
        mg = "" if v["merged"] is None else v["merged"]
        print(f"  {r:<28}{pp:>13}{mg:>8}{v['fp_pairs']:>10}")

    if not rows:
        return

    def prob(i):
        p = pred.get(i, (None, ""))[1] if pred else ""
        return p or "-"

    for title, key in (("False positives (different people, one cluster)", "fp"),
                       ("False negatives (one person, different clusters)", "fn")):
        ex = m["examples"][key]
        if not ex:
            continue
        print(f"\n{title}, {len(ex)} examples:")
        for label, a, b in ex:
            print(f"  [{label}]")
            for i in (a, b):
                k = kinds.get(i, {}) if kinds else {}
                print(f"    {i[:8]} {truth[i]} {k.get('variations', ''):<26} p={prob(i)} "
                      f"cl={pred[i][0][:10] if pred and i in pred else '-'}")
                print(f"        {show_record(rows[i])}")


def load_and_score(truth_path: Path, pred_path: Path, kinds_path=None, data_path=None,
                   json_path=None, examples=15):
    truth = {r["id"]: r["entity_id"] for r in read_rows(truth_path)}
    pred = {r["id"]: (r["cluster_id"], r.get("match_probability", "")) for r in read_rows(pred_path)}
    kinds_path = Path(kinds_path) if kinds_path else truth_path.parent / "kinds.csv"
    data_path = Path(data_path) if data_path else truth_path.parent / "data.csv"
    kinds = {r["id"]: r for r in read_rows(kinds_path)} if kinds_path.exists() else None
    rows = {r["id"]: r for r in read_rows(data_path)} if data_path.exists() else None
    m = score(truth, pred, kinds, examples)
    report(m, rows, kinds, pred, truth)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(m, indent=2) + "\n")
        print(f"\nmetrics -> {json_path}")
    return m


# ================================================================================================
# Command line


def default_bin() -> Path:
    release = REPO / "target" / "release" / "contactsync"
    return release if release.exists() else REPO / "target" / "debug" / "contactsync"


def cmd_generate(a):
    generate(Path(a.out), a.entities, a.seed, parse_countries(a.countries), a.dup_rate,
             chunk=a.chunk)


def cmd_score(a):
    load_and_score(Path(a.truth), Path(a.pred), a.kinds, a.data, a.json, a.examples)


def cmd_run(a):
    binary = Path(a.bin) if a.bin else default_bin()
    if not binary.exists():
        sys.exit(f"no binary at {binary}: build it first (this script never builds)")
    work = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="holdout-"))
    try:
        generate(work, a.entities, a.seed, parse_countries(a.countries), a.dup_rate,
                 chunk=a.chunk)
        cmd = [str(binary), "dedupe", "--input", str(work / "data.csv"), "--model", str(a.model),
               "--out", str(work / "assign.csv")]
        if a.region:
            cmd += ["--region", a.region]
        print("$ " + " ".join(cmd))
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            sys.exit(f"contactsync dedupe failed with exit code {proc.returncode}")
        print(f"dedupe took {seconds:.1f} s\n")
        m = load_and_score(work / "truth.csv", work / "assign.csv", examples=a.examples)
        if a.json:
            m["seconds"] = round(seconds, 2)
            m["run"] = {"bin": str(binary), "model": str(a.model), "entities": a.entities,
                        "seed": a.seed, "countries": a.countries, "dup_rate": a.dup_rate}
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(m, indent=2) + "\n")
            print(f"\nmetrics -> {a.json}")
    finally:
        if not a.out and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif not a.out:
            print(f"\nkept {work}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "generate")   # `holdout.py --entities N` generates
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def gen_opts(sp):
        sp.add_argument("--entities", type=int, default=3000, help="people to generate (default 3000)")
        sp.add_argument("--seed", type=int, default=1)
        sp.add_argument("--countries", default="US=65,GB=15,CA=10,AU=10",
                        help="country mix, CC=weight,... (default US=65,GB=15,CA=10,AU=10)")
        sp.add_argument("--dup-rate", type=float, default=0.30,
                        help="share of people with 1 to 4 extra records (default 0.30)")
        sp.add_argument("--chunk", type=int, default=1_000_000,
                        help="people made and written at a time (default 1,000,000: about 2 GiB; "
                             "a table of at most this many people does not depend on it)")

    g = sub.add_parser("generate", help="write data.csv, truth.csv and kinds.csv")
    gen_opts(g)
    g.add_argument("--out", default=str(REPO / "bench-output" / "holdout"))
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("score", help="score a dedupe result (id,cluster_id,match_probability)")
    s.add_argument("--truth", required=True)
    s.add_argument("--pred", required=True)
    s.add_argument("--kinds", help="default: kinds.csv next to the truth")
    s.add_argument("--data", help="default: data.csv next to the truth (for the examples)")
    s.add_argument("--json", help="also write the metrics here")
    s.add_argument("--examples", type=int, default=15, help="FP and FN examples to print")
    s.set_defaults(func=cmd_score)

    r = sub.add_parser("run", help="generate into a temporary directory, dedupe, score")
    gen_opts(r)
    r.add_argument("--bin", help="contactsync binary (default target/release, else target/debug)")
    r.add_argument("--model", default=str(REPO / "pipelines" / "models" / "contacts.toml"))
    r.add_argument("--region", help="passed to dedupe --region (its default: US)")
    r.add_argument("--out", help="work directory to use and keep instead of a temporary one")
    r.add_argument("--keep", action="store_true", help="keep the temporary directory")
    r.add_argument("--json", help="also write the metrics here")
    r.add_argument("--examples", type=int, default=15)
    r.set_defaults(func=cmd_run)

    a = p.parse_args(argv)
    a.func(a)


if __name__ == "__main__":
    main()
