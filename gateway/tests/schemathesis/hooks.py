"""Schemathesis hooks for gateway/tests/schemathesis/check.sh.

- Check `refused_request_changes_nothing`: before every generated request a
  fingerprint of everything the API lets a client change is taken (the
  collections with shard count and replication factor, the nodes and their
  states and the cluster settings, from the topology; the aliases; every
  point, payload and vector, read with `consistency=all`); after every 4xx
  answer it is taken again and must be equal. A refused request that
  changed anything fails the run. (After a refusal that passed, the
  fingerprint just taken serves as the next request's "before".)
- Path parameters: half the generated `{name}`s are replaced by the
  collection the run may change (FUZZ_COLLECTION), so that the requests
  reach the handlers and not only the "no such collection" answer.
  `sentinel` is never named: any change to it is caught by the
  fingerprint. Node ids of the routes that take a node out of the cluster
  (drain, remove) are moved to ids no node has, so that the run cannot
  dismantle the cluster it tests: their refusals are exercised here, their
  successes by gateway/tests/cluster (operator.rs).
- The fuzz collection is created again (with its seed points) before a
  request if an earlier request deleted it.
- Counters of answers by status class and of refusals checked, written to
  SUMMARY_FILE at exit for the script's summary line.
"""

import atexit
import json
import os
import re
import threading
from collections import Counter

import requests
import schemathesis
from hypothesis import strategies as st

URL = os.environ["GATEWAY_URL"].rstrip("/")
FUZZ = os.environ.get("FUZZ_COLLECTION", "fuzz")
SUMMARY_FILE = os.environ.get("SUMMARY_FILE")
# Optional: every 4xx answer, one line each (to see what the run reached).
REFUSALS_LOG = os.environ.get("REFUSALS_LOG")
# 2-d, so that generated vectors often have the right size.
FUZZ_CONFIG = {"vectors": {"size": 2, "distance": "Cosine"}, "shard_number": 2, "replication_factor": 2}
SENTINEL = "sentinel"
SENTINEL_CONFIG = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 2, "replication_factor": 2}

# Node ids at or above this are never registered by the test cluster.
UNREGISTERED_NODE_BASE = 1_000_000
NODE_REMOVING_PATHS = (
    "/api/cluster/nodes/{id}",
    "/api/cluster/nodes/{id}/drain",
    "/cluster/peer/{id}",
)

_http = requests.Session()
_state = threading.local()
_statuses = Counter()
_lock = threading.Lock()


def _get(path):
    r = _http.get(URL + path, timeout=60)
    r.raise_for_status()
    return r.json()["result"]


def _post(path, body):
    r = _http.post(URL + path, json=body, timeout=60)
    r.raise_for_status()
    return r.json()["result"]


def fingerprint():
    """Everything a request could change, as one comparable value: from
    the topology (collections with shard count and replication factor,
    nodes and their states, the cluster settings), the aliases, and every
    point of every collection with its payload and vector, read from all
    replicas."""
    topo = _get("/api/cluster/topology")
    state = {
        "collections": sorted(
            (c["name"], c["shard_number"], c["replication_factor"]) for c in topo["collections"]
        ),
        "nodes": sorted((n["id"], n["state"]) for n in topo["nodes"]),
        "settings": topo["config"],
        "aliases": sorted(
            (a["alias_name"], a["collection_name"]) for a in _get("/aliases")["aliases"]
        ),
    }
    for name, _, _ in state["collections"]:
        points, offset = [], None
        while True:
            page = _post(
                f"/collections/{name}/points/scroll?consistency=all",
                {"limit": 1000, "offset": offset, "with_payload": True, "with_vector": True},
            )
            points.extend(page["points"])
            offset = page["next_page_offset"]
            if offset is None:
                break
        state[f"{name}/points"] = points
    return state


def seed(name, config):
    """Creates `name` with `config` and 40 points with payloads."""
    _http.put(f"{URL}/collections/{name}", json=config, timeout=60).raise_for_status()
    dim = config["vectors"]["size"]
    _http.put(
        f"{URL}/collections/{name}/points?wait=true", json=seed_points(dim, 40), timeout=60
    ).raise_for_status()


def seed_points(dim, n):
    return {
        "points": [
            {
                "id": i,
                "vector": [float((i * 7 + d) % 11) - 5 for d in range(dim)],
                "payload": {"n": i, "tag": ["a", "b", "c"][i % 3], "flag": i % 2 == 0},
            }
            for i in range(1, n + 1)
        ]
    }


def _diff(before, after):
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k) != after.get(k)]


def _keep_nodes_in(case):
    """Moves a node id of a node-removing route off the registered ids
    (the Rust parser also takes `+1` and `007`)."""
    if case.operation.path not in NODE_REMOVING_PATHS:
        return
    raw = str(case.path_parameters.get("id", "")).strip()
    if re.fullmatch(r"\+?[0-9]+", raw) and int(raw) < UNREGISTERED_NODE_BASE:
        case.path_parameters["id"] = UNREGISTERED_NODE_BASE + int(raw)


@schemathesis.hook
def before_call(context, case, kwargs):
    # Here and not at generation: every phase (coverage included) passes
    # through this hook.
    _keep_nodes_in(case)
    # Only a request changes the data, and a refused one that passed the
    # check left it as the fingerprint taken after it: reuse that one.
    before = getattr(_state, "unchanged", None) or fingerprint()
    _state.unchanged = None
    if not any(c[0] == FUZZ for c in before["collections"]):
        # A valid request of the run deleted it: without it every later
        # request would only meet "no such collection".
        seed(FUZZ, FUZZ_CONFIG)
        before = fingerprint()
    _state.before = before


@schemathesis.hook
def after_call(context, case, response):
    if not 400 <= response.status_code < 500:
        _state.unchanged = None
    with _lock:
        _statuses[f"{response.status_code // 100}xx"] += 1
        _statuses["total"] += 1
        if REFUSALS_LOG and 400 <= response.status_code < 500:
            with open(REFUSALS_LOG, "a") as f:
                f.write(f"{response.status_code} {case.method} {case.formatted_path}: {response.text[:300]}\n")


@schemathesis.check
def refused_request_changes_nothing(ctx, response, case):
    """A 4xx answer: the data must be as before the request."""
    if not 400 <= response.status_code < 500:
        return None
    before = getattr(_state, "before", None)
    if before is None:
        return None
    after = fingerprint()
    _state.before = None
    with _lock:
        _statuses["refusals_checked"] += 1
    if after == before:
        _state.unchanged = after
    else:
        raise AssertionError(
            f"{case.method} {case.formatted_path} was refused with "
            f"{response.status_code} but changed: {', '.join(_diff(before, after))}"
        )
    return None


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    params = dict(path_parameters or {})
    if "name" in params:
        return st.sampled_from([params, {**params, "name": FUZZ}])
    return st.just(params)


@atexit.register
def _write_summary():
    if SUMMARY_FILE:
        with open(SUMMARY_FILE, "w") as f:
            json.dump(dict(_statuses), f)


if __name__ == "__main__":
    # `python hooks.py`: seed both collections before the run.
    seed(SENTINEL, SENTINEL_CONFIG)
    seed(FUZZ, FUZZ_CONFIG)
