#!/usr/bin/env python3
"""A simulated NTCIP 1202 controller: the coordination objects (asc.coord, 1.3.6.1.4.1.1206.4.2.1.4) and the
phase table's minimum green, yellow change and red clearance (asc.phase.phaseTable, 1.3.6.1.4.1.1206.4.2.1.1.2)
served to net-snmp's snmpd through its pass_persist protocol, for the tests of `greenwave ntcip`.

Usage (snmpd.conf):  pass_persist .1.3.6.1.4.1.1206.4.2.1 /usr/bin/python3 ntcip_agent.py CONTROL STATE

STATE is a JSON file the objects are kept in (written after every SET, read at start, so a restarted handler
keeps them). CONTROL is a JSON file read before every request, which the tests write to misbehave:
  {"refuse": ["OID prefix", ...],   SETs of these instances fail (inconsistent-value)
   "hang":   ["OID prefix", ...],   requests for these instances get no answer until the prefix is removed
   "drift":  ["OID prefix", ...]}   SETs of these instances store the value plus one (read-back differs)
The controller runs its own pattern 1 (cycle 100 s) until systemPatternControl calls another.
"""
import json
import os
import sys
import time

ASC = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1)
COORD = ASC + (4,)
PHASE_ENTRY = ASC + (1, 2, 1)
# phaseTable columns served: phaseMinimumGreen (s), phaseYellowChange and phaseRedClear (tenths of seconds)
PHASE_COLUMNS = {4: 5, 8: 40, 9: 20}
MAX_PATTERNS = 253
MAX_SPLITS = 255
MAX_PHASES = 16
OWN_PATTERN = 1

control_path, state_path = sys.argv[1], sys.argv[2]


def key(oid):
    return ".".join(str(x) for x in oid)


def initial():
    s = {
        key(COORD + (5, 0)): MAX_PATTERNS,  # maxPatterns
        key(COORD + (8, 0)): MAX_SPLITS,  # maxSplits
        key(COORD + (10, 0)): OWN_PATTERN,  # coordPatternStatus
        key(COORD + (14, 0)): 0,  # systemPatternControl: standby
        # the controller's own pattern 1: cycle 100 s, offset 0, split 1 (phases 2/6 60 s, 4/8 40 s)
        key(COORD + (7, 1, 2, 1)): 100,
        key(COORD + (7, 1, 4, 1)): 1,
    }
    for ph in range(1, MAX_PHASES + 1):
        for col, v in PHASE_COLUMNS.items():
            s[key(PHASE_ENTRY + (col, ph))] = v
    for ph, t in ((2, 60), (6, 60), (4, 40), (8, 40)):
        s[key(COORD + (9, 1, 3, 1, ph))] = t
        s[key(COORD + (9, 1, 4, 1, ph))] = 2
    return s


def load_state():
    try:
        with open(state_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return initial()


def save_state(state):
    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, state_path)


def control():
    try:
        with open(control_path) as f:
            ctl = json.load(f)
    except (OSError, ValueError):
        return {}
    return ctl if isinstance(ctl, dict) else {}


def matches(oid, prefixes):
    k = key(oid)
    return any(k == p.strip(".") or k.startswith(p.strip(".") + ".") for p in prefixes)


def instance(oid):
    """Returns (readable, writable, (lo, hi)) for a valid instance of the subset, else None."""
    if oid[: len(PHASE_ENTRY)] == PHASE_ENTRY:
        rest = oid[len(PHASE_ENTRY):]
        if len(rest) == 2 and rest[0] in PHASE_COLUMNS and 1 <= rest[1] <= MAX_PHASES:
            return (True, True, (0, 255))
        return None
    rest = oid[len(COORD):]
    if oid[: len(COORD)] != COORD or not rest:
        return None
    if len(rest) == 2 and rest[1] == 0 and rest[0] in (5, 8, 10, 14):
        return (True, rest[0] == 14, (0, 255))
    if len(rest) == 4 and rest[:2] == (7, 1) and 1 <= rest[2] <= 5 and 1 <= rest[3] <= MAX_PATTERNS:
        return (True, rest[2] >= 2, (0, 255))
    if len(rest) == 5 and rest[:2] == (9, 1) and 1 <= rest[2] <= 5 and 1 <= rest[3] <= MAX_SPLITS and 1 <= rest[4] <= MAX_PHASES:
        col = rest[2]
        rng = {3: (0, 255), 4: (1, 7), 5: (0, 1)}.get(col, (0, 255))
        return (True, col >= 3, rng)
    return None


