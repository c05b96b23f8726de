"""Deterministic synthetic staffing data: workers, candidates, job orders, placements.

Everything is vectorised (numpy draws + pyarrow.compute string ops) so 500K workers
take a couple of seconds. The same seed always yields identical tables.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

FIRST_NAMES = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony
Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin
Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca Jason Sharon Edward Laura Jeffrey Cynthia
Ryan Dorothy Jacob Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Emma Stephen Brenda Larry Pamela
Justin Nicole Scott Anna Brandon Samantha Benjamin Katherine Samuel Christine Gregory Debra Alexander Rachel
Patrick Carolyn Frank Janet Raymond Maria Jack Olivia Dennis Heather Jerry Helen Tyler Catherine Aaron Diane
Jose Julie Adam Victoria Nathan Joyce Henry Lauren Zachary Kelly Douglas Christina Peter Ruth Kyle Joan Noah
Virginia Ethan Judith Jeremy Evelyn Christian Hannah Walter Andrea Keith Megan Austin Cheryl Roger Jacqueline
Terry Madison Sean Teresa Gerald Abigail Carl Sophia Dylan Martha Harold Sara Jordan Gloria Jesse Janice Bryan
Kathryn Lawrence Ann Arthur Isabella Gabriel Judy Bruce Charlotte Logan Julia Billy Grace Joe Amber Alan Alice
Juan Jean Elijah Denise Willie Frances Albert Danielle Wayne Marilyn Randy Natalie Mason Beverly Vincent Diana
Liam Brittany Roy Theresa Bobby Kayla Caleb Alexis Luis Carlos Miguel Rosa Ana Guadalupe Jamal Keisha DeShawn
Tamika Hector Yolanda Marcus Latoya""".split()  # noqa: SIM905 - compact on purpose
LAST_NAMES = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez
Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris
Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel
Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales
Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole
Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez
McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson
Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd
Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan
Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight
Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman
Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval Guerrero George Chapman Rios Estrada
Ortega Watkins Greene Nunez Wheeler Valdez Harper Burke Larson Santiago Maldonado Morrison Franklin Carlson Austin
Dominguez Carr Lawson Jacobs OBrien Lynch Singh Vega Bishop Montgomery Oliver Jensen Harvey Williamson Gilbert Dean
Sims Espinoza Howell Li Wong Reid Hanson Le McCoy Garrett Burton Fuller Wang Weber Welch Rojas Lucas Marquez Fields
Park Yang Little Banks Padilla Day Walsh Bowman Schultz Luna Fowler Mejia""".split()  # noqa: SIM905
CLIENTS = """Midwest Logistics Group;Prairie Cold Storage;Lakeshore Distribution;Great Lakes Fabrication;
Heartland Foods;Summit Packaging;Riverbend Manufacturing;Ironworks Precision;Keystone Freight;Northstar Plastics;
Blue River Bottling;Crossroads Fulfillment;Redline Auto Parts;Silver Creek Metals;Timberline Furniture;
Pioneer Tool & Die;Evergreen Senior Living;Harbor Point Warehousing;Central States Trucking;Oakridge Medical Center;
Brightway Electronics;Copperfield Assembly;Granite Ridge Construction;Sunrise Bakery Co.;Patriot Steel Works;
Eagle Rock Distribution;Meridian Packaging;Cornerstone Hospitality;Trident Machining;Valley Fresh Produce;
Westfield Paper Products;Frontier Rail Services;Liberty Home Health;Allied Industrial Supply;Hawthorne Hospital;
Lone Star Fulfillment;Peachtree Distribution;Magnolia Textiles;Buckeye Components;Hoosier Die Casting;
Badger State Dairy;Wolverine Stamping;Gateway Cold Chain;Twin Cities Printing;Tri-County Recycling;
Apex Polymer Solutions;Precision Gear Corp.;Canal Street Kitchens;Union Station Foods;Horizon Call Center;
Coastal Carriers;Desert Sun Solar;Smoky Mountain Mills;Lakeview Property Services;Rolling Hills Nursing;
Fairway Office Solutions;Steel City Fasteners;Quad Cities Grain;Crescent Electric Works;Red Barn Feed & Supply"""
CLIENTS = [c.strip() for c in CLIENTS.split(";")]

# state -> (relative weight, real cities); skewed towards the Midwest where the demo queries.
_STATE_SPEC = {
    "IL": (22, "Chicago,Joliet,Aurora,Naperville,Rockford,Elgin,Peoria,Springfield,Waukegan,Bolingbrook"),
    "WI": (9, "Milwaukee,Madison,Green Bay,Kenosha,Racine,Appleton,Waukesha,Oshkosh"),
    "IN": (8, "Indianapolis,Fort Wayne,Evansville,South Bend,Gary,Hammond,Lafayette,Elkhart"),
    "OH": (9, "Columbus,Cleveland,Cincinnati,Toledo,Akron,Dayton,Canton,Youngstown"),
    "MI": (8, "Detroit,Grand Rapids,Lansing,Flint,Kalamazoo,Warren,Sterling Heights,Ann Arbor"),
    "TX": (10, "Houston,Dallas,San Antonio,Fort Worth,Austin,El Paso,Laredo,Arlington"),
    "GA": (6, "Atlanta,Savannah,Augusta,Macon,Columbus,Marietta,Dalton"),
    "TN": (5, "Memphis,Nashville,Knoxville,Chattanooga,Jackson,Murfreesboro"),
    "KY": (4, "Louisville,Lexington,Bowling Green,Owensboro,Covington"),
    "MO": (5, "Kansas City,St. Louis,Springfield,Columbia,Joplin"),
    "MN": (4, "Minneapolis,St. Paul,Rochester,Duluth,Bloomington"),
    "PA": (4, "Philadelphia,Pittsburgh,Allentown,Erie,Reading,Harrisburg"),
    "NC": (3, "Charlotte,Raleigh,Greensboro,Durham,Winston-Salem"),
    "IA": (2, "Des Moines,Cedar Rapids,Davenport,Sioux City,Waterloo"),
    "AZ": (2, "Phoenix,Tucson,Mesa,Chandler,Glendale"),
}
STATES: dict[str, tuple[float, list[str]]] = {s: (w, c.split(",")) for s, (w, c) in _STATE_SPEC.items()}

# Canonical certification order; a worker's list follows it, so OSHA cards come first.
CERTS = ["OSHA-10", "OSHA-30", "Forklift", "CDL-A", "DOT Medical Card", "HAZMAT", "AWS D1.1", "NIMS Machining",
         "IPC-A-610", "Six Sigma Yellow Belt", "Six Sigma Green Belt", "EPA 608", "NFPA 70E", "BLS", "ACLS", "CPR",
         "First Aid", "ServSafe", "Food Handler", "Bloodborne Pathogens", "Microsoft Office Specialist"]
_BASE_CERT_P = {"CPR": 0.04, "First Aid": 0.05}  # anyone may hold these

# role, weight, base hourly rate, cert probabilities, four skill phrases
ROLES_SPEC = [
    ("Forklift Operator", 8, 19.5, "Forklift=.9,OSHA-10=.55,OSHA-30=.08,HAZMAT=.05",
     "sit-down and reach-truck forklifts|pallet jacks|loading and unloading trailers|cycle counts"),
    ("Warehouse Associate", 12, 17.0, "Forklift=.25,OSHA-10=.3",
     "order picking|RF scanners|inventory put-away|shipping and receiving"),
    ("Picker Packer", 9, 16.5, "OSHA-10=.2,Forklift=.08",
     "pick-to-light systems|packing to spec|RF scanners|high-volume fulfillment"),
    ("Material Handler", 7, 17.5, "Forklift=.4,OSHA-10=.35,HAZMAT=.05",
     "pallet jacks|line-side replenishment|inventory put-away|heavy lifting"),
    ("Shipping Clerk", 4, 18.0, "OSHA-10=.15,HAZMAT=.1,Forklift=.1",
     "bills of lading|WMS software|carrier scheduling|shipping and receiving"),
    ("Machine Operator", 7, 19.0, "OSHA-10=.4,Six Sigma Yellow Belt=.06",
     "injection molding|machine setup|quality checks|lockout/tagout"),
    ("Assembler", 7, 17.5, "OSHA-10=.25,IPC-A-610=.15,Six Sigma Yellow Belt=.05",
     "reading blueprints|hand and power tools|soldering|assembly line work"),
    ("CNC Machinist", 4, 26.0, "OSHA-10=.35,NIMS Machining=.35,Six Sigma Yellow Belt=.1",
     "G-code programming|Haas and Mazak mills|precision measuring|CNC lathes"),
    ("Welder", 4, 25.0, "AWS D1.1=.7,OSHA-10=.4,OSHA-30=.1",
     "MIG welding|TIG welding|stick welding|reading weld symbols"),
    ("Maintenance Technician", 3, 28.0, "OSHA-30=.3,OSHA-10=.3,EPA 608=.15,NFPA 70E=.2",
     "preventive maintenance|PLC troubleshooting|hydraulics and pneumatics|conveyor repair"),
    ("CDL Driver", 4, 27.0, "CDL-A=.95,DOT Medical Card=.8,HAZMAT=.35",
     "regional routes|ELD logs|pre-trip inspections|flatbed loads"),
    ("Quality Inspector", 3, 22.0, "Six Sigma Yellow Belt=.3,Six Sigma Green Belt=.1,OSHA-10=.2",
     "calipers and micrometers|first-article inspection|SPC charts|ISO 9001 audits"),
    ("Electrician", 2, 32.0, "NFPA 70E=.5,OSHA-30=.4,OSHA-10=.3",
     "industrial wiring|motor controls|conduit bending|troubleshooting 480V circuits"),
    ("HVAC Technician", 2, 29.0, "EPA 608=.85,OSHA-10=.3",
     "rooftop units|refrigerant recovery|commercial boilers|diagnosing airflow problems"),
    ("Customer Service Rep", 5, 17.0, "",
     "inbound call handling|CRM software|order entry|resolving billing questions"),
    ("Administrative Assistant", 4, 19.0, "Microsoft Office Specialist=.3",
     "scheduling|Excel spreadsheets|data entry|front-desk support"),
    ("Registered Nurse", 2, 42.0, "BLS=.95,ACLS=.5,CPR=.3",
     "patient assessment|medication administration|charting in Epic|wound care"),
    ("CNA", 3, 18.5, "CPR=.8,BLS=.5,First Aid=.4",
     "patient mobility|vital signs|personal care|long-term care settings"),
    ("Line Cook", 3, 17.0, "ServSafe=.6,Food Handler=.5",
     "grill and saute stations|prep work|high-volume kitchens|food safety"),
    ("Janitor", 4, 15.5, "Bloodborne Pathogens=.2,OSHA-10=.1",
     "floor care|commercial cleaning|restroom sanitation|waste handling"),
    ("Production Worker", 5, 16.5, "OSHA-10=.25",
     "assembly line work|packaging lines|quality checks|meeting production quotas"),
    ("Inventory Clerk", 3, 18.0, "Forklift=.15,OSHA-10=.15",
     "cycle counts|WMS software|inventory reconciliation|RF scanners"),
    ("Loader Unloader", 4, 17.0, "Forklift=.2,OSHA-10=.2",
     "loading and unloading trailers|heavy lifting|pallet jacks|floor-loaded containers"),
    ("Sanitation Worker", 2, 16.5, "Bloodborne Pathogens=.3,OSHA-10=.15",
     "food plant sanitation|chemical handling|equipment teardown|third-shift cleaning"),
    ("Dispatcher", 2, 21.0, "HAZMAT=.05", "route planning|radio dispatch|ELD logs|driver scheduling"),
]
ROLES = [r[0] for r in ROLES_SPEC]
AVAILABILITY = ["immediate", "2 weeks", "1 month", "unavailable"]
SOURCES = ["referral", "job board", "walk-in", "agency"]
STATUSES = ["open", "filled", "closed"]
OUTCOMES = ["completed", "active", "no-show", "terminated"]
SHIFTS = ["first", "second", "third", "weekend", "rotating"]
EXTRAS = ["Reliable transportation and a clean safety record.", "Bilingual in English and Spanish.",
          "Known for punctuality and a strong work ethic.", "Comfortable lifting up to 50 lbs.",
          "Enjoys training new hires.", "Looking for a long-term, full-time position.",
          "Open to overtime during peak season.", "Perfect attendance at the last assignment."]

_ROLE_P = np.array([r[1] for r in ROLES_SPEC], float) / sum(r[1] for r in ROLES_SPEC)
_RATE = np.array([r[2] for r in ROLES_SPEC])
_CERT_P = np.zeros((len(ROLES), len(CERTS)), np.float32)
for _i, _r in enumerate(ROLES_SPEC):
    for _name, _p in _BASE_CERT_P.items():
        _CERT_P[_i, CERTS.index(_name)] = _p
    for _kv in filter(None, _r[3].split(",")):
        _name, _p = _kv.split("=")
        _CERT_P[_i, CERTS.index(_name)] = float(_p)
_REQ_P = _CERT_P * 0.6  # job orders require a subset of the role's usual certs, never the generic ones
_REQ_P[:, [CERTS.index(c) for c in _BASE_CERT_P]] = 0
_STATE_P = np.array([w for w, _ in STATES.values()], float) / sum(w for w, _ in STATES.values())
_CITY_N = np.array([len(c) for _, c in STATES.values()])
_CITY_START = np.concatenate([[0], np.cumsum(_CITY_N)[:-1]])

_A = {k: pa.array(v, pa.string()) for k, v in {
    "first": FIRST_NAMES, "last": LAST_NAMES, "role": ROLES, "state": list(STATES),
    "city": [c for _, cs in STATES.values() for c in cs], "cert": CERTS,
    "skill": [s for r in ROLES_SPEC for s in r[4].split("|")], "client": CLIENTS, "avail": AVAILABILITY,
    "source": SOURCES, "status": STATUSES, "outcome": OUTCOMES, "shift": SHIFTS, "extra": EXTRAS}.items()}

_DAY_US = 86_400_000_000
_T0 = int(np.datetime64("2025-01-01T00:00:00", "us").astype(np.int64))
_D0 = int(np.datetime64("2025-01-01", "D").astype(np.int64))
_WORKER_SPAN_DAYS = 608  # originals end 2026-09-01 so delta updates still land inside 2026
TS = pa.timestamp("us")
STR_LIST = pa.list_(pa.string())
WORKERS_SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("role", pa.string()),
                            ("state", pa.string()), ("city", pa.string()), ("certifications", STR_LIST),
                            ("years_experience", pa.int32()), ("availability", pa.string()),
                            ("hourly_rate", pa.float64()), ("updated_at", TS)])


def _take(key: str, idx: np.ndarray) -> pa.Array:
    return _A[key].take(pa.array(idx))


def _join(*parts: object) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _choose(rng: np.random.Generator, *variants: pa.Array) -> pa.Array:
    return pc.choose(pa.array(rng.integers(0, len(variants), len(variants[0])).astype(np.int8)), *variants)


def _seconds(us: np.ndarray) -> pa.Array:
    return pa.array(us // 1_000_000 * 1_000_000, TS)  # whole seconds read better in demos


def _names(rng: np.random.Generator, n: int) -> pa.Array:
    return pc.binary_join_element_wise(_take("first", rng.integers(0, len(FIRST_NAMES), n)),
                                       _take("last", rng.integers(0, len(LAST_NAMES), n)), " ")


def _location(rng: np.random.Generator, n: int) -> tuple[pa.Array, pa.Array]:
    state = rng.choice(len(STATES), n, p=_STATE_P)
    # squaring skews towards the first (biggest) city of each state
    city = _CITY_START[state] + (rng.random(n) ** 2 * _CITY_N[state]).astype(np.int64)
    return _take("state", state), _take("city", city)


def _years(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.minimum(rng.gamma(1.4, 4.5, n), 30).astype(np.int32)


def _rates(rng: np.random.Generator, role: np.ndarray, years: np.ndarray) -> np.ndarray:
    return np.round(_RATE[role] * (1 + 0.015 * np.minimum(years, 20)) * rng.lognormal(0, 0.07, len(role)), 2)


def _cert_lists(rng: np.random.Generator, role: np.ndarray, probs: np.ndarray = _CERT_P, cap: int = 4) -> pa.Array:
    mask = rng.random((len(role), len(CERTS)), dtype=np.float32) < probs[role]
    mask &= np.cumsum(mask, axis=1) <= cap
    offsets = np.zeros(len(role) + 1, np.int32)
    np.cumsum(mask.sum(axis=1), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), _take("cert", np.nonzero(mask)[1]))


def _money(rate: np.ndarray) -> pa.Array:
    cents = np.round(rate * 100).astype(np.int64)
    return _join(pc.cast(pa.array(cents // 100), pa.string()), ".",
                 pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0"))


def _workers(rng: np.random.Generator, ids: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    n = len(ids)
    role = rng.choice(len(ROLES), n, p=_ROLE_P)
    state, city = _location(rng, n)
    years = _years(rng, n)
    cols = [pa.array(ids, pa.int64()), _names(rng, n), _take("role", role), state, city, _cert_lists(rng, role),
            pa.array(years), _take("avail", rng.choice(4, n, p=[0.35, 0.3, 0.15, 0.2])),
            pa.array(_rates(rng, role, years)),
            _seconds(_T0 + (rng.random(n) * _WORKER_SPAN_DAYS * _DAY_US).astype(np.int64))]
    return pa.Table.from_arrays(cols, schema=WORKERS_SCHEMA), role


def _resumes(rng: np.random.Generator, role: np.ndarray, years: np.ndarray, state: pa.Array, city: pa.Array,
             certs: pa.Array) -> pa.Array:
    n = len(role)
    r, y = _take("role", role), pc.cast(pa.array(years), pa.string())
    yy = _join(y, pc.if_else(pa.array(years == 1), " year", " years"))
    a, b = rng.integers(0, 4, n), rng.integers(0, 3, n)
    sk1, sk2 = _take("skill", role * 4 + a), _take("skill", role * 4 + (a + 1 + b) % 4)
    e = rng.integers(0, len(CLIENTS), n)
    e1, e2 = _take("client", e), _take("client", (e + 1 + rng.integers(0, len(CLIENTS) - 1, n)) % len(CLIENTS))
    shift = _take("shift", rng.integers(0, len(SHIFTS), n))
    ctext = pc.binary_join(certs, ", ")
    s1 = _choose(rng, _join(r, " with ", yy, " of experience based in ", city, ", ", state, "."),
                 _join("Dependable ", r, " from ", city, ", ", state, " with ", yy, " on the job."),
                 _join(y, "-year ", r, " looking for work in the ", city, ", ", state, " area."))
    s2 = _choose(rng, _join("Skilled in ", sk1, " and ", sk2, "."),
                 _join("Strong background in ", sk1, "; also comfortable with ", sk2, "."),
                 _join("Hands-on experience with ", sk1, " and ", sk2, "."))
    s3 = _choose(rng, _join("Previously worked at ", e1, "."),
                 _join("Most recently employed by ", e1, " as a ", r, "."),
                 _join("Past employers include ", e1, " and ", e2, "."))
    s4 = pc.if_else(pc.equal(ctext, ""), pa.scalar("No certifications yet but eager to train."),
                    _choose(rng, _join("Certified: ", ctext, "."), _join("Holds current ", ctext, " credentials.")))
    s5 = _choose(rng, _join("Available for ", shift, " shift work."),
                 _join("Prefers ", shift, " shift; open to overtime."))
    s6 = _take("extra", rng.integers(0, len(EXTRAS), n))
    k = rng.integers(3, 7, n)  # 3-6 sentences
    null = pa.scalar(None, pa.string())
    opt = [pc.if_else(pa.array(k >= i), s, null) for i, s in ((4, s4), (5, s5), (6, s6))]
    return pc.binary_join_element_wise(s1, s2, s3, *opt, " ", null_handling="skip")


def _candidates(rng: np.random.Generator, n: int) -> pa.Table:
    role = rng.choice(len(ROLES), n, p=_ROLE_P)
    state, city = _location(rng, n)
    years = _years(rng, n)
    resume = _resumes(rng, role, years, state, city, _cert_lists(rng, role))
    return pa.table({
        "id": pa.array(np.arange(1, n + 1), pa.int64()), "name": _names(rng, n), "role": _take("role", role),
        "state": state, "city": city, "years_experience": pa.array(years), "resume": resume,
        "source": _take("source", rng.choice(4, n, p=[0.3, 0.4, 0.15, 0.15])),
        "applied_at": _seconds(_T0 + (rng.random(n) * 730 * _DAY_US).astype(np.int64))})


def _job_orders(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    role = rng.choice(len(ROLES), n, p=_ROLE_P)
    state, city = _location(rng, n)
    client = _take("client", rng.integers(0, len(CLIENTS), n))
    headcount = np.minimum(rng.geometric(0.2, n), 25).astype(np.int32)
    start = rng.integers(0, 700, n)  # days after 2025-01-01; leaves room for placements before 2027
    rate = np.round(_rates(rng, role, rng.integers(2, 8, n)) * 1.05, 2)
    req = _cert_lists(rng, role, _REQ_P, cap=2)
    rtext = pc.binary_join(req, ", ")
    r = _take("role", role)
    openings = pc.if_else(pa.array(headcount == 1), " opening", " openings")
    notes = _join(client, " has ", pc.cast(pa.array(headcount), pa.string()), " ", r, openings, " for ",
                  _take("shift", rng.integers(0, len(SHIFTS), n)), " shift in ", city, ", ", state, ". ",
                  pc.if_else(pc.equal(rtext, ""),
                             _choose(rng, pa.array(["Will train reliable candidates."] * n),
                                     pa.array(["No certifications required."] * n)),
                             _join("Must have ", rtext, ".")),
                  " Pay $", _money(rate), "/hr.")
    table = pa.table({
        "id": pa.array(np.arange(1, n + 1), pa.int64()), "client": client, "role": r, "state": state, "city": city,
        "headcount": pa.array(headcount), "start_date": pa.array((_D0 + start).astype(np.int32), pa.date32()),
        "hourly_rate": pa.array(rate), "required_certifications": req, "notes": notes,
        "status": _take("status", rng.choice(3, n, p=[0.4, 0.4, 0.2]))})
    return table, role, start


def _placements(rng: np.random.Generator, n: int, worker_role: np.ndarray, job_role: np.ndarray,
                job_start: np.ndarray) -> pa.Table:
    job = rng.integers(0, len(job_role), n)
    jr = job_role[job]
    # workers grouped by role, so a matching worker is one offset into its role's slice
    order = np.argsort(worker_role, kind="stable")
    counts = np.bincount(worker_role, minlength=len(ROLES))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.minimum(starts[jr] + (rng.random(n) * counts[jr]).astype(np.int64), len(order) - 1)
    matched = (rng.random(n) < 0.9) & (counts[jr] > 0)
    worker = np.where(matched, order[pos], rng.integers(0, len(worker_role), n)) + 1
    placed = _T0 + (job_start[job] + rng.integers(0, 21, n)) * _DAY_US + rng.integers(6 * 3600, 18 * 3600, n) * 10**6
    outcome = rng.choice(4, n, p=[0.45, 0.25, 0.1, 0.2])
    days = np.select([outcome == 0, outcome == 3], [rng.integers(14, 181, n), rng.integers(1, 61, n)], 0)
    rating = np.select([outcome == 0, outcome == 1, outcome == 3],
                       [rng.choice([3, 4, 5], n, p=[0.2, 0.4, 0.4]), rng.integers(2, 6, n), rng.integers(1, 4, n)], 0)
    return pa.table({
        "id": pa.array(np.arange(1, n + 1), pa.int64()), "job_order_id": pa.array(job + 1, pa.int64()),
        "worker_id": pa.array(worker, pa.int64()), "placed_at": _seconds(placed),
        "end_at": pa.array((placed + days * _DAY_US) // 10**6 * 10**6, TS, mask=outcome == 1),
        "outcome": _take("outcome", outcome),
        "rating": pa.array(rating.astype(np.int32), mask=(outcome == 2) | (rng.random(n) < 0.1))})


def generate(rows: int = 500_000, seed: int = 7) -> dict[str, pa.Table]:
    """Build workers (rows), candidates (rows//5), job_orders (max(rows//100, 50)), placements (rows//10)."""
    if rows < 1:
        raise ValueError("rows must be >= 1")
    rw, rc, rj, rp = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    workers, worker_role = _workers(rw, np.arange(1, rows + 1))
    jobs, job_role, job_start = _job_orders(rj, max(rows // 100, 50))
    tables = {"workers": workers, "candidates": _candidates(rc, rows // 5), "job_orders": jobs,
              "placements": _placements(rp, rows // 10, worker_role, job_role, job_start)}
    log.debug("generated demo data: %s", {k: t.num_rows for k, t in tables.items()})
    return tables


def _csv_ready(table: pa.Table) -> pa.Table:
    # pyarrow.csv cannot write lists; DuckDB list literals ('[a, b]') cast straight to VARCHAR[]
    for i, field in enumerate(table.schema):
        if pa.types.is_list(field.type):
            text = _join("[", pc.binary_join(table.column(i), ", "), "]")
            table = table.set_column(i, field.name, text)
    return table


def write(tables: dict[str, pa.Table], directory: Path, *, format: str = "parquet") -> dict[str, Path]:
    """Write one <name>.parquet / <name>.csv per table; list columns become '[a, b]' text in CSV."""
    if format not in ("parquet", "csv"):
        raise ValueError(f"unsupported format: {format!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in tables.items():
        path = directory / f"{name}.{format}"
        if format == "parquet":
            pq.write_table(table, path)
        else:
            pacsv.write_csv(_csv_ready(table), path)
        paths[name] = path
    return paths


def workers_delta(tables: Mapping[str, pa.Table], n: int = 1000, seed: int = 8) -> pa.Table:
    """Update batch: n existing workers with new availability/rate/updated_at, plus ~n/10 new ids."""
    workers = tables["workers"]
    rng = np.random.default_rng(seed)
    k = min(n, workers.num_rows)
    old = workers.take(pa.array(np.sort(rng.choice(workers.num_rows, k, replace=False))))
    avail = pc.index_in(old["availability"], value_set=_A["avail"]).to_numpy(zero_copy_only=False)
    updated = old["updated_at"].cast(pa.int64()).to_numpy() + rng.integers(1, 90, k) * _DAY_US
    rate = np.round(old["hourly_rate"].to_numpy() * rng.uniform(1.03, 1.15, k), 2)
    old = (old.set_column(7, "availability", _take("avail", (avail + rng.integers(1, 4, k)) % 4))
              .set_column(8, "hourly_rate", pa.array(rate))
              .set_column(9, "updated_at", _seconds(updated + rng.integers(0, _DAY_US, k))))
    max_id = pc.max(workers["id"]).as_py() or 0
    new, _ = _workers(rng, np.arange(max_id + 1, max_id + 1 + (n + 9) // 10))
    return pa.concat_tables([old, new])


def worker_profile(row: Mapping) -> str:
    """Readable one-line profile of a worker row (text for embeddings / vector search)."""
    certs = row.get("certifications") or []
    years = row["years_experience"]
    return (f"{row['role']} in {row['city']}, {row['state']}. {years} year{'' if years == 1 else 's'} experience. "
            f"Certifications: {', '.join(certs) if certs else 'none'}. Available: {row['availability']}.")


def profiles(table: pa.Table) -> pa.Array:
    """Vectorised worker_profile over a workers table."""
    years = table["years_experience"]
    certs = pc.binary_join(table["certifications"], ", ")
    certs = pc.if_else(pc.or_kleene(pc.is_null(certs), pc.equal(certs, "")), "none", certs)
    text = _join(table["role"], " in ", table["city"], ", ", table["state"], ". ", pc.cast(years, pa.string()),
                 pc.if_else(pc.equal(years, 1), " year", " years"), " experience. Certifications: ", certs,
                 ". Available: ", table["availability"], ".")
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
