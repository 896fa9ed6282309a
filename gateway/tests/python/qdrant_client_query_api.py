"""Qdrant's query API through the official qdrant-client against a running
gateway (collections of 3 shards, RF 2), every answer compared with
qdrant-client's own local mode (`QdrantClient(":memory:")`) holding the
same points: ids and order, scores within 1e-4 (for `sample`, only count
and membership). Covered: nearest (vector, id), prefetch (nested, with
filters), fusion RRF (default and with k / weights) and DBSF, re-scoring of
prefetches, recommend (average_vector, best_score; ids and vectors),
discover, context, order_by (asc / desc / start_from), sample,
lookup_from, query_points_groups (with_lookup), search groups (raw REST:
the client has no method for it) and facet, on a cosine and a Euclid
collection.

    GATEWAY_URL=http://127.0.0.1:15001 python qdrant_client_query_api.py
"""

import os
import sys

import httpx
import numpy as np
from qdrant_client import QdrantClient, models

URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:15001")
API_KEY = os.environ.get("GATEWAY_API_KEY") or None
N = 600
DIM = 8
COLORS = ["red", "green", "blue", "cyan", "black"]
TOL = 1e-4


def points(rng: np.random.Generator, n: int, start: int = 0) -> list[models.PointStruct]:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    out = []
    for k in range(n):
        i = start + k
        out.append(models.PointStruct(
            id=i,
            vector=vectors[k].tolist(),
            payload={
                "group": i % 7,
                "n": i,
                "price": round(float(rng.uniform(0, 100)), 3),
                "color": COLORS[int(rng.integers(0, len(COLORS)))],
                "tags": [f"t{i % 3}", f"t{i % 4}"],
                "name": f"p{i}",
            },
        ))
    return out


def setup(clients, name: str, distance: models.Distance, pts) -> None:
    for c in clients:
        if c.collection_exists(name):
            c.delete_collection(name)
        kwargs = {"shard_number": 3, "replication_factor": 2} if c is clients[0] else {}
        c.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=distance), **kwargs)
        for s in range(0, len(pts), 200):
            c.upsert(name, points=pts[s:s + 200], wait=True)
    assert clients[0].count(name, exact=True).count == len(pts)


def same_hits(what: str, got, want, ordered: bool = True) -> None:
    """Ids in order and scores within TOL; where scores tie, any order."""
    g = [(p.id, p.score, getattr(p, "order_value", None)) for p in got]
    w = [(p.id, p.score, getattr(p, "order_value", None)) for p in want]
    assert len(g) == len(w), f"{what}: {len(g)} hits, want {len(w)}\n got {g}\nwant {w}"
    for i, ((gid, gs, go), (wid, ws, wo)) in enumerate(zip(g, w)):
        assert abs(gs - ws) <= TOL * max(1.0, abs(ws)), f"{what}: score {i} {gs} != {ws}\n got {g}\nwant {w}"
        assert go == wo, f"{what}: order_value {i} {go} != {wo}"
        if gid != wid and ordered:
            # A tie (possibly with a hit just past the limit) may order either way.
            tied = [s for (_, s, _) in w if abs(s - ws) <= 1e-6]
            assert len(tied) > 1 or abs(ws - w[-1][1]) <= 1e-6, f"{what}: id {i} {gid} != {wid}\n got {g}\nwant {w}"
    if ordered:
        # Tied hits may swap, but the set of ids above the last tie matches.
        last = w[-1][1] if w else None
        strict = lambda hs: {h[0] for h in hs if last is None or abs(h[1] - last) > 1e-6}
        assert strict(g) == strict(w), f"{what}: ids differ\n got {g}\nwant {w}"


def compare_query(remote, local, what: str, name: str, **kw) -> None:
    got = remote.query_points(name, **kw).points
    want = local.query_points(name, **kw).points
    same_hits(what, got, want)
    if kw.get("with_payload"):
        for a, b in zip(got, want):
            if a.id == b.id:
                assert a.payload == b.payload, (what, a.payload, b.payload)
    print(f"ok  {what}: {len(got)} hits")


