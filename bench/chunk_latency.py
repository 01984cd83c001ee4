"""Per-chunk relay latency of a stream (DESIGN §9: each chunk relayed within 1 ms of its
arrival from upstream). The mock stamps every content chunk with the wall-clock time it sent
it (`sent_ns`); the reader stamps its arrival. The same spaced stream (20 chunks, 50 ms apart)
is read straight from the mock and through Rotor; the difference of the two latency
distributions is what Rotor adds per chunk. Used by bench/run."""

import http.client
import json
import sys
import time


def latencies(port: int, key: str, model: str) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"content-type": "application/json", "authorization": f"Bearer {key}"})
    resp = conn.getresponse()
    out, buf = [], b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        now = time.time_ns()
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if event.startswith(b"data: {"):
                sent = json.loads(event[6:]).get("sent_ns")
                if sent:
                    out.append((now - sent) / 1e6)
    conn.close()
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main() -> None:
    mock_port, rotor_port, rotor_key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    direct, through = [], []
    for _ in range(5):
        direct += latencies(mock_port, "sk_gap50_chunks20", "mock")
        through += latencies(rotor_port, rotor_key, "chunky")
    print(
        f"stream chunk latency from the mock's send to the client (ms, {len(through)} chunks): "
        f"direct p50 {pct(direct, 0.5):.3f} / p99 {pct(direct, 0.99):.3f}; "
        f"through Rotor p50 {pct(through, 0.5):.3f} / p99 {pct(through, 0.99):.3f}; "
        f"added p50 {pct(through, 0.5) - pct(direct, 0.5):.3f}, p99 {pct(through, 0.99) - pct(direct, 0.99):.3f}"
    )


if __name__ == "__main__":
    main()
