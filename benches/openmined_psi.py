#!/usr/bin/env python3
"""Per-element server cost of OpenMined PSI on this machine, for comparison with vouchsafe.

vouchsafe's bar (DESIGN.md section 7): one voucher open on the server costs at most 0.5x the
per-element server time of OpenMined PSI. OpenMined's server work per *client* element is
`server.ProcessRequest(request)`: one P-256 scalar multiplication per element of the client's
(already hashed and blinded) request. Its work per *server* element is `CreateSetupMessage`:
hash-to-curve plus one scalar multiplication per server element, then the filter (GCS by default).

Usage:
    pip install openmined-psi        # 2.0.x, module private_set_intersection.python
    python3 benches/openmined_psi.py [--n 2000] [--server-n 2000] [--reps 7]

Prints one JSON line on stdout:
    {"impl": "openmined-psi", "version": ..., "n": N, "per_element_us": <ProcessRequest, median wall>,
     "per_element_us_min": <fastest repetition>, "per_element_cpu_us": <median CPU time>,
     "setup_per_element_us": <CreateSetupMessage with GCS, median>,
     "setup_raw_per_element_us": <CreateSetupMessage with the RAW structure, median>, ...}
Exits with status 3 (and a message on stderr) if the module is not installed.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="client request size (elements)")
    parser.add_argument("--server-n", type=int, default=2000, help="server set size for the setup timing")
    parser.add_argument("--reps", type=int, default=7, help="repetitions; the median is reported")
    args = parser.parse_args()
    if args.n < 1 or args.server_n < 1 or args.reps < 1:
        print("error: --n, --server-n and --reps must be positive", file=sys.stderr)
        return 2

    try:
        import private_set_intersection.python as psi
    except ImportError:
        print(
            "error: OpenMined PSI is not installed; run `pip install openmined-psi` "
            "(module private_set_intersection.python)",
            file=sys.stderr,
        )
        return 3
    version = getattr(psi, "__version__", "unknown")

    reveal_intersection = False
    fpr = 1e-9
    server_items = ["server-element-%d" % i for i in range(args.server_n)]
    client_items = ["client-element-%d" % i for i in range(args.n)]

    server = psi.server.CreateWithNewKey(reveal_intersection)
    client = psi.client.CreateWithNewKey(reveal_intersection)
    request = client.CreateRequest(client_items)

    # Warm-up (page in code and tables), then the measured repetitions.
    server.ProcessRequest(request)
    process, process_cpu = [], []
    for _ in range(args.reps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        response = server.ProcessRequest(request)
        process.append(time.perf_counter() - t0)
        process_cpu.append(time.process_time() - c0)

    setup_timings = {}
    for name, ds in (("gcs", psi.DataStructure.GCS), ("raw", psi.DataStructure.RAW)):
        server.CreateSetupMessage(fpr, args.n, server_items[: min(64, args.server_n)], ds)
        runs = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            setup = server.CreateSetupMessage(fpr, args.n, server_items, ds)
            runs.append(time.perf_counter() - t0)
        setup_timings[name] = (runs, setup)

    # Sanity: the protocol actually ran end to end (the sets are disjoint).
    size = client.GetIntersectionSize(setup_timings["gcs"][1], response)
    if size != 0:
        print("error: unexpected intersection size %d for disjoint sets" % size, file=sys.stderr)
        return 1

    def per_element_us(runs, count):
        return statistics.median(runs) / count * 1e6

    print(
        json.dumps(
            {
                "impl": "openmined-psi",
                "version": version,
                "curve": "P-256",
                "n": args.n,
                "server_n": args.server_n,
                "reps": args.reps,
                "per_element_us": round(per_element_us(process, args.n), 3),
                # Under load from other processes the wall clock is inflated; the minimum and the
                # process CPU time (ProcessRequest is single-threaded) are less disturbed.
                "per_element_us_min": round(min(process) / args.n * 1e6, 3),
                "per_element_cpu_us": round(per_element_us(process_cpu, args.n), 3),
                "setup_per_element_us": round(per_element_us(setup_timings["gcs"][0], args.server_n), 3),
                "setup_raw_per_element_us": round(per_element_us(setup_timings["raw"][0], args.server_n), 3),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
