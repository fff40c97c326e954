#!/usr/bin/env bash
# Writes the 3-day SUMO scenarios of docs/evaluation.md, "Neighbour features": the grid3x3 and arterial networks
# of deploy/sumo with 72 h of demand that follows a weekday profile (morning peak 08:00, midday, evening peak
# 17:30, quiet nights; simulated time 0 is 07:00) in 15-minute steps with ±12 % seeded noise, fringe to fringe
# (randomTrips.py + duarouter, seed 42, as deploy/sumo/generate.sh). Usage: scenarios.sh OUTDIR (from the
# repository root; needs SUMO 1.15: apt-get install sumo sumo-tools).
set -euo pipefail
out=${1:?usage: scenarios.sh OUTDIR}
export SUMO_HOME=${SUMO_HOME:-/usr/share/sumo}
mkdir -p "$out"
rates=$(python3 -c "
import math,random
random.seed(11)
def day(h):
  return 0.08+math.exp(-((h-8)/1.3)**2)+0.55*math.exp(-((h-13)/2.5)**2)+0.85*math.exp(-((h-17.5)/1.6)**2)
def rates(peak, days=3):
  return [max(50,int(peak*day((7+i/4)%24)*(1+0.12*random.uniform(-1,1)))) for i in range(days*96)]
print(' '.join(map(str,rates(5000))))
print(' '.join(map(str,rates(2200))))
")
for sc in grid3x3 arterial; do
  d=$out/$sc-3d
  mkdir -p "$d"
  cp "deploy/sumo/$sc/$sc.net.xml" "$d/$sc-3d.net.xml"
  sed "s/$sc\./$sc-3d./g" "deploy/sumo/$sc/$sc.sumocfg" > "$d/$sc-3d.sumocfg"
  if [[ $sc == grid3x3 ]]; then r=$(sed -n 1p <<<"$rates"); extra=(); else r=$(sed -n 2p <<<"$rates"); extra=(-L --fringe-speed-exponent 6); fi
  # shellcheck disable=SC2086 # one rate per word
  (cd "$d" && python3 "$SUMO_HOME/tools/randomTrips.py" -n "$sc-3d.net.xml" -r "$sc-3d.rou.xml" -o trips.tmp.xml -b 0 -e 259200 \
    --insertion-rate $r --fringe-factor max --min-distance 300 --seed 42 --validate --prefix v "${extra[@]}" >/dev/null && rm -f trips.tmp.xml "$sc-3d.rou.alt.xml")
done
