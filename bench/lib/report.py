"""Renders the harness's raw results (a dict, as saved under bench/.work/results) as BENCHMARKS.md."""


def ms(v):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def num(v):
    if v is None:
        return "–"
    return f"{v:,.0f}"


def mmm(s, f=ms, unit=""):
    """median [min–max]"""
    if not s:
        return "–"
    if s["n"] == 1:
        return f"{f(s['median'])}{unit}"
    return f"{f(s['median'])}{unit} [{f(s['min'])}–{f(s['max'])}]"


def ratio(a, b):
    if not a or not b or not a.get("median") or not b.get("median"):
        return "–"
    return f"{a['median'] / b['median']:.2f}×"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


def render_warm(t, headroom=False):
    ref = next((r for r in t["rows"] if r["label"] == t.get("ref") and "na" not in r), None)
    if headroom:
        header = ["target", "throughput, req/s", "p50 ms", "p99 ms", "loadgen CPU (of 1 core)",
                  "client capacity, req/s per core (throughput ÷ CPU)", "errors"]
    else:
        header = ["target", "throughput, req/s", "p50 ms", "p99 ms", "errors / requests",
                  "Strato p50 ÷ this p50", "Strato req/s ÷ this req/s"]
    rows = []
    for r in t["rows"]:
        if "na" in r:
            rows.append([r["label"], r["na"]] + [""] * (len(header) - 2))
            continue
        if r.get("failed") and not r.get("rps"):
            rows.append([r["label"], f"failed: {r['failed'][:120]}"] + [""] * (len(header) - 2))
            continue
        err = f"{r['errors']} / {r['requests']}"
        if r["errors"] and r.get("first_error"):
            err += f" (first: {r['first_error'][:60]})"
        if headroom:
            cpu = r.get("loadgen_cpu")
            rows.append([r["label"], mmm(r["rps"], num), mmm(r["p50"]), mmm(r["p99"]),
                         f"{cpu['median']:.2f}" if cpu else "–",
                         num(r["rps"]["median"] / cpu["median"]) if cpu and cpu["median"] and r.get("rps") else "–", err])
        else:
            is_ref = ref is not None and r is ref
            rows.append([r["label"], mmm(r["rps"], num), mmm(r["p50"]), mmm(r["p99"]), err,
                         "(reference)" if is_ref else (ratio(ref["p50"], r["p50"]) if ref else "–"),
                         "(reference)" if is_ref else (ratio(ref["rps"], r["rps"]) if ref else "–")])
    return table(header, rows)


def render_samples(t):
    ref = next((r for r in t["rows"] if r["label"] == t.get("ref") and "na" not in r), None)
    header = ["what", "samples", "median ms", "p99 ms", "min–max ms", "Strato ÷ this (median)"]
    rows = []
    for r in t["rows"]:
        if "na" in r:
            rows.append([r["label"], r["na"], "", "", "", ""])
            continue
        s = r.get("samples")
        if not s:
            rows.append([r["label"], "no successful sample" + (f" ({r.get('first_error')})" if r.get("first_error") else ""),
                         "", "", "", ""])
            continue
        n = f"{s['n']}" + (f" (+{r['errors']} failed: {r.get('first_error')})" if r.get("errors") else "")
        rows.append([r["label"], n, ms(s["median"]), ms(s["p99"]), f"{ms(s['min'])}–{ms(s['max'])}",
                     "(reference)" if r is ref else (ratio(ref["samples"], s) if ref else "–")])
    return table(header, rows)


def render_burst(t):
    ref = next((r for r in t["rows"] if r["label"] == t.get("ref")), None)
    header = ["target", "last response ms (median [min–max])", "p50 ms", "ok / sent", "errors", "instances",
              "Strato ÷ this (last response)"]
    rows = []
    for r in t["rows"]:
        if "na" in r:
            rows.append([r["label"], r["na"]] + [""] * (len(header) - 2))
            continue
        err = str(r["errors"]) + (f" (first: {r['first_error'][:60]})" if r["errors"] and r.get("first_error") else "")
        inst = mmm(r["instances"], lambda v: f"{v:.0f}") if r.get("instances") else "–"
        rows.append([r["label"], mmm(r["last"]), mmm(r["p50"]), f"{r['ok']} / {r['sent']}", err, inst,
                     "(reference)" if r is ref else (ratio(ref["last"], r["last"]) if ref else "–")])
    return table(header, rows)


