# Regenerates numpy_3x2.npy with numpy.save itself (format 1.0, '<f8', C order):
#   python3 gen.py   (needs numpy)
import numpy as np

np.save("numpy_3x2.npy", np.array([[0, 1], [2, 3], [4, 5.5]], dtype=np.float64))
