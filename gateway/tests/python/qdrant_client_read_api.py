"""Every read-only method of the official qdrant-client against a running
gateway (a collection of 3 shards, RF 2), each answer parsed by the
client's own REST models (`qdrant_client.http.models`) and checked against the data or an exact
computation. Methods for features the cluster does not have must fail
with an HTTP error the client surfaces (UnexpectedResponse, 501 naming
the feature), never with a parse error.

    GATEWAY_URL=http://127.0.0.1:15001 python qdrant_client_read_api.py
"""

import datetime
import os
import sys

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http import models as rest
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:15001")
API_KEY = os.environ.get("GATEWAY_API_KEY") or None
# Above 3 x 4096 so that each shard estimates `exact=False` counts.
N = int(os.environ.get("READ_API_POINTS", "15000"))
DIM = 8
NAME = "read_api"

# Read-only methods of QdrantClient and what this cluster answers. The
# check below fails when a new client version adds one we do not list.
UNSUPPORTED = {
    "list_snapshots": "collection snapshots",
    "list_full_snapshots": "full (storage) snapshots",
    "list_shard_snapshots": "shard snapshots",
    "search_matrix_offsets": "the search matrix",
    "search_matrix_pairs": "the search matrix",
    "get_optimizations": "the optimizations report",
    "cluster_telemetry": "telemetry",
}
SUPPORTED = {
    "info", "get_collections", "get_collection", "collection_exists", "cluster_status",
    "collection_cluster_info", "get_aliases", "get_collection_aliases", "list_shard_keys",
    "count", "scroll", "retrieve", "query_points", "query_batch_points",
    "query_points_groups", "facet",
}
# Not reads of the server: the client's local (fastembed) helpers.
LOCAL = {"get_embedding_size"}


def check_method_list(client: QdrantClient) -> None:
    """Every public method whose name says it reads is in one of the lists."""
    read_prefixes = ("get_", "list_", "count", "scroll", "retrieve", "query", "search",
                     "facet", "info", "cluster_status", "collection_", "cluster_telemetry")
    reads = {n for n in dir(client) if not n.startswith("_") and callable(getattr(client, n))
             and n.startswith(read_prefixes) and n != "collection_cluster_update"
             and not n.endswith("_models")}
    missing = reads - SUPPORTED - set(UNSUPPORTED) - LOCAL
    assert not missing, f"read-only methods not covered by this test: {sorted(missing)}"


def expect_501(call, feature: str) -> None:
    try:
        call()
    except UnexpectedResponse as e:
        assert e.status_code == 501, (feature, e.status_code, e.content)
        assert feature.encode() in e.content, (feature, e.content)
        return
    except ResponseHandlingException as e:  # a parse error: the bug this test is for
        raise AssertionError(f"{feature}: answer did not parse: {e}") from e
    raise AssertionError(f"{feature}: answered as if supported")


