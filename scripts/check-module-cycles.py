#!/usr/bin/env python3
"""Fails when two modules of a crate import each other, directly or round a loop.

For every crate of the workspace it reads each `src/**/*.rs` file, takes
every `crate::…`, `super::…` and `self::…` path outside comments (also inside
grouped `use a::{b, c::d}` lists), resolves it to the deepest module that
exists, and draws an edge between the two *sibling* modules under the lowest
common ancestor of the two files (so `node::replica` → `node::replicator`, or
`server` → `controller`). A child using its parent's items is no edge: that
is how Rust modules are layered. Any loop among siblings is printed and the
script exits 1. Unit-test modules at the end of a file are left out.

Usage: scripts/check-module-cycles.py [crate-dir ...]   (default: every member)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")


def modules_of(src: Path) -> dict:
    """Module path (tuple) -> file."""
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            parts = []
        if parts and parts[0] == "bin":
            continue
        mods[tuple(parts)] = f
    return mods


def strip_comments(text: str) -> str:
    # A file's unit tests (`#[cfg(test)] mod tests { … }`, at its end here)
    # may reach into any module; only the shipped code's layering counts.
    text = re.split(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", text)[0]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def expand_groups(text: str) -> list:
    """`use crate::{a::X, b}` -> ["crate::a::X", "crate::b"] (one level)."""
    out = []
    for m in re.finditer(r"\b(crate|super|self)((?:::[A-Za-z_]\w*)*)::\{([^{}]*)\}", text):
        head = m.group(1) + m.group(2)
        for item in m.group(3).split(","):
            item = item.strip().split(" as ")[0]
            if item:
                out.append(f"{head}::{item}")
    return out


def resolve(path: str, here: tuple, mods: dict) -> tuple:
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    else:
        # `here` is the module of the file; super goes one level up from it.
        base = here
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
        rest = parts
    best = base
    for i in range(1, len(rest) + 1):
        cand = base + tuple(rest[:i])
        if cand in mods:
            best = cand
        else:
            break
    return best


def sibling_edge(a: tuple, b: tuple):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    if n == len(a) or n == len(b):
        return None  # one contains the other
    return a[: n + 1], b[: n + 1]


def find_cycles(edges: dict) -> list:
    cycles, state, stack = [], {}, []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(edges):
        if v not in state:
            visit(v)
    return cycles


def check(crate: Path) -> list:
    src = crate / "src"
    if not src.is_dir():
        return []
    mods = modules_of(src)
    edges = {}
    for here, f in mods.items():
        text = strip_comments(f.read_text())
        paths = [m.group(0) for m in PATH_RE.finditer(text) if not m.group(0).endswith("{")]
        paths += expand_groups(text)
        for p in paths:
            target = resolve(p.rstrip(":"), here, mods)
            e = sibling_edge(here, target)
            if e:
                edges.setdefault(e[0], set()).add(e[1])
    name = crate.name
    return [f"{name}: " + " -> ".join("::".join(m) for m in c) for c in find_cycles(edges)]


def main() -> int:
    if len(sys.argv) > 1:
        crates = [Path(a) for a in sys.argv[1:]]
    else:
        members = re.search(r"members\s*=\s*\[(.*?)\]", (ROOT / "Cargo.toml").read_text(), re.S)
        crates = [ROOT / m for m in re.findall(r'"([^"]+)"', members.group(1))]
    found = [c for crate in crates for c in check(crate)]
    for c in found:
        print(f"module cycle: {c}")
    if found:
        return 1
    print(f"check-module-cycles: ok ({len(crates)} crates, no two modules import each other)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
