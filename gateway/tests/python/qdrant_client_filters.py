"""Every filter condition, with and without payload indexes, through the
official qdrant-client against a running gateway (3 shards, RF 2),
compared with the client's own local mode (`QdrantClient(":memory:")`)
on the same points: `count`, `scroll` (every page) and exact
`query_points` must give the same ids; an approximate search must give
min(limit, matches) hits that all match.

Then payload indexes of every type are created (`create_payload_index`),
`payload_schema` must list each with its `points`, and the comparisons
run again; a dropped index leaves `payload_schema`; bad index and filter
shapes answer 400.

    GATEWAY_URL=http://127.0.0.1:15001 python qdrant_client_filters.py
"""

import os
import random
import sys
import time

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:15001")
API_KEY = os.environ.get("GATEWAY_API_KEY") or None
NAME = "filters_parity"
DIM = 8
N = 600
CITIES = ["Berlin", "London", "Paris", "Rome", "berlin"]
WORDS = ["vector", "search", "Rust", "database", "graph", "fast", "shard"]
FOODS = ["meat", "veg", "fish"]


def payload(r: random.Random, i: int) -> dict:
    p = {}
    if r.random() < 0.9:
        p["city"] = r.choice(CITIES)
    if r.random() < 0.9:
        p["n"] = r.randint(-20, 20)
    if r.random() < 0.9:
        p["price"] = round(r.uniform(0, 100), 2)
    p["ok"] = r.random() < 0.3
    if r.random() < 0.8:
        p["at"] = f"2024-0{r.randint(1, 9)}-{r.randint(10, 28)}T{r.randint(10, 23)}:{r.randint(10, 59)}:00Z"
    if r.random() < 0.85:
        p["loc"] = {"lat": round(r.uniform(40, 60), 4), "lon": round(r.uniform(-10, 30), 4)}
    if r.random() < 0.85:
        p["bio"] = " ".join(r.choice(WORDS) for _ in range(r.randint(1, 6)))
    k = r.random()
    if k < 0.15:
        p["tags"] = []
    elif k < 0.25:
        p["tags"] = None
    elif k < 0.9:
        p["tags"] = r.sample(["a", "b", "c", "d"], r.randint(1, 3))
    p["diet"] = [{"food": r.choice(FOODS), "likes": r.random() < 0.5} for _ in range(r.randint(0, 3))]
    return p


def points() -> list:
    r = random.Random(7)
    return [
        models.PointStruct(id=i, vector=[r.uniform(-1, 1) for _ in range(DIM)], payload=payload(r, i))
        for i in range(N)
    ]


def fc(key, **kw):
    return models.FieldCondition(key=key, **kw)