def main() -> int:
    client = QdrantClient(url=URL, api_key=API_KEY, timeout=60, check_compatibility=False)
    check_method_list(client)
    if client.collection_exists(NAME):
        client.delete_collection(NAME)
    client.create_collection(
        NAME,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        shard_number=3,
        replication_factor=2,
    )
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    groups = np.arange(N) % 7
    for start in range(0, N, 1000):
        ids = list(range(start, min(start + 1000, N)))
        client.upsert(NAME, points=models.Batch(
            ids=ids,
            vectors=vectors[ids].tolist(),
            payloads=[{"group": int(groups[i]), "n": i} for i in ids],
        ), wait=True)

    # Service and cluster.
    v = client.info()
    assert isinstance(v, rest.VersionInfo) and v.version, v
    cs = client.cluster_status()
    assert isinstance(cs, rest.ClusterStatusOneOf1), cs
    assert cs.status == "enabled" and len(cs.peers) == 3, cs
    assert isinstance(cs.consensus_thread_status, rest.ConsensusThreadStatusOneOf), cs
    age = datetime.datetime.now(datetime.timezone.utc) - cs.consensus_thread_status.last_update
    assert abs(age.total_seconds()) < 60, cs.consensus_thread_status
    assert isinstance(cs.raft_info, rest.RaftInfo)

    # Collections.
    cols = client.get_collections()
    assert isinstance(cols, rest.CollectionsResponse)
    assert NAME in [c.name for c in cols.collections]
    assert client.collection_exists(NAME) is True
    assert client.collection_exists("no_such_collection") is False
    info = client.get_collection(NAME)
    assert isinstance(info, rest.CollectionInfo)
    assert info.points_count == N, info.points_count
    assert info.config.params.vectors.size == DIM
    assert info.config.params.shard_number == 3 and info.config.params.replication_factor == 2
    ci = client.collection_cluster_info(NAME)
    assert isinstance(ci, rest.CollectionClusterInfo)
    assert ci.shard_count == 3 and len(ci.remote_shards) == 6, ci
    assert all(isinstance(r, rest.RemoteShardInfo) for r in ci.remote_shards)
    assert isinstance(client.get_aliases(), rest.CollectionsAliasesResponse)
    assert client.get_collection_aliases(NAME).aliases == []
    keys = client.list_shard_keys(NAME)
    assert isinstance(keys, rest.ShardKeysResponse) and keys.shard_keys is None, keys

    # Points.
    g3 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=3))])
    n_g3 = int((groups == 3).sum())
    assert client.count(NAME).count == N
    assert client.count(NAME, exact=False).count == N  # unfiltered: always exact
    assert client.count(NAME, count_filter=g3, exact=True).count == n_g3
    estimate = client.count(NAME, count_filter=g3, exact=False)
    assert isinstance(estimate, rest.CountResult)
    assert abs(estimate.count - n_g3) <= 0.15 * n_g3, (estimate.count, n_g3)
    print(f"count: exact {n_g3}, estimate {estimate.count}")

    records, nxt = client.scroll(NAME, limit=5, with_vectors=True)
    assert [r.id for r in records] == [0, 1, 2, 3, 4] and nxt == 5, (records, nxt)
    assert all(isinstance(r, rest.Record) for r in records)
    assert np.allclose(records[2].vector, vectors[2], atol=1e-6)
    records, nxt = client.scroll(NAME, scroll_filter=g3, limit=3, offset=100)
    assert [r.id for r in records] == [101, 108, 115] and nxt == 122, ([r.id for r in records], nxt)

    got = client.retrieve(NAME, ids=[7, 14000, N + 1], with_payload=["n"])
    assert sorted(r.id for r in got) == [7, 14000]
    assert all(r.payload == {"n": r.id} for r in got), got

    def exact(q, k, mask=None):
        scores = vectors @ q
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]], scores

    q = rng.standard_normal(DIM).astype(np.float32)
    res = client.query_points(NAME, query=q.tolist(), limit=10, with_payload=True,
                              search_params=models.SearchParams(exact=True))
    assert isinstance(res, rest.QueryResponse)
    want, scores = exact(q, 10)
    assert [p.id for p in res.points] == want, ([p.id for p in res.points], want)
    assert all(isinstance(p, rest.ScoredPoint) and abs(p.score - scores[p.id]) < 1e-4
               for p in res.points)
    by_id = client.query_points(NAME, query=42, limit=3, query_filter=g3,
                                search_params=models.SearchParams(exact=True))
    want, _ = exact(vectors[42], 3, groups == 3)
    assert [p.id for p in by_id.points] == want, (by_id.points, want)
    batch = client.query_batch_points(NAME, requests=[
        models.QueryRequest(query=q.tolist(), limit=4, params=models.SearchParams(exact=True)),
        models.QueryRequest(query=q.tolist(), limit=2, filter=g3, params=models.SearchParams(exact=True)),
    ])
    assert [[p.id for p in r.points] for r in batch] == [exact(q, 4)[0], exact(q, 2, groups == 3)[0]]

    # Features we do not have: a clear HTTP error.
    expect_501(lambda: client.list_snapshots(NAME), UNSUPPORTED["list_snapshots"])
    expect_501(lambda: client.list_full_snapshots(), UNSUPPORTED["list_full_snapshots"])
    expect_501(lambda: client.list_shard_snapshots(NAME, 0), UNSUPPORTED["list_shard_snapshots"])
    # Group-by and facets parse in the client's models and count right
    # (compared with local mode in qdrant_client_query_api.py).
    grouped = client.query_points_groups(NAME, group_by="group", query=q.tolist(), limit=7, group_size=2)
    assert sorted(g.id for g in grouped.groups) == list(range(7)), grouped
    assert all(len(g.hits) == 2 and all(h.payload["group"] == g.id for h in g.hits) for g in grouped.groups)
    facets = client.facet(NAME, key="group", limit=10)
    assert sorted((h.value, h.count) for h in facets.hits) == [(v, int((groups == v).sum())) for v in range(7)]
    expect_501(lambda: client.search_matrix_offsets(NAME), UNSUPPORTED["search_matrix_offsets"])
    expect_501(lambda: client.search_matrix_pairs(NAME), UNSUPPORTED["search_matrix_pairs"])
    expect_501(lambda: client.get_optimizations(NAME), UNSUPPORTED["get_optimizations"])
    expect_501(lambda: client.cluster_telemetry(), UNSUPPORTED["cluster_telemetry"])

    # An unknown collection is a 404 on every collection read.
    for call in (lambda: client.get_collection("nope"), lambda: client.count("nope"),
                 lambda: client.collection_cluster_info("nope"),
                 lambda: client.get_collection_aliases("nope"), lambda: client.list_shard_keys("nope")):
        try:
            call()
            raise AssertionError("an unknown collection answered")
        except UnexpectedResponse as e:
            assert e.status_code == 404, e

    assert client.delete_collection(NAME)
    print(f"qdrant-client read API: {len(SUPPORTED)} methods parsed, {len(UNSUPPORTED)} refused with 501")
    return 0


if __name__ == "__main__":
    sys.exit(main())