def render_cp(t):
    header = ["functions", "create rate, functions/s", "GetFunction p50 ms", "GetFunction p99 ms",
              "ListFunctions first page p50 ms", "ListFunctions next page p50 ms", "errors", "data dir"]
    rows = []
    for r in t["rows"]:
        rows.append([r["label"], f"{r['create_rps']:.0f}", mmm(r["get"]), mmm(r["get_p99"]), mmm(r["list"]),
                     mmm(r["list2"]), r["errors"], f"{r['db'] / 2**20:.0f} MiB"])
    return table(header, rows)


def render_kv(t):
    return table(["", ""], [[r["label"], r["value"]] for r in t["rows"]])


def render_columns(t):
    """A table whose rows are dicts keyed by the table's `columns`."""
    return table(t["columns"], [[r.get(c, "") for c in t["columns"]] for r in t["rows"]])


def render(res):
    m = res["machine"]
    lines = [
        "# Strato benchmarks",
        "",
        "Written by `bench/run` (see bench/README.md); do not edit by hand. The harness reports, it does not judge.",
        "",
        f"- Run: {res['started']}, mode **{res['mode']}**, {res['seconds']:.0f} s in all.",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB memory, kernel {m['kernel']}, "
        f"{m['os']}, cgroup {m['cgroup']}.",
        f"- Load average (1/5/15 min) at start: {res['load_before']}; at end: {res['load_after']}.",
    ]
    if res["pinned"]:
        lines.append("- CPU placement: every system under test (Strato and its sandboxes, each peer and its "
                     "children) runs pinned to CPU 0 with `taskset`, the load generator to CPU 1, so each "
                     "server gets the same single core and the client never competes with it.")
    else:
        lines.append("- CPU placement: not pinned (`--no-pin` or a 1-core machine).")
    lines += [
        "- Figures are `median [min–max]` over the repeated runs of each scenario (per-run p50 and p99 come "
        "from HDR histograms of every request in the run); ratios compare medians measured in the same run, "
        "runs interleaved target by target so drift hits every target alike.",
        "- Strato runs with its defaults (stem cells on, two per runtime); the cold-start scenario also "
        "shows it with `--stem-cells 0`.",
        "",
    ]
    note = res.get("noise_note")
    if note:
        lines += [f"> {note}", ""]
    lines += ["## Versions", "", table(["component", "version"], [[k, v or "–"] for k, v in res["versions"].items()]), ""]
    for sc in res["scenarios"]:
        lines += [f"## {sc['title']} (`{sc['name']}`)", ""]
        if sc.get("about"):
            lines += [f"_{sc['about']}_", ""]
        if sc.get("from_run"):
            lines += [f"Measured in the earlier run of {sc['from_run']} (this report merged it; "
                      "see `--merge-with` in bench/README.md).", ""]
        if sc.get("error"):
            lines += [f"The scenario failed: `{sc['error']}`", ""]
            continue
        if sc.get("unavailable"):
            lines += [f"**Not available**: {sc['unavailable']}", ""]
            continue
        for t in sc.get("tables", []):
            lines += [f"**{t['title']}**", ""]
            kind = t["kind"]
            if kind == "warm":
                lines.append(render_warm(t))
            elif kind == "headroom":
                lines.append(render_warm(t, headroom=True))
            elif kind == "samples":
                lines.append(render_samples(t))
            elif kind == "burst":
                lines.append(render_burst(t))
            elif kind == "cp":
                lines.append(render_cp(t))
            elif kind == "table":
                lines.append(render_columns(t))
            else:
                lines.append(render_kv(t))
            lines.append("")
        for n in sc.get("notes", []):
            lines += [n, ""]
        lines += [f"_{sc['seconds']:.0f} s; load average after: {sc['load_after']}._", ""]
    return "\n".join(lines)
