#!/usr/bin/env python3
"""Drives headless Chromium through /dashboard and checks what it shows
(called by check.sh, which starts the cluster).

    check_page.py URL --nodes 3 --replicas 6 --primaries 3 --points dash=300 \
        --kill-node 3 --kill-pid PID --screenshot target/dashboard.png

One page stays open for the whole check, as an operator's would:
  1. once it has refreshed, its DOM must show every node alive, every
     replica and primary, each shard's term and each collection's points;
  2. the node's process is SIGKILLed; within --dead-within seconds the same
     page, polling on its own, must show that node dead and the
     alive -> dead change in its event list;
  3. a screenshot of it is written.

Chromium is driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages ending in NUL on fds 3 and 4), so
only the standard library is needed. The DOM is read from the data-*
attributes the page writes (see gateway/src/api/dashboard.html). Exits
non-zero naming what is missing when the page shows nothing or something
else.
"""
import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser


class Dom(HTMLParser):
    """The dashboard's state as its DOM shows it."""

    def __init__(self, html):
        super().__init__()
        self.body = {}
        self.nodes = {}
        self.shards = []
        self.collections = {}
        self.events = []
        self.error_shown = False
        self.error_text = []
        self._in_error = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.body = a
        elif tag == "tr" and "node" in classes:
            self.nodes[a.get("data-node-id")] = a
        elif tag == "tr" and "shard" in classes:
            self.shards.append(a)
        elif tag == "tr" and "collection" in classes:
            self.collections[a.get("data-collection")] = a
        elif tag == "li" and "event" in classes:
            self.events.append(a)
        if a.get("id") == "error":
            self._in_error = True
            self.error_shown = "shown" in classes

    def handle_endtag(self, tag):
        if tag == "div":
            self._in_error = False

    def handle_data(self, data):
        if self._in_error:
            self.error_text.append(data)

    def polls(self):
        return int(self.body.get("data-polls") or 0)

    def problems(self, args, dead=(), transitions=()):
        out = []
        if self.polls() < 1 or not self.body.get("data-refreshed"):
            out.append(f"the page never finished a refresh (data-polls={self.polls()})")
        if self.error_shown:
            out.append("error banner shown: " + "".join(self.error_text).strip())
        if len(self.nodes) != args.nodes:
            out.append(f"{len(self.nodes)} nodes shown, want {args.nodes}")
        for node, a in sorted(self.nodes.items()):
            want = "dead" if node in dead else "alive"
            if a.get("data-state") != want:
                out.append(f"node {node} shown {a.get('data-state')}, want {want}")
        replicas = sum(int(a.get("data-replicas") or 0) for a in self.nodes.values())
        primaries = sum(int(a.get("data-primaries") or 0) for a in self.nodes.values())
        if replicas != args.replicas:
            out.append(f"{replicas} replicas across the nodes, want {args.replicas}")
        if primaries != args.primaries:
            out.append(f"{primaries} primaries across the nodes, want {args.primaries}")
        if len(self.shards) != args.primaries:
            out.append(f"{len(self.shards)} shard rows, want {args.primaries}")
        for s in self.shards:
            if not s.get("data-term"):
                out.append(f"shard {s.get('data-shard')} shown without a term")
        for spec in args.points:
            name, count = spec.split("=")
            shown = self.collections.get(name, {}).get("data-points")
            if shown != count:
                out.append(f"collection {name} shows {shown!r} points, want {count}")
        for node, frm, to in transitions:
            if not any(e.get("data-node-id") == node and e.get("data-from") == frm
                       and e.get("data-to") == to for e in self.events):
                out.append(f"no event 'node {node} {frm} -> {to}' (events: {self.events})")
        return out


class Browser:
    """Headless Chromium and one page, over the DevTools pipe."""

    def __init__(self, profile):
        cmd_r, cmd_w = os.pipe()  # we write commands, Chromium reads fd 3
        out_r, out_w = os.pipe()  # Chromium writes fd 4, we read

        def fds():
            # Copies first: a pipe end may itself be fd 3 or 4, and
            # dup2 onto itself would keep its close-on-exec flag.
            r, w = os.dup(cmd_r), os.dup(out_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
             "--disable-extensions", "--disable-dev-shm-usage", "--window-size=1400,1100",
             f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            # Its own process group: close() stops the renderer and helper
            # processes too, which otherwise go on writing to the profile
            # while it is being removed.
            preexec_fn=fds, close_fds=False, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "..", "chrome.log"), "w"))
        os.close(cmd_r)
        os.close(out_w)
        self.w = os.fdopen(cmd_w, "wb", buffering=0)
        self.r = os.fdopen(out_r, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.w.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = self.r.read(1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed the DevTools pipe during {method}")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            # Anything else is an event we did not ask for.

    def open(self, url):
        target = self.call("Target.createTarget", {"url": url}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True}, session=False)["sessionId"]

    def html(self):
        r = self.call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                           "returnByValue": True})
        return r["result"].get("value", "")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def wait_for(browser, what, check, within):
    """Polls the page's DOM until `check(dom)` lists no problem."""
    deadline = time.monotonic() + within
    while True:
        dom = Dom(browser.html())
        problems = check(dom)
        if not problems:
            return dom
        if time.monotonic() > deadline:
            print(f"dashboard check failed {what}:\n  " + "\n  ".join(problems), file=sys.stderr)
            sys.exit(1)
        time.sleep(0.25)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("--primaries", type=int, required=True)
    p.add_argument("--points", action="append", default=[], help="collection=count")
    p.add_argument("--kill-node", required=True, help="the node id the page must show dead")
    p.add_argument("--kill-pid", type=int, required=True, help="that node's process")
    p.add_argument("--dead-within", type=float, default=20.0)
    p.add_argument("--screenshot", required=True)
    args = p.parse_args()

    # A helper process of Chromium's may still hold files for a moment.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        profile = os.path.join(tmp, "profile")
        os.mkdir(profile)
        browser = Browser(profile)
        try:
            browser.open(args.url)
            before = wait_for(browser, "before the kill",
                              lambda d: d.problems(args), within=15)
            polls = before.polls()
            os.kill(args.kill_pid, signal.SIGKILL)
            node = args.kill_node
            after = wait_for(browser, f"after killing node {node}",
                             lambda d: d.problems(args, dead=(node,),
                                                  transitions=[(node, "alive", "dead")]),
                             within=args.dead_within)
            os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
            browser.screenshot(args.screenshot)
        finally:
            browser.close()
    print(f"dashboard ok: {args.nodes} nodes alive at refresh {polls}, node {node} shown "
          f"dead by refresh {after.polls() + 1}; screenshot {args.screenshot}")


if __name__ == "__main__":
    main()