def main() -> int:
    remote = QdrantClient(url=URL, api_key=API_KEY, timeout=60, check_compatibility=False)
    local = QdrantClient(":memory:")
    clients = [remote, local]
    rng = np.random.default_rng(16)
    pts = points(rng, N)
    setup(clients, "qa_cos", models.Distance.COSINE, pts)
    setup(clients, "qa_euc", models.Distance.EUCLID, pts)
    setup(clients, "qa_lookup", models.Distance.COSINE, points(rng, 50))
    q1 = rng.standard_normal(DIM).astype(np.float32).tolist()
    q2 = rng.standard_normal(DIM).astype(np.float32).tolist()
    q3 = rng.standard_normal(DIM).astype(np.float32).tolist()
    red = models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])
    cheap = models.Filter(must=[models.FieldCondition(key="price", range=models.Range(lt=40))])
    g3 = models.Filter(must_not=[models.FieldCondition(key="group", match=models.MatchValue(value=3))])

    for name in ["qa_cos", "qa_euc"]:
        cq = lambda what, **kw: compare_query(remote, local, f"{name} {what}", name, **kw)
        cq("nearest", query=q1, limit=7, with_payload=True)
        cq("nearest filtered, offset", query=models.NearestQuery(nearest=q2), query_filter=red, limit=5, offset=3)
        cq("nearest by id (the id left out)", query=17, limit=6)
        cq("rrf over two prefetches", limit=10, query=models.FusionQuery(fusion=models.Fusion.RRF),
           prefetch=[models.Prefetch(query=q1, limit=25), models.Prefetch(query=q2, filter=cheap, limit=30)])
        cq("dbsf over two prefetches", limit=10, query=models.FusionQuery(fusion=models.Fusion.DBSF),
           prefetch=[models.Prefetch(query=q1, limit=25), models.Prefetch(query=q2, limit=15)],
           with_payload=True)
        cq("rrf k=60 weights", limit=8, query=models.RrfQuery(rrf=models.Rrf(k=60, weights=[1.0, 3.0])),
           prefetch=[models.Prefetch(query=q1, limit=20), models.Prefetch(query=q3, limit=20)])
        cq("nested prefetch, re-scored then fused", limit=6, query_filter=g3,
           query=models.FusionQuery(fusion=models.Fusion.RRF),
           prefetch=[
               models.Prefetch(query=q3, limit=10, prefetch=[
                   models.Prefetch(query=q1, limit=40), models.Prefetch(query=q2, filter=red, limit=40)]),
               models.Prefetch(query=models.RecommendQuery(recommend=models.RecommendInput(
                   positive=[5, 9], strategy=models.RecommendStrategy.BEST_SCORE)), limit=12),
           ])
        cq("prefetch re-scored by a vector", query=q3, limit=5,
           prefetch=[models.Prefetch(query=q1, limit=50, filter=cheap)])
        cq("recommend average_vector", limit=8, query=models.RecommendQuery(recommend=models.RecommendInput(
            positive=[3, 11, q1], negative=[42])), with_payload=["n"])
        cq("recommend best_score", limit=8, query_filter=g3,
           query=models.RecommendQuery(recommend=models.RecommendInput(
               positive=[3, q2], negative=[42, q3], strategy=models.RecommendStrategy.BEST_SCORE)))
        cq("recommend best_score, negatives only", limit=5,
           query=models.RecommendQuery(recommend=models.RecommendInput(
               negative=[8], strategy=models.RecommendStrategy.BEST_SCORE)))
        cq("discover", limit=7, query=models.DiscoverQuery(discover=models.DiscoverInput(
            target=21, context=[models.ContextPair(positive=1, negative=2),
                                models.ContextPair(positive=q1, negative=q2)])))
        cq("context", limit=7, query=models.ContextQuery(context=[
            models.ContextPair(positive=4, negative=q3), models.ContextPair(positive=q1, negative=6)]))
        cq("lookup_from another collection", limit=6, lookup_from=models.LookupLocation(collection="qa_lookup"),
           query=models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2], negative=[3])))
    cq = lambda what, **kw: compare_query(remote, local, f"qa_cos {what}", "qa_cos", **kw)
    cq("order_by n asc", limit=9, query=models.OrderByQuery(order_by="n"), query_filter=red, with_payload=True)
    cq("order_by price desc from 50", limit=9, query=models.OrderByQuery(order_by=models.OrderBy(
        key="price", direction=models.Direction.DESC, start_from=50)))
    cq("order_by n asc from 590", limit=20, query=models.OrderByQuery(order_by=models.OrderBy(
        key="n", start_from=590)))

    # sample: the right number of distinct points, all passing the filter.
    sample = remote.query_points("qa_cos", query=models.SampleQuery(sample=models.Sample.RANDOM),
                                 query_filter=red, limit=15, with_payload=True).points
    assert len(sample) == 15 and len({p.id for p in sample}) == 15, sample
    assert all(p.payload["color"] == "red" for p in sample), sample
    print("ok  sample: 15 distinct red points")

    # Group-by, compared with local mode.
    for kw in [dict(query=q1, group_by="group", group_size=3, limit=4),
               dict(query=q2, group_by="tags", group_size=2, limit=3, query_filter=cheap),
               dict(query=q1, group_by="color", group_size=2, limit=5,
                    with_lookup=models.WithLookup(collection="qa_lookup", with_payload=["name"]))]:
        got = remote.query_points_groups("qa_cos", **kw).groups
        want = local.query_points_groups("qa_cos", **kw).groups
        assert [g.id for g in got] == [g.id for g in want], (kw, got, want)
        for a, b in zip(got, want):
            same_hits(f"group {a.id}", a.hits, b.hits)
            assert (a.lookup is None) == (b.lookup is None), (a.lookup, b.lookup)
        print(f"ok  query_points_groups by {kw['group_by']}: {len(got)} groups")
    lookup = remote.query_points_groups("qa_cos", query=q1, group_by="group", group_size=1, limit=3,
                                        with_lookup="qa_lookup").groups
    want = local.query_points_groups("qa_cos", query=q1, group_by="group", group_size=1, limit=3,
                                     with_lookup="qa_lookup").groups
    assert [(g.id, g.lookup.id, g.lookup.payload) for g in lookup] == \
           [(g.id, g.lookup.id, g.lookup.payload) for g in want], (lookup, want)
    print("ok  with_lookup by collection name")
    headers = {"api-key": API_KEY} if API_KEY else {}
    r = httpx.post(f"{URL}/collections/qa_cos/points/search/groups", headers=headers, json={
        "vector": q3, "group_by": "group", "group_size": 2, "limit": 3, "with_payload": True})
    assert r.status_code == 200, r.text
    got = models.GroupsResult(**r.json()["result"]).groups
    want = local.query_points_groups("qa_cos", query=q3, group_by="group", group_size=2, limit=3).groups
    assert [g.id for g in got] == [g.id for g in want]
    for a, b in zip(got, want):
        same_hits(f"search group {a.id}", a.hits, b.hits)
    print("ok  search groups (REST)")

    # Facets: counts by value, most frequent first.
    for key, flt in [("color", None), ("tags", cheap), ("group", red)]:
        got = remote.facet("qa_cos", key=key, facet_filter=flt, limit=4, exact=True).hits
        want = local.facet("qa_cos", key=key, facet_filter=flt, limit=4).hits
        assert [(h.value, h.count) for h in got] == [(h.value, h.count) for h in want], (key, got, want)
        print(f"ok  facet {key}: {[(h.value, h.count) for h in got]}")

    # Refusals name the problem (400, not a parse error or a 5xx).
    for body, words in [
        ({"query": {"fusion": "rrf"}}, "prefetch"),
        ({"query": {"sample": "first"}}, "random"),
        ({"query": [0.0] * DIM, "using": "image"}, "named vectors"),
        ({"query": {"recommend": {"positive": [123456]}}}, "123456"),
    ]:
        r = httpx.post(f"{URL}/collections/qa_cos/points/query", headers=headers, json=body)
        assert r.status_code in (400, 404) and words in r.text, (body, r.status_code, r.text)
    print("ok  refusals")
    for name in ["qa_cos", "qa_euc", "qa_lookup"]:
        remote.delete_collection(name)
    print("qdrant-client query API: every answer equals local mode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
