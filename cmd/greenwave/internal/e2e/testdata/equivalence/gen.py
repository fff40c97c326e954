#!/usr/bin/env python3
"""Generates the synthetic fixtures of TestLiveEqualsEval (run from this directory; deterministic).

scats.csv   a synthetic file in the Boroondara SCATS layout (two header rows, one row per approach-day of 96
            fifteen-minute counts): site 9001 with two approaches, three days. Synthetic because the licence of
            the real 2006 extract is not stated.
csv60.csv   canonical readings CSV, intersection M60 (60-s windows), two approaches, eight hours.
csv300.csv  canonical readings CSV, intersection F300 (300-s windows), two approaches, one day.
"""
import math
import random

rnd = random.Random(11)


def profile(h):
    """Relative demand at hour of day h (a morning and an evening peak)."""
    return 0.1 + 0.5 * math.exp(-(h - 8) ** 2 / 2) + 0.4 * math.exp(-(h - 17) ** 2 / 3)


with open("scats.csv", "w", newline="") as f:
    head = ["", "", "", "", "", "", "", "", "", "Start Time"] + [f"{k // 4}:{15 * (k % 4):02d}" for k in range(96)] + ["", "", ""]
    f.write("\ufeff" + ",".join(head) + "\r\n")
    cols = ["SCATS Number", "Location", "CD_MELWAY", "NB_LATITUDE", "NB_LONGITUDE", "HF VicRoads Internal", "VR Internal Stat",
            "VR Internal Loc", "NB_TYPE_SURVEY", "Date"] + [f"V{k:02d}" for k in range(96)] + ["", "", ""]
    f.write(",".join(cols) + "\r\n")
    for i, loc in enumerate(["FOO_RD N of BAR_ST", "FOO_RD S of BAR_ST"]):
        for day in (1, 2, 3):
            vals = [str(max(0, round(300 * (1 + 0.2 * i) * profile(k / 4) * (1 + 0.1 * rnd.gauss(0, 1))))) for k in range(96)]
            row = ["9001", loc, "000 A0", "-37.8", "145.0", str(9000 + i), "1", "1", "1", f"{day}/10/2006"] + vals + ["", "", ""]
            f.write(",".join(row) + "\r\n")


def canonical(name, inter, interval, start_h, hours):
    with open(name, "w") as f:
        f.write("observed_at,intersection_id,approach_id,detector_id,interval_s,count,occupancy_ratio,speed_kmh\n")
        n = hours * 3600 // interval
        for k in range(n):
            t = start_h * 3600 + k * interval
            h = (t / 3600) % 24
            stamp = f"2024-03-{4 + t // 86400:02d}T{(t // 3600) % 24:02d}:{(t // 60) % 60:02d}:{t % 60:02d}Z"
            for i, ap in enumerate(["N", "E"]):
                flow = 1500 * (1 + 0.3 * i) * profile(h) * (1 + 0.1 * rnd.gauss(0, 1))
                count = max(0, round(flow * interval / 3600))
                occ = min(1.0, 0.6 * flow / 1800)
                speed = max(5.0, 60 - 30 * flow / 1800)
                f.write(f"{stamp},{inter},{ap},{inter}-{ap},{interval},{count},{occ:.3f},{speed:.1f}\n")


canonical("csv60.csv", "M60", 60, 5, 8)
canonical("csv300.csv", "F300", 300, 0, 24)