def value(state, oid):
    if oid[: len(COORD)] != COORD:
        return state.get(key(oid), 0)
    rest = oid[len(COORD):]
    if rest[:3] in ((7, 1, 1),):
        return rest[3]  # patternNumber
    if rest[:3] in ((9, 1, 1), (9, 1, 2)):
        return rest[3] if rest[2] == 1 else rest[4]  # splitNumber, splitPhase
    return state.get(key(oid), 0)


def all_instances():
    out = [PHASE_ENTRY + (col, ph) for col in PHASE_COLUMNS for ph in range(1, MAX_PHASES + 1)]
    out += [COORD + (n, 0) for n in (5, 8, 10, 14)]
    for col in range(1, 6):
        out += [COORD + (7, 1, col, p) for p in range(1, MAX_PATTERNS + 1)]
    for col in range(1, 6):
        out += [COORD + (9, 1, col, s, ph) for s in range(1, MAX_SPLITS + 1) for ph in range(1, MAX_PHASES + 1)]
    return sorted(out)


def parse(line):
    return tuple(int(x) for x in line.strip().strip(".").split(".") if x)


def wait_while_hung(oid):
    parent = os.getppid()
    while matches(oid, control().get("hang", [])):
        if os.getppid() != parent:
            sys.exit(0)  # snmpd is gone: nobody waits for the answer
        time.sleep(0.05)


def reply(*lines):
    sys.stdout.write("\n".join(str(x) for x in lines) + "\n")
    sys.stdout.flush()


def main():
    state = load_state()
    save_state(state)
    ordered = None
    while True:
        cmd = sys.stdin.readline()
        if not cmd:
            return
        cmd = cmd.strip()
        if not cmd:
            continue  # snmpd ends a set with an empty line
        if cmd == "PING":
            reply("PONG")
        elif cmd == "get":
            oid = parse(sys.stdin.readline())
            wait_while_hung(oid)
            inst = instance(oid)
            if inst is None:
                reply("NONE")
            else:
                reply("." + key(oid), "integer", value(state, oid))
        elif cmd == "getnext":
            oid = parse(sys.stdin.readline())
            if ordered is None:
                ordered = all_instances()
            nxt = next((o for o in ordered if o > oid), None)
            if nxt is None:
                reply("NONE")
            else:
                reply("." + key(nxt), "integer", value(state, nxt))
        elif cmd == "set":
            oid = parse(sys.stdin.readline())
            typ, _, val = sys.stdin.readline().strip().partition(" ")
            wait_while_hung(oid)
            ctl = control()
            inst = instance(oid)
            if inst is None or not inst[1]:
                reply("not-writable")
                continue
            if typ != "integer":
                reply("wrong-type")
                continue
            try:
                v = int(val)
            except ValueError:
                reply("wrong-value")
                continue
            lo, hi = inst[2]
            if not lo <= v <= hi:
                reply("wrong-value")
                continue
            if matches(oid, ctl.get("refuse", [])):
                reply("inconsistent-value")
                continue
            if oid == COORD + (14, 0):
                if 1 <= v <= 253 and v > MAX_PATTERNS:
                    reply("wrong-value")
                    continue
                # the called pattern runs at once (a real controller transitions over a few cycles)
                state[key(COORD + (10, 0))] = OWN_PATTERN if v == 0 else v
            if matches(oid, ctl.get("drift", [])):
                v += 1
            state[key(oid)] = v
            save_state(state)
            reply("DONE")
        else:
            reply("NONE")


if __name__ == "__main__":
    main()
