"""The DESIGN §9 figures of one bench/run: throughput as a ratio to limit-proxy's (and to
direct), latency Rotor adds over the mock next to what limit-proxy adds. Reads the run's
result lines ("NAME rps p50_ms p99_ms ok%") on stdin, prints a Markdown table."""

import sys

r = {}
for line in sys.stdin:
    f = line.split()
    if len(f) == 5 and not f[0].startswith("rss-"):
        r[f[0]] = [float(x) for x in f[1:]]


def ratio(a, b):
    if a in r and b in r and r[b][0]:
        return f"{100 * r[a][0] / r[b][0]:.1f} %"
    return "n/a"


def added(run, col):
    """What `run` adds over the mock's run of the same load (col 1: p50, 2: p99), ms."""
    base = "mock-" + run.split("-")[-1]
    if run not in r or base not in r:
        return float("nan")
    return r[run][col] - r[base][col]


print("| figure | value |")
print("|---|---|")
limit_p50 = added("limit-one", 1)
print(f"| limit-proxy: saturation / direct | {ratio('limit-sat', 'mock-sat')} |")
print(f"| limit-proxy: one connection, p50 added | {limit_p50:.3f} ms |")
print(f"| limit-proxy: 2,000/s, p99 added | {added('limit-rate', 2):.3f} ms |")
paired = {}
for mode in ("memory", "redis"):
    print(f"| {mode}: saturation / limit-proxy | {ratio(f'rotor-{mode}-sat', 'limit-sat')} |")
    print(f"| {mode}: streaming / limit-proxy | {ratio(f'rotor-{mode}-stream', 'limit-stream')} |")
    for kind, label in (("sat", "saturation"), ("stream", "streaming")):
        pairs = [(f"rotor-{mode}-pair{kind}-{i}", f"limit-{mode}-pair{kind}-{i}") for i in (1, 2, 3)]
        if all(a in r and b in r and r[b][0] for a, b in pairs):
            each = sorted(100 * r[a][0] / r[b][0] for a, b in pairs)
            shown = ", ".join(f"{x:.1f}" for x in each)
            paired[(mode, kind)] = each[1]
            print(
                f"| {mode}: {label} / limit-proxy, paired (median of 3 back-to-back pairs) | "
                f"**{each[1]:.1f} %** ({shown}) |"
            )
    ab = [f"rotor-{mode}-ab-{k}-{i}" for k in ("plain", "limited") for i in (1, 2)]
    if all(x in r for x in ab):
        plain = r[ab[0]][0] + r[ab[1]][0]
        limited = r[ab[2]][0] + r[ab[3]][0]
        print(
            f"| {mode}: key with rpm, tpm and a budget / plain key, saturation (ABBA) | "
            f"{100 * limited / plain:.1f} % |"
        )
    one = added(f"rotor-{mode}-one", 1)
    times = f"{one / limit_p50:.2f}x" if limit_p50 > 0 else "n/a"
    print(f"| {mode}: one connection, p50 added | {one:.3f} ms ({times} limit-proxy's) |")
    print(f"| {mode}: 2,000/s, p99 added | {added(f'rotor-{mode}-rate', 2):.3f} ms |")
print(f"| Rotor in-process: saturation / direct | {ratio('rotor-memory-sat', 'mock-sat')} |")
print(f"| Redis / in-process, saturation | {ratio('rotor-redis-sat', 'rotor-memory-sat')} |")
if ("memory", "sat") in paired and ("redis", "sat") in paired:
    # Each mode against a limit-proxy run next to it, so the machine's drift between the two
    # modes' runs (minutes apart) cancels.
    both = 100 * paired[("redis", "sat")] / paired[("memory", "sat")]
    print(f"| Redis / in-process, saturation, from the paired medians | **{both:.1f} %** |")
