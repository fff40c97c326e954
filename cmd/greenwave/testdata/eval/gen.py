# Regenerates readings.csv and weather.csv, the fixture of cmd/greenwave/eval_test.go: nine days (over a week,
# so that every baseline has forecasts on the model's pairs) of hourly counts of two detectors with a daily pattern, one identical repeat (a duplicate), one conflicting repeat, one
# impossible count, one missing hour, and hourly weather with one impossible temperature.
import math
from datetime import datetime, timedelta, timezone

t0 = datetime(2024, 3, 4, tzinfo=timezone.utc)
with open("readings.csv", "w") as f:
    f.write("observed_at,intersection_id,approach_id,detector_id,interval_s,count,occupancy_ratio,speed_kmh\n")
    for h in range(9 * 24):
        at = (t0 + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for det, ap, k in (("X-N", "N", 1.0), ("X-E", "E", 0.5)):
            if det == "X-N" and h == 77:
                continue  # a missing hour
            c = round(k * (300 + 200 * math.sin(2 * math.pi * (h % 24) / 24) + (h % 7) * 3))
            if det == "X-E" and h == 90:
                c = 99999  # impossible for one lane
            f.write(f"{at},X,{ap},{det},3600,{c},,\n")
            if det == "X-N" and h == 50:
                f.write(f"{at},X,{ap},{det},3600,{c},,\n")  # identical repeat
            if det == "X-N" and h == 60:
                f.write(f"{at},X,{ap},{det},3600,{c + 40},,\n")  # conflicting repeat
with open("weather.csv", "w") as f:
    f.write("observed_at,station_id,temperature_c,precipitation_mm_h,snow_mm_h,cloud_cover_ratio,visibility_m,condition\n")
    for h in range(9 * 24):
        at = (t0 + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
        temp = -273.15 if h == 30 else 5 + 5 * math.sin(2 * math.pi * h / 24)
        f.write(f"{at},W1,{temp:.2f},{0.5 if h % 11 == 0 else 0},0,0.5,10000,Clouds\n")
