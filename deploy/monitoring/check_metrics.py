#!/usr/bin/env python3
"""Every metric the alert rules and the Grafana dashboard query is one our
services export.

Exported names come from the code: the first argument of each
`counter!` / `gauge!` / `histogram!` call in the services' sources (a
string literal, or a `const NAME: &str = "..."` of the same crate). How a
histogram appears follows the recorder that renders it: the gateway's
recorder has buckets for names ending in `_seconds` (and
`gateway_fanout_shards`), so histograms recorded in the gateway process
(crates gateway, transport, meta-client) appear as `_bucket` / `_sum` /
`_count`; the storage node's and meta-service's recorders have no buckets,
so theirs are summaries: the name itself (with `quantile`), `_sum`,
`_count`.

Usage: check_metrics.py <alerts.yml> <grafana-dashboard.json>
"""
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICE_CRATES = ["gateway", "storage-node", "meta-service", "meta-client", "transport", "membership"]
GATEWAY_PROCESS = {"gateway", "transport", "meta-client"}
MACRO = re.compile(r'\b(counter|gauge|histogram)!\(\s*(?:"([a-zA-Z_:][a-zA-Z0-9_:]*)"|([A-Z][A-Z0-9_]*))')
CONST = re.compile(r'const\s+([A-Z][A-Z0-9_]*)\s*:\s*&str\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')


def exported():
    names = {}
    for crate in SERVICE_CRATES:
        files = [p for p in (ROOT / crate / "src").rglob("*.rs")]
        text = "\n".join(p.read_text() for p in files)
        consts = dict(CONST.findall(text))
        for kind, literal, const in MACRO.findall(text):
            name = literal or consts.get(const)
            if name is None:
                raise SystemExit(f"{crate}: {kind}!({const}): constant not found")
            forms = {name}
            if kind == "histogram":
                forms = {name, f"{name}_sum", f"{name}_count"}
                bucketed = name.endswith("_seconds") or name == "gateway_fanout_shards"
                if crate in GATEWAY_PROCESS and bucketed:
                    forms.add(f"{name}_bucket")
            for f in forms:
                names.setdefault(f, set()).add(crate)
    return names


KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}


def metric_names(expr):
    """Metric names in a PromQL expression."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)           # string literals
    e = re.sub(r"\{[^}]*\}", " ", e)                         # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                        # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    out = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue  # a keyword or a function
        out.add(word)
    return out


def main():
    rules_file, dashboard_file = sys.argv[1], sys.argv[2]
    queries = []
    for group in yaml.safe_load(Path(rules_file).read_text())["groups"]:
        for rule in group["rules"]:
            queries.append((f"{rules_file}: {rule.get('alert') or rule.get('record')}", rule["expr"]))
    dashboard = json.loads(Path(dashboard_file).read_text())
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            queries.append((f"{dashboard_file}: panel {panel['title']!r}", t["expr"]))
    names = exported()
    missing = []
    used = set()
    for where, expr in queries:
        found = metric_names(expr)
        if not found:
            missing.append(f"{where}: no metric in {expr!r}")
        for n in sorted(found):
            used.add(n)
            if n not in names:
                missing.append(f"{where}: `{n}` is exported by no service")
    if missing:
        print("\n".join(f"FAIL {m}" for m in missing), file=sys.stderr)
        sys.exit(1)
    print(f"metrics: {len(queries)} queries use {len(used)} metric names, all exported:")
    for n in sorted(used):
        print(f"  {n} ({', '.join(sorted(names[n]))})")


if __name__ == "__main__":
    main()
