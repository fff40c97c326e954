# Regenerates readings.csv, the speed-only fixture of cmd/greenwave/eval_test.go (TestEvalSpeedOnly): eight days of
# 5-minute average speeds of two freeway sensors with no counts and no occupancy (METR-LA / PEMS-BAY style), a
# free-flow speed with weekday morning and evening slowdowns and deterministic noise. The count and
# occupancy_ratio cells are empty; intersection_id and approach_id are empty too, so eval derives the topology.
# Two planted faults: one row with no quantity at all (file_missing_value) and one impossible speed
# (out_of_range).
import math
import random
from datetime import datetime, timedelta, timezone

random.seed(14)
t0 = datetime(2024, 3, 4, tzinfo=timezone.utc)  # a Monday
with open("readings.csv", "w") as f:
    f.write("observed_at,intersection_id,approach_id,detector_id,interval_s,count,occupancy_ratio,speed_kmh\n")
    for i in range(8 * 288):
        t = t0 + timedelta(minutes=5 * i)
        at = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        h = t.hour + t.minute / 60
        weekday = t.weekday() < 5
        for det, free, depth in (("S-717", 105.0, 55.0), ("S-773", 98.0, 35.0)):
            dip = 0.0
            if weekday:
                dip = depth * (math.exp(-((h - 8) / 1.0) ** 2) + 0.8 * math.exp(-((h - 17.5) / 1.3) ** 2))
            v = free - dip + random.gauss(0, 2.5)
            cell = f"{v:.1f}"
            if det == "S-717" and i == 500:
                cell = ""  # no quantity at all
            if det == "S-773" and i == 900:
                cell = "412.0"  # impossible speed
            f.write(f"{at},,,{det},300,,,{cell}\n")
