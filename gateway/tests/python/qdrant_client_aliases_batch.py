"""Aliases and batch updates through the official qdrant-client against a
running gateway (collections of 3 shards, RF 2).

Aliases: create / rename / delete with `update_collection_aliases`, every
collection route through an alias, Qdrant's rules (an alias never takes a
collection's name, nor a collection an alias's; deleting a collection
deletes its aliases), and an atomic switch of an alias from one
collection to another while a thread searches through it: every search
answers, from the old collection until the switch and from the new one
after it, never a 404 in between.

Batch: `batch_update_points` with every operation kind we support,
applied in order (a filter sees the earlier operations), and a batch
holding an unsupported kind refused whole with a 400 naming it.

    GATEWAY_URL=http://127.0.0.1:15001 python qdrant_client_aliases_batch.py
"""

import os
import sys
import threading
import time

from qdrant_client import QdrantClient, models
from qdrant_client.http import models as rest
from qdrant_client.http.exceptions import UnexpectedResponse

URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:15001")
API_KEY = os.environ.get("GATEWAY_API_KEY") or None
DIM = 4


def status_of(call) -> int:
    try:
        call()
    except UnexpectedResponse as e:
        return e.status_code
    raise AssertionError("the call succeeded")


def fresh(client: QdrantClient, name: str, version: int, n: int) -> None:
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        shard_number=3,
        replication_factor=2,
    )
    client.upsert(name, points=[
        models.PointStruct(id=i, vector=[1.0, float(i), 0.0, 0.0], payload={"v": version, "i": i})
        for i in range(n)
    ], wait=True)


def aliases(client: QdrantClient) -> None:
    fresh(client, "alias_v1", 1, 30)
    fresh(client, "alias_v2", 2, 50)
    for a in ("prod", "staging", "old"):
        client.update_collection_aliases([models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=a))])
    assert client.update_collection_aliases([
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="alias_v1", alias_name="prod")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="alias_v1", alias_name="staging")),
    ])
    listed = client.get_aliases()
    assert isinstance(listed, rest.CollectionsAliasesResponse)
    mine = sorted((a.alias_name, a.collection_name) for a in listed.aliases if a.collection_name.startswith("alias_"))
    assert mine == [("prod", "alias_v1"), ("staging", "alias_v1")], mine
    assert sorted(a.alias_name for a in client.get_collection_aliases("alias_v1").aliases) == ["prod", "staging"]
    assert client.get_collection_aliases("alias_v2").aliases == []

    # Every collection route through the alias.
    assert client.collection_exists("prod")
    assert client.get_collection("prod").points_count == 30
    assert client.count("prod").count == 30
    assert client.collection_cluster_info("prod").shard_count == 3
    hits = client.query_points("prod", query=[0.0, 1.0, 0.0, 0.0], limit=3, with_payload=True).points
    assert [h.id for h in hits] == [29, 28, 27] and all(h.payload["v"] == 1 for h in hits), hits
    client.upsert("prod", points=[models.PointStruct(id=1000, vector=[0.0] * DIM, payload={"v": 1})], wait=True)
    assert client.retrieve("alias_v1", ids=[1000])[0].payload == {"v": 1}
    client.set_payload("prod", payload={"via": "alias"}, points=[1000], wait=True)
    assert client.retrieve("prod", ids=[1000])[0].payload == {"v": 1, "via": "alias"}
    client.delete("prod", points_selector=models.PointIdsList(points=[1000]), wait=True)
    records, _ = client.scroll("prod", limit=100)
    assert [r.id for r in records] == list(range(30))

    # Qdrant's rules.
    assert status_of(lambda: client.update_collection_aliases([models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name="alias_v1", alias_name="alias_v2"))])) == 400
    assert status_of(lambda: client.update_collection_aliases([models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name="missing", alias_name="x"))])) == 404
    assert status_of(lambda: client.update_collection_aliases([models.RenameAliasOperation(
        rename_alias=models.RenameAlias(old_alias_name="missing", new_alias_name="x"))])) == 404
    assert status_of(lambda: client.create_collection(
        "prod", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))) == 400
    # A list with a failing action changes nothing: `staging` stays.
    assert status_of(lambda: client.update_collection_aliases([
        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="staging")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="missing", alias_name="staging")),
    ])) == 404
    assert client.count("staging").count == 30
    assert client.update_collection_aliases([models.RenameAliasOperation(
        rename_alias=models.RenameAlias(old_alias_name="staging", new_alias_name="old"))])
    assert client.count("old").count == 30
    assert status_of(lambda: client.count("staging")) == 404

    # The atomic switch, under searches through the alias.
    seen, errors, stop = [], [], threading.Event()

    def search() -> None:
        while not stop.is_set():
            try:
                got = client.query_points("prod", query=[0.0, 1.0, 0.0, 0.0], limit=1, with_payload=True).points
                seen.append(got[0].payload["v"])
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                errors.append(repr(e))

    t = threading.Thread(target=search)
    t.start()
    while len(seen) < 20 and not errors:
        time.sleep(0.01)
    before_switch = len(seen)
    assert client.update_collection_aliases([
        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="prod")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="alias_v2", alias_name="prod")),
    ])
    # This gateway answered the switch after taking the new map: a search
    # sent now goes to v2.
    assert client.query_points("prod", query=[0.0, 1.0, 0.0, 0.0], limit=1, with_payload=True).points[0].payload["v"] == 2
    after_switch = len(seen)
    while len(seen) < after_switch + 20 and not errors:
        time.sleep(0.01)
    stop.set()
    t.join()
    assert not errors, errors[:3]
    assert set(seen) == {1, 2}, set(seen)
    flip = seen.index(2)
    assert all(v == 1 for v in seen[:flip]) and all(v == 2 for v in seen[flip:]), seen
    assert before_switch <= flip <= after_switch + 1, (before_switch, flip, after_switch)
    print(f"alias switch: {len(seen)} searches through it, {flip} from v1 then {len(seen) - flip} from v2, 0 failed")

    # Deleting a collection deletes its aliases.
    assert client.delete_collection("alias_v1")
    names = {a.alias_name for a in client.get_aliases().aliases}
    assert "old" not in names and "prod" in names, names
    assert client.delete_collection("alias_v2")
    assert "prod" not in {a.alias_name for a in client.get_aliases().aliases}
    assert status_of(lambda: client.count("prod")) == 404


