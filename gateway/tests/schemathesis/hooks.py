"""Schemathesis hooks for gateway/tests/schemathesis/check.sh.

- Check `refused_request_changes_nothing`: before every generated request a
  fingerprint of everything the API lets a client change is taken (the
  collections with their configuration and every point, payload and vector
  read with `consistency=all`; the aliases; the rebalancing settings; the
  nodes and their states); after every 4xx answer it is taken again and
  must be equal. A refused request that changed anything fails the run.
- Path parameters: half the generated `{name}`s are replaced by the
  collection the run may change (FUZZ_COLLECTION), so that the requests
  reach the handlers and not only the "no such collection" answer.
  SENTINEL_COLLECTION is never named: any change to it is caught by the
  fingerprint. Node ids of the routes that take a node out of the cluster
  (drain, remove) are moved to ids no node has, so that the run cannot
  dismantle the cluster it tests: their refusals are exercised here, their
  successes by gateway/tests/cluster (operator.rs).
- Counters of answers by status class, written to SUMMARY_FILE at exit for
  the script's summary line.
"""

import atexit
import json
import os
import threading
from collections import Counter

import requests
import schemathesis
from hypothesis import strategies as st

URL = os.environ["GATEWAY_URL"].rstrip("/")
FUZZ = os.environ.get("FUZZ_COLLECTION", "fuzz")
SUMMARY_FILE = os.environ.get("SUMMARY_FILE")

# Node ids at or above this are never registered by the test cluster.
UNREGISTERED_NODE_BASE = 1_000_000
NODE_REMOVING_PATHS = ("/api/cluster/nodes/{id}", "/cluster/peer/{id}")

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
    """Everything a request could change, as one comparable value."""
    state = {}
    names = sorted(c["name"] for c in _get("/collections")["collections"])
    state["collections"] = names
    for name in names:
        info = _get(f"/collections/{name}")
        state[f"{name}/params"] = info["config"]["params"]
        state[f"{name}/hnsw"] = info["config"]["hnsw_config"]
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
    state["aliases"] = sorted(
        (a["alias_name"], a["collection_name"]) for a in _get("/aliases")["aliases"]
    )
    state["settings"] = _get("/api/cluster/settings")
    state["nodes"] = sorted((n["id"], n["state"]) for n in _get("/api/cluster/nodes")["nodes"])
    return state


def _diff(before, after):
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k) != after.get(k)]


@schemathesis.hook
def before_call(context, case, kwargs):
    _state.before = fingerprint()


@schemathesis.hook
def after_call(context, case, response):
    with _lock:
        _statuses[f"{response.status_code // 100}xx"] += 1
        _statuses["total"] += 1


@schemathesis.check
def refused_request_changes_nothing(ctx, response, case):
    """A 4xx answer: the data must be as before the request."""
    if not 400 <= response.status_code < 500:
        return None
    before = getattr(_state, "before", None)
    if before is None:
        return None
    after = fingerprint()
    if after != before:
        raise AssertionError(
            f"{case.method} {case.formatted_path} was refused with "
            f"{response.status_code} but changed: {', '.join(_diff(before, after))}"
        )
    return None


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    params = dict(path_parameters or {})
    path = context.operation.path if context.operation else ""
    if "id" in params and path.startswith(NODE_REMOVING_PATHS) and path != "/api/cluster/nodes":
        raw = params["id"]
        if isinstance(raw, int) and raw >= 0:
            params["id"] = UNREGISTERED_NODE_BASE + raw % UNREGISTERED_NODE_BASE
    if "name" in params:
        return st.sampled_from([params, {**params, "name": FUZZ}])
    return st.just(params)


@atexit.register
def _write_summary():
    if SUMMARY_FILE:
        with open(SUMMARY_FILE, "w") as f:
            json.dump(dict(_statuses), f)
