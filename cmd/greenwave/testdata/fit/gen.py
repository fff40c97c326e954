# Regenerates the `greenwave fit` golden fixture: X.npy, y.npy and expected.json, the output of scikit-learn's
# LinearRegression on the same training rows `greenwave fit` selects (see docs/evaluation.md for the split rules).
#   python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scikit-learn && /tmp/venv/bin/python gen.py
import json

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error

MASK = (1 << 64) - 1


def splitmix64(state):
    """One SplitMix64 step: returns (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def split(n, how, seed):
    """The row split of `greenwave fit`: train = first floor(0.8 n) rows (tail) or of a seeded permutation."""
    n_train = n * 4 // 5
    idx = list(range(n))
    if how == "random":
        state = seed & MASK
        for i in range(n - 1, 0, -1):
            state, r = splitmix64(state)
            j = r % (i + 1)
            idx[i], idx[j] = idx[j], idx[i]
        return sorted(idx[:n_train]), sorted(idx[n_train:])
    return idx[:n_train], idx[n_train:]


rng = np.random.default_rng(20240501)
n = 250
X = np.column_stack([rng.normal(0, 1, n), rng.uniform(0, 1000, n), rng.normal(5, 0.01, n)])
y = 3.5 + 2.0 * X[:, 0] - 0.004 * X[:, 1] + 10.0 * X[:, 2] + rng.normal(0, 0.5, n)
np.save("X.npy", X)
np.save("y.npy", y)

out = {}
for name, how, seed in [("tail", "tail", 0), ("random_seed_7", "random", 7)]:
    tr, te = split(n, how, seed)
    m = LinearRegression().fit(X[tr], y[tr])
    out[name] = {
        "intercept": float(m.intercept_),
        "coef": [float(c) for c in m.coef_],
        "mse": float(mean_squared_error(y[te], m.predict(X[te]))),
        "n_train": len(tr),
        "n_test": len(te),
    }
with open("expected.json", "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