def filters() -> list:
    berlin = models.GeoPoint(lat=52.52, lon=13.405)
    ring = models.GeoLineString(points=[
        models.GeoPoint(lat=45, lon=0), models.GeoPoint(lat=45, lon=20), models.GeoPoint(lat=58, lon=20),
        models.GeoPoint(lat=58, lon=0), models.GeoPoint(lat=45, lon=0)])
    hole = models.GeoLineString(points=[
        models.GeoPoint(lat=48, lon=5), models.GeoPoint(lat=48, lon=15), models.GeoPoint(lat=55, lon=15),
        models.GeoPoint(lat=55, lon=5), models.GeoPoint(lat=48, lon=5)])
    F = models.Filter
    return [
        ("keyword", F(must=[fc("city", match=models.MatchValue(value="Berlin"))])),
        ("any", F(must=[fc("city", match=models.MatchAny(any=["Paris", "Rome"]))])),
        ("except", F(must=[fc("city", match=models.MatchExcept(**{"except": ["Paris"]}))])),
        ("int", F(must=[fc("n", match=models.MatchValue(value=3))])),
        ("int range", F(must=[fc("n", range=models.Range(gte=-2, lt=5))])),
        ("float range", F(must=[fc("price", range=models.Range(gt=10.5, lte=12.0))])),
        ("bool", F(must=[fc("ok", match=models.MatchValue(value=True))])),
        ("text", F(must=[fc("bio", match=models.MatchText(text="rust VECTOR"))])),
        ("text_any", F(must=[fc("bio", match=models.MatchTextAny(text_any="graph shard"))])),
        ("phrase", F(must=[fc("bio", match=models.MatchPhrase(phrase="fast search"))])),
        ("datetime", F(must=[fc("at", range=models.DatetimeRange(gte="2024-03-01T00:00:00Z", lt="2024-05-15"))])),
        ("geo radius", F(must=[fc("loc", geo_radius=models.GeoRadius(center=berlin, radius=400_000.0))])),
        ("geo box", F(must=[fc("loc", geo_bounding_box=models.GeoBoundingBox(
            top_left=models.GeoPoint(lat=55, lon=0), bottom_right=models.GeoPoint(lat=45, lon=10)))])),
        ("geo polygon", F(must=[fc("loc", geo_polygon=models.GeoPolygon(exterior=ring, interiors=[hole]))])),
        ("values_count", F(must=[fc("tags", values_count=models.ValuesCount(gte=2))])),
        ("is_empty", F(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="tags"))])),
        ("is_null", F(must=[models.IsNullCondition(is_null=models.PayloadField(key="tags"))])),
        ("not is_empty", F(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key="city"))])),
        ("nested", F(must=[models.NestedCondition(nested=models.Nested(key="diet", filter=F(must=[
            fc("food", match=models.MatchValue(value="meat")), fc("likes", match=models.MatchValue(value=True))])))])),
        ("min_should", F(min_should=models.MinShould(min_count=2, conditions=[
            fc("city", match=models.MatchValue(value="London")), fc("ok", match=models.MatchValue(value=True)),
            fc("n", range=models.Range(gt=10)), fc("bio", match=models.MatchText(text="graph"))]))),
        ("combined", F(
            must=[fc("price", range=models.Range(lt=60)), fc("city", match=models.MatchAny(any=["Berlin", "London"]))],
            should=[fc("bio", match=models.MatchText(text="rust")), fc("tags", match=models.MatchValue(value="a"))],
            must_not=[fc("at", range=models.DatetimeRange(lt="2024-02-01"))])),
        ("selective", F(must=[fc("city", match=models.MatchValue(value="berlin")), fc("n", match=models.MatchValue(value=0))])),
    ]


def scroll_ids(c: QdrantClient, f) -> list:
    ids, offset = [], None
    while True:
        page, offset = c.scroll(NAME, scroll_filter=f, limit=97, offset=offset)
        ids += [p.id for p in page]
        if offset is None:
            return ids


def compare(remote: QdrantClient, local: QdrantClient, label: str, failures: list) -> None:
    r = random.Random(11)
    for name, f in filters():
        want = sorted(scroll_ids(local, f))
        got = sorted(scroll_ids(remote, f))
        if got != want:
            failures.append(f"{label}/{name}: scroll {len(got)} ids, local mode {len(want)}: "
                            f"extra {sorted(set(got) - set(want))[:5]} missing {sorted(set(want) - set(got))[:5]}")
            continue
        count = remote.count(NAME, count_filter=f, exact=True).count
        if count != len(want):
            failures.append(f"{label}/{name}: count {count}, expected {len(want)}")
        q = [r.uniform(-1, 1) for _ in range(DIM)]
        exact = models.SearchParams(exact=True)
        want_hits = [p.id for p in local.query_points(NAME, query=q, query_filter=f, limit=10).points]  # always exact
        got_hits = [p.id for p in remote.query_points(NAME, query=q, query_filter=f, limit=10, search_params=exact).points]
        if got_hits != want_hits:
            failures.append(f"{label}/{name}: exact search {got_hits}, local mode {want_hits}")
        approx = [p.id for p in remote.query_points(NAME, query=q, query_filter=f, limit=10).points]
        if len(approx) != min(10, len(want)) or not set(approx) <= set(want):
            failures.append(f"{label}/{name}: approximate search gave {approx} of {len(want)} matches")
        print(f"  {label:10} {name:14} {len(want):4} matches, searches agree")


