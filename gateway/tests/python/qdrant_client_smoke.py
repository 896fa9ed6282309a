"""Drives a running gateway with the official qdrant-client and checks
every answer: create (3 shards, RF 2), upsert 10,000 points with payloads,
query_points with and without filters against an exact computation,
scroll, count, retrieve, delete by id and by filter; the collection's
cluster operations (replicate_shard, abort_transfer, drop_replica,
update_collection's replication_factor) as the client sends them.

    GATEWAY_URL=http://127.0.0.1:15001 python qdrant_client_smoke.py
"""

import os
import sys

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:15001")
API_KEY = os.environ.get("GATEWAY_API_KEY") or None
N = int(os.environ.get("SMOKE_POINTS", "10000"))
DIM = 32
NAME = "smoke"


def main() -> int:
    client = QdrantClient(url=URL, api_key=API_KEY, timeout=60, check_compatibility=False)
    if client.collection_exists(NAME):
        client.delete_collection(NAME)
    assert client.create_collection(
        NAME,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        shard_number=3,
        replication_factor=2,
    )
    assert client.collection_exists(NAME)

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    groups = np.arange(N) % 5
    for start in range(0, N, 1000):
        points = [
            models.PointStruct(
                id=i,
                vector=vectors[i].tolist(),
                payload={"group": int(groups[i]), "n": i, "tag": "even" if i % 2 == 0 else "odd"},
            )
            for i in range(start, min(start + 1000, N))
        ]
        result = client.upsert(NAME, points=points, wait=True)
        assert result.status == models.UpdateStatus.COMPLETED, result

    info = client.get_collection(NAME)
    assert info.points_count == N, info.points_count
    assert info.config.params.shard_number == 3
    assert info.config.params.replication_factor == 2
    assert client.count(NAME, exact=True).count == N

    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def exact(q, k, mask=None):
        scores = normed @ (q / np.linalg.norm(q))
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[:k]
        return [int(i) for i in order if np.isfinite(scores[i])], scores

    g2 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=2))])
    for qi in range(10):
        q = rng.standard_normal(DIM).astype(np.float32)
        got = client.query_points(NAME, query=q.tolist(), limit=10, search_params=models.SearchParams(exact=True))
        want, scores = exact(q, 10)
        assert [p.id for p in got.points] == want, (qi, [p.id for p in got.points], want)
        for p in got.points:
            assert abs(p.score - scores[p.id]) < 1e-4, (p.score, scores[p.id])
        got = client.query_points(NAME, query=q.tolist(), limit=7, query_filter=g2, with_payload=True)
        want, _ = exact(q, 7, groups == 2)
        assert [p.id for p in got.points] == want
        assert all(p.payload["group"] == 2 for p in got.points)

    # Scroll through everything in pages: every id exactly once, in order.
    seen, offset = [], None
    for _ in range(N // 250 + 2):
        records, offset = client.scroll(NAME, limit=250, offset=offset, with_payload=False)
        seen.extend(r.id for r in records)
        if offset is None:
            break
    assert seen == list(range(N)), (len(seen), seen[:5])
    n_g2 = int((groups == 2).sum())
    assert client.count(NAME, count_filter=g2, exact=True).count == n_g2

    got = client.retrieve(NAME, ids=[3, 4000, N + 5], with_vectors=True)
    assert sorted(r.id for r in got) == [3, 4000]
    r3 = next(r for r in got if r.id == 3)
    assert r3.payload == {"group": 3, "n": 3, "tag": "odd"}
    assert np.allclose(r3.vector, normed[3], atol=1e-5)

    client.delete(NAME, points_selector=models.PointIdsList(points=[0, 1, 2]), wait=True)
    assert client.count(NAME, exact=True).count == N - 3
    assert client.retrieve(NAME, ids=[0, 1, 2]) == []
    client.delete(NAME, points_selector=models.FilterSelector(filter=g2), wait=True)
    assert client.count(NAME, count_filter=g2, exact=True).count == 0
    remaining = N - 3 - sum(1 for i in range(3, N) if groups[i] == 2)
    assert client.count(NAME, exact=True).count == remaining

    client.set_payload(NAME, payload={"color": "red"}, points=[10, 11], wait=True)
    assert client.retrieve(NAME, ids=[10])[0].payload["color"] == "red"

    # Cluster operations (peer ids are storage node ids). A replica of
    # shard 0 is copied to the node without one; it is listed while it
    # runs, or already recorded; then aborted if still running.
    cl = client.collection_cluster_info(NAME)
    assert cl.shard_count == 3
    holders = sorted({r.peer_id for r in cl.remote_shards if r.shard_id == 0})
    free = sorted({r.peer_id for r in cl.remote_shards} - set(holders))
    assert len(holders) == 2 and len(free) == 1, (holders, free)
    assert client.cluster_collection_update(
        NAME,
        cluster_operation=models.ReplicateShardOperation(
            replicate_shard=models.ReplicateShard(shard_id=0, from_peer_id=holders[0], to_peer_id=free[0])
        ),
    )
    running = client.collection_cluster_info(NAME).shard_transfers
    if running:
        t = running[0]
        assert (t.shard_id, t.from_, t.to, t.sync) == (0, holders[0], free[0], True), t
        try:
            client.cluster_collection_update(
                NAME,
                cluster_operation=models.AbortTransferOperation(
                    abort_transfer=models.AbortShardTransfer(shard_id=0, from_peer_id=holders[0], to_peer_id=free[0])
                ),
            )
            print("replicate_shard: listed while running, aborted")
        except UnexpectedResponse as e:  # finished in between
            assert e.status_code == 404, e
            print("replicate_shard: listed while running, finished before the abort")
    else:
        print("replicate_shard: finished before the first look")
    try:
        client.cluster_collection_update(
            NAME,
            cluster_operation=models.ReplicateShardOperation(
                replicate_shard=models.ReplicateShard(shard_id=9, from_peer_id=holders[0], to_peer_id=free[0])
            ),
        )
        raise AssertionError("a transfer of an unknown shard was accepted")
    except UnexpectedResponse as e:
        assert e.status_code == 404, e
    assert client.update_collection(NAME, collection_params=models.CollectionParamsDiff(replication_factor=2))
    assert client.get_collection(NAME).config.params.replication_factor == 2

    assert client.delete_collection(NAME)
    assert not client.collection_exists(NAME)
    print("qdrant-client smoke: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