def batch(client: QdrantClient) -> None:
    name = "batch_ops"
    fresh(client, name, 0, 0)
    ids = lambda f: sorted(r.id for r in client.scroll(name, scroll_filter=f, limit=100)[0])  # noqa: E731
    red = models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])
    results = client.batch_update_points(name, update_operations=[
        models.UpsertOperation(upsert=models.PointsList(points=[
            models.PointStruct(id=i, vector=[1.0, float(i), 0.0, 0.0], payload={"k": i, "tag": "a"})
            for i in range(10)
        ])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"color": "red"}, points=[1, 2, 3])),
        models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(payload={"only": True}, points=[4])),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["tag"], points=[5])),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[6])),
        models.DeleteOperation(delete=models.FilterSelector(filter=models.Filter(must=[
            models.FieldCondition(key="k", match=models.MatchAny(any=[8, 9]))]))),
        # Sees the set_payload above: the operations apply in order.
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"late": 1}, filter=red)),
        models.UpsertOperation(upsert=models.PointsBatch(batch=models.Batch(
            ids=[20, 21], vectors=[[0.5] * DIM, [0.25] * DIM], payloads=[{"b": 1}, {"b": 2}]))),
    ], wait=True)
    assert len(results) == 8 and all(isinstance(r, rest.UpdateResult) for r in results), results
    assert all(r.status == models.UpdateStatus.COMPLETED for r in results), results
    assert client.count(name).count == 10
    got = {r.id: r.payload for r in client.retrieve(name, ids=[1, 4, 5, 6, 7, 8, 20])}
    assert got[1] == {"k": 1, "tag": "a", "color": "red", "late": 1}, got[1]
    assert got[4] == {"only": True} and got[5] == {"k": 5} and got[6] == {}, got
    assert got[7] == {"k": 7, "tag": "a"} and 8 not in got and got[20] == {"b": 1}, got
    assert ids(red) == [1, 2, 3]

    # An unsupported kind refuses the whole batch before anything is written.
    for op in (
        models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(
            points=[models.PointVectors(id=1, vector=[0.0] * DIM)])),
        models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[1], vector=[""])),
    ):
        kind = next(iter(op.model_dump(exclude_none=True)))
        try:
            client.batch_update_points(name, update_operations=[
                models.UpsertOperation(upsert=models.PointsList(points=[
                    models.PointStruct(id=99, vector=[1.0] * DIM)])),
                op,
            ])
            raise AssertionError(f"{kind} accepted")
        except UnexpectedResponse as e:
            assert e.status_code == 400 and kind.encode() in e.content, (e.status_code, e.content)
    assert client.retrieve(name, ids=[99]) == []
    assert client.delete_collection(name)


def main() -> int:
    client = QdrantClient(url=URL, api_key=API_KEY, timeout=60, check_compatibility=False)
    aliases(client)
    batch(client)
    print("qdrant-client aliases and batch: 2 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