INDEXES = {
    "city": models.PayloadSchemaType.KEYWORD,
    "n": models.PayloadSchemaType.INTEGER,
    "price": models.PayloadSchemaType.FLOAT,
    "ok": models.PayloadSchemaType.BOOL,
    "at": models.PayloadSchemaType.DATETIME,
    "loc": models.PayloadSchemaType.GEO,
    "tags": models.PayloadSchemaType.KEYWORD,
}


def expected_points(pts: list, key: str) -> int:
    def has(v):
        if key == "loc":
            return isinstance(v, dict)
        if key == "bio":
            return isinstance(v, str) and len(v) > 0
        if isinstance(v, list):
            return len(v) > 0
        return v is not None
    return sum(1 for p in pts if key in p.payload and has(p.payload[key]))


def status_of(call) -> int:
    try:
        call()
    except UnexpectedResponse as e:
        return e.status_code
    raise AssertionError("the call succeeded")


def main() -> int:
    remote = QdrantClient(url=URL, api_key=API_KEY, timeout=60, prefer_grpc=False, check_compatibility=False)
    local = QdrantClient(":memory:")
    pts = points()
    for c in (remote, local):
        if c.collection_exists(NAME):
            c.delete_collection(NAME)
        extra = {"shard_number": 3, "replication_factor": 2} if c is remote else {}
        c.create_collection(NAME, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT), **extra)
        for i in range(0, N, 200):
            c.upsert(NAME, points=pts[i:i + 200], wait=True)
    failures: list = []
    compare(remote, local, "no index", failures)

    for key, t in INDEXES.items():
        remote.create_payload_index(NAME, key, field_schema=t, wait=True)
    remote.create_payload_index(NAME, "bio", field_schema=models.TextIndexParams(
        type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True), wait=True)
    want = {k: expected_points(pts, k) for k in list(INDEXES) + ["bio"]}
    deadline = time.time() + 30
    while True:
        schema = remote.get_collection(NAME).payload_schema
        got = {k: v.points for k, v in schema.items()}
        if got == want or time.time() > deadline:
            break
        time.sleep(0.5)
    if got != want:
        failures.append(f"payload_schema points {got}, expected {want}")
    types = {k: v.data_type for k, v in schema.items()}
    if types != {**INDEXES, "bio": models.PayloadSchemaType.TEXT}:
        failures.append(f"payload_schema types {types}")
    compare(remote, local, "indexed", failures)

    # Changes after the index is built are seen (postings added in place).
    remote.set_payload(NAME, payload={"city": "Oslo"}, points=[1, 2, 3], wait=True)
    local.set_payload(NAME, payload={"city": "Oslo"}, points=[1, 2, 3], wait=True)
    oslo = models.Filter(must=[fc("city", match=models.MatchValue(value="Oslo"))])
    if sorted(scroll_ids(remote, oslo)) != [1, 2, 3]:
        failures.append(f"after set_payload: {scroll_ids(remote, oslo)}")
    compare(remote, local, "changed", failures)

    remote.delete_payload_index(NAME, "n", wait=True)
    if "n" in remote.get_collection(NAME).payload_schema:
        failures.append("a deleted index is still in payload_schema")

    bad_schema = status_of(lambda: remote.create_payload_index(
        NAME, "bio", field_schema=models.TextIndexParams(type=models.TextIndexType.TEXT,
                                                          tokenizer=models.TokenizerType.PREFIX)))
    if bad_schema != 400:
        failures.append(f"a prefix tokenizer answered {bad_schema}, not 400")
    open_ring = models.GeoPolygon(exterior=models.GeoLineString(points=[
        models.GeoPoint(lat=0, lon=0), models.GeoPoint(lat=1, lon=0), models.GeoPoint(lat=1, lon=1)]))
    bad_filter = status_of(lambda: remote.count(NAME, count_filter=models.Filter(
        must=[fc("loc", geo_polygon=open_ring)])))
    if bad_filter != 400:
        failures.append(f"an open polygon answered {bad_filter}, not 400")

    remote.delete_collection(NAME)
    for f in failures:
        print("FAIL:", f)
    print("filters: ok" if not failures else f"filters: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
