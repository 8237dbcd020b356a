#!/usr/bin/env python3
"""Prints the relay's module dependency graph (which top-level module of relay/src uses which)
and its cycles; exits 1 if there is any. A module "uses" another when its code (not its
comments) names `crate::<other>`, in a `use` or in a path.

    scripts/modules.py [--dot]      (--dot: Graphviz instead of lines)
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "relay" / "src"


def top_module(path):
    rel = path.relative_to(SRC).with_suffix("")
    parts = rel.parts
    return "lib" if parts[0] in ("lib", "main") else parts[0]


def graph():
    modules = {top_module(p) for p in SRC.rglob("*.rs")} - {"lib"}
    edges = {m: set() for m in modules}
    for path in SRC.rglob("*.rs"):
        me = top_module(path)
        if me == "lib":
            continue
        # Comments (doc links among them) name modules without using them.
        text = re.sub(r"//[^\n]*", "", path.read_text())
        # Paths in braces: `use crate::{a, b::c}`.
        named = set(re.findall(r"\bcrate::(\w+)", text))
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            named |= {g.strip().split("::")[0] for g in group.split(",") if g.strip()}
        for other in named:
            if other in modules and other != me:
                edges[me].add(other)
    return edges


def cycles(edges):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    edges = graph()
    if "--dot" in sys.argv:
        print("digraph relay {")
        for m in sorted(edges):
            for o in sorted(edges[m]):
                print(f'  "{m}" -> "{o}";')
        print("}")
    else:
        for m in sorted(edges):
            print(f"{m} -> {', '.join(sorted(edges[m])) or '(nothing)'}")
    found = cycles(edges)
    for c in found:
        print(f"cycle: {' ⇄ '.join(c)}")
    if found:
        print(f"{len(found)} cycle(s) among the relay's modules")
        return 1
    print("no cycle among the relay's modules")
    return 0


sys.exit(main())
